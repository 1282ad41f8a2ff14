package pipeline

import (
	"time"

	"github.com/flowsentry/flowsentry/config/check"
)

// Config configures the pipeline between the collector and the stages.
type Config struct {
	// QueueLength is the number of batches (of up to flow.BatchSize
	// records) waiting for the pipeline; when full, collectors drop and
	// count. Zero is invalid.
	QueueLength int `yaml:"queue_length"`
	// TickInterval is how often rates and detectors are evaluated on the
	// wall clock. Zero is invalid.
	TickInterval time.Duration `yaml:"tick_interval"`
}

// DefaultConfig returns a queue of 1024 batches and a one-second tick.
func DefaultConfig() Config {
	return Config{QueueLength: 1024, TickInterval: time.Second}
}

// Validate checks the configuration.
func (c Config) Validate() error {
	if c.QueueLength <= 0 {
		return check.Errorf("queue_length", "%d is not valid; use a positive number of batches (default 1024)", c.QueueLength)
	}
	if c.TickInterval < 10*time.Millisecond || c.TickInterval > time.Minute {
		return check.Errorf("tick_interval", "%s is not valid; use a duration between 10ms and 1m (default 1s)", c.TickInterval)
	}
	return nil
}
