package detect

import (
	"context"
	"math"
	"time"

	"github.com/flowsentry/flowsentry/config/check"
	"github.com/flowsentry/flowsentry/rates"
)

// Baseline is the learned per-second level of one counter of one object
// under one policy.
type Baseline struct {
	// Policy is the template or object policy the baseline belongs to.
	Policy uint64 `json:"policy"`
	// Key is the object.
	Key rates.Key `json:"key"`
	// Value is the exponentially weighted moving average.
	Value float64 `json:"value"`
	// Samples is the number of ticks learned; below the warm-up the
	// policy cannot fire on this object.
	Samples uint64 `json:"samples"`
	// Updated is the last tick that changed it.
	Updated time.Time `json:"updated"`
}

// BaselineStore persists baselines so that they survive a restart.
type BaselineStore interface {
	// SaveBaselines replaces every stored baseline with list.
	SaveBaselines(ctx context.Context, list []Baseline) error
	// Baselines returns every stored baseline.
	Baselines(ctx context.Context) ([]Baseline, error)
}

// BaselineConfig configures baseline learning (the baselines key).
type BaselineConfig struct {
	// Warmup is how long an object's baseline learns before a baseline
	// policy can fire on it (counted in ticks of one second). Zero lets
	// policies fire from the first tick.
	Warmup time.Duration `yaml:"warmup"`
	// HalfLife is the half-life of the moving average: a level held for
	// one half-life moves the baseline half way to it. Must be positive.
	HalfLife time.Duration `yaml:"half_life"`
	// SaveInterval is how often baselines are written to the database.
	SaveInterval time.Duration `yaml:"save_interval"`
}

// DefaultBaselineConfig learns for 15 minutes with a one-hour half-life
// and saves every minute.
func DefaultBaselineConfig() BaselineConfig {
	return BaselineConfig{Warmup: 15 * time.Minute, HalfLife: time.Hour, SaveInterval: time.Minute}
}

// Validate checks the durations.
func (c BaselineConfig) Validate() error {
	if c.Warmup < 0 {
		return check.Errorf("warmup", "%s is negative; use 0 or a duration such as 15m", c.Warmup)
	}
	if c.HalfLife < time.Second {
		return check.Errorf("half_life", "%s is too short; use 1s or more (default 1h)", c.HalfLife)
	}
	if c.SaveInterval < time.Second {
		return check.Errorf("save_interval", "%s is too short; use 1s or more (default 1m)", c.SaveInterval)
	}
	return nil
}

// Alpha is the weight of one one-second sample in the moving average.
func (c BaselineConfig) Alpha() float64 {
	return 1 - math.Exp2(-float64(time.Second)/float64(c.HalfLife))
}
