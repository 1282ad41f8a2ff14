package alert

import (
	"errors"
	"time"

	"github.com/flowsentry/flowsentry/config/check"
)

// Config sets the lifecycle timings. The defaults are the FlowTraq plugin
// manual's; tests and demonstrations shorten them.
type Config struct {
	// UpdateInterval is the shortest time between two calls (CREATE or
	// UPDATE) of an alert whose condition persists: an UPDATE is issued at
	// the first Tick at least UpdateInterval after the last call, when the
	// condition was seen since that call. Zero is invalid.
	UpdateInterval time.Duration `yaml:"update_interval"`
	// QuietPeriod is how long after its last CREATE or UPDATE an alert
	// whose condition has not been seen since is deleted. Longer than
	// UpdateInterval; zero is invalid.
	QuietPeriod time.Duration `yaml:"quiet_period"`
	// MaxAge is the life of an alert: at the first Tick MaxAge after its
	// creation it is deleted, and a new alert with a new ID is created if
	// the condition was seen since the previous Tick. Longer than
	// QuietPeriod; zero is invalid.
	MaxAge time.Duration `yaml:"max_age"`
	// Outbox is the most transitions (CREATE, UPDATE, DELETE) waiting to
	// be committed to the store, which bounds the memory a failing or
	// stalled store can take; when full, new transitions wait for a later
	// tick. Zero takes the default, 100,000.
	Outbox int `yaml:"outbox"`
}

const defaultOutbox = 100_000

// DefaultConfig returns the manual's timings: UPDATE at most once a
// minute, DELETE after ten quiet minutes, a new ID after twelve hours.
func DefaultConfig() Config {
	return Config{
		UpdateInterval: time.Minute,
		QuietPeriod:    10 * time.Minute,
		MaxAge:         12 * time.Hour,
		Outbox:         defaultOutbox,
	}
}

// Validate reports every invalid field as a *check.Error with its key
// path, joined.
func (c Config) Validate() error {
	var errs []error
	if c.UpdateInterval <= 0 {
		errs = append(errs, check.Errorf("update_interval", "%v is not positive; use e.g. 1m (the manual's value)", c.UpdateInterval))
	}
	if c.QuietPeriod <= c.UpdateInterval {
		errs = append(errs, check.Errorf("quiet_period", "%v is not longer than update_interval (%v); use e.g. 10m (the manual's value)", c.QuietPeriod, c.UpdateInterval))
	}
	if c.MaxAge <= c.QuietPeriod {
		errs = append(errs, check.Errorf("max_age", "%v is not longer than quiet_period (%v); use e.g. 12h (the manual's value)", c.MaxAge, c.QuietPeriod))
	}
	if c.Outbox < 0 {
		errs = append(errs, check.Errorf("outbox", "%d is negative; use 0 for the default of 100000, or a positive number of transitions", c.Outbox))
	}
	return errors.Join(errs...)
}
