package history

import (
	"errors"
	"time"

	"github.com/flowsentry/flowsentry/config/check"
)

// Limits of the settings.
const (
	maxSeries    = 100_000
	minRetention = time.Hour
	maxRetention = 366 * 24 * time.Hour
)

// Config bounds the history. Its size on disk is about BytesPerSeriesDay
// × series × retention days (see the package documentation).
type Config struct {
	// MaxSeries caps the series recorded (groups, interfaces and port
	// lines together, those already stored included); a new one beyond
	// it is refused and counted. From 1 to 100000; the default is 2000.
	MaxSeries int `yaml:"max_series"`
	// Retention is how long minutes are kept; older hours are pruned
	// every hour. From 1h to 8784h (366 days); the default is 168h (7
	// days).
	Retention time.Duration `yaml:"retention"`
}

// DefaultConfig returns a recorder of at most 2000 series kept 7 days.
func DefaultConfig() Config {
	return Config{MaxSeries: 2000, Retention: 7 * 24 * time.Hour}
}

// Validate reports every invalid setting as a *check.Error, joined.
func (c Config) Validate() error {
	var errs []error
	if c.MaxSeries < 1 || c.MaxSeries > maxSeries {
		errs = append(errs, check.Errorf("max_series", "%d is out of range; use 1 to %d series (the default 2000 holds 200 groups, 100 interfaces and port lines to spare)", c.MaxSeries, maxSeries))
	}
	if c.Retention < minRetention || c.Retention > maxRetention {
		errs = append(errs, check.Errorf("retention", "%s is out of range; use a duration from 1h to 8784h (the default 168h keeps 7 days)", c.Retention))
	}
	return errors.Join(errs...)
}
