package action

import (
	"errors"
	"fmt"
	"regexp"
	"slices"

	"github.com/flowsentry/flowsentry/config/check"
)

// Config configures the actions.
type Config struct {
	// Env names variables of the server's environment that every plugin
	// call gets when they are set, e.g. [HTTPS_PROXY, MAIL_RELAY]; HOME,
	// LANG and TZ are passed without being named. A plugin instance's
	// configuration value and the manual's variables replace a passed
	// variable of the same name. Empty passes no others.
	Env []string `yaml:"env"`
}

// DefaultConfig passes no variable beyond HOME, LANG and TZ.
func DefaultConfig() Config { return Config{} }

// envName is a portable environment variable name (POSIX).
var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Validate reports every invalid name as a *check.Error.
func (c Config) Validate() error {
	var errs []error
	for i, name := range c.Env {
		key := fmt.Sprintf("env[%d]", i)
		switch {
		case !envName.MatchString(name):
			errs = append(errs, check.Errorf(key, "%q is not an environment variable name; use letters, digits and _, not starting with a digit, e.g. HTTPS_PROXY", name))
		case slices.Contains(c.Env[:i], name):
			errs = append(errs, check.Errorf(key, "%s is listed twice; list it once", name))
		}
	}
	return errors.Join(errs...)
}
