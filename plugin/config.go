package plugin

import (
	"errors"
	"time"

	"github.com/flowsentry/flowsentry/config/check"
)

// RunnerConfig configures plugin calls.
type RunnerConfig struct {
	// Timeout is the time limit of one call; then the plugin's process
	// group gets SIGTERM. Must be positive; the default is 60s.
	Timeout time.Duration `yaml:"timeout"`
	// KillGrace is how long a plugin may take to exit after SIGTERM
	// before its process group gets SIGKILL. 0 sends SIGKILL right after
	// SIGTERM; the default is 5s.
	KillGrace time.Duration `yaml:"kill_grace"`
	// MaxConcurrent is the number of calls that may run at once, across
	// all plugins; further calls wait. At least 1; the default is 8.
	MaxConcurrent int `yaml:"max_concurrent"`
	// MaxOutput is how many bytes of a call's combined stdout and stderr
	// are kept; the rest is read and discarded. 0 keeps none; the default
	// is 65536 (64 KiB).
	MaxOutput int `yaml:"max_output"`
}

// DefaultRunnerConfig returns the defaults.
func DefaultRunnerConfig() RunnerConfig {
	return RunnerConfig{Timeout: 60 * time.Second, KillGrace: 5 * time.Second, MaxConcurrent: 8, MaxOutput: 64 << 10}
}

// Validate reports every invalid setting as a *check.Error.
func (c *RunnerConfig) Validate() error {
	var errs []error
	if c.Timeout <= 0 {
		errs = append(errs, check.Errorf("timeout", "is %v; give a positive duration such as 60s", c.Timeout))
	}
	if c.KillGrace < 0 {
		errs = append(errs, check.Errorf("kill_grace", "is %v; give a duration of 0 or more, such as 5s", c.KillGrace))
	}
	if c.MaxConcurrent < 1 {
		errs = append(errs, check.Errorf("max_concurrent", "is %d; give 1 or more, such as 8", c.MaxConcurrent))
	}
	if c.MaxOutput < 0 {
		errs = append(errs, check.Errorf("max_output", "is %d; give a number of bytes of 0 or more, such as 65536", c.MaxOutput))
	}
	return errors.Join(errs...)
}
