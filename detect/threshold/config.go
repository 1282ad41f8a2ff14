package threshold

import (
	"math"
	"time"

	"github.com/flowsentry/flowsentry/config/check"
)

// Config configures baseline learning.
type Config struct {
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

// DefaultConfig learns for 15 minutes with a one-hour half-life and saves
// every minute.
func DefaultConfig() Config {
	return Config{Warmup: 15 * time.Minute, HalfLife: time.Hour, SaveInterval: time.Minute}
}

// Validate checks the durations.
func (c Config) Validate() error {
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

// alpha is the weight of one one-second sample.
func (c Config) alpha() float64 {
	return 1 - math.Exp2(-float64(time.Second)/float64(c.HalfLife))
}
