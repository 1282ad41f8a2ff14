package newserver

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/flowsentry/flowsentry/config/check"
	"github.com/flowsentry/flowsentry/policy"
)

// Default parameters.
const (
	// DefaultLearningPeriod is how long a policy learns silently on a
	// traffic group it has not watched before.
	DefaultLearningPeriod = time.Hour
	// DefaultMaxLearned is the number of servers (new_server) or of
	// server-client pairs (new_client) a policy remembers.
	DefaultMaxLearned = 200_000
	// maxMaxLearned bounds max_learned: about 6 GB of client pairs.
	maxMaxLearned = 100_000_000
)

// Params are the parameters of both families.
type Params struct {
	// LearningPeriod is how long a policy learns silently after it first
	// applies to a traffic group: what it sees then is remembered and
	// raises nothing. The start is remembered (and persisted) per policy
	// and traffic group, so a restart does not learn again. 0 alerts from
	// the start.
	LearningPeriod Duration `json:"learning_period" yaml:"learning_period"`
	// MaxLearned caps what a policy remembers: servers for new_server,
	// (server, client) pairs for new_client. Past it nothing more is
	// learned nor alerted (counted as dropped).
	MaxLearned int `json:"max_learned" yaml:"max_learned"`
}

// DefaultParams returns the defaults: a one-hour learning period and
// 200,000 entries per policy.
func DefaultParams() Params {
	return Params{LearningPeriod: Duration(DefaultLearningPeriod), MaxLearned: DefaultMaxLearned}
}

// Of returns the parameters of a policy of either family; nil for other
// families.
func Of(p *policy.Policy) *Params {
	t, _ := p.Params.(*Params)
	return t
}

// Validate checks the parameters.
func (t *Params) Validate(*policy.Policy) error {
	var errs []error
	if t.LearningPeriod < 0 {
		errs = append(errs, check.Errorf("learning_period", "%s is negative; use 0 to alert from the start or a duration such as 1h", time.Duration(t.LearningPeriod)))
	}
	if t.MaxLearned < 1 || t.MaxLearned > maxMaxLearned {
		errs = append(errs, check.Errorf("max_learned", "%d is out of range; use 1 to %d (default %d)", t.MaxLearned, maxMaxLearned, DefaultMaxLearned))
	}
	return errors.Join(errs...)
}

// Duration is a time.Duration written as "30s", "1h" or "0" in YAML and
// JSON; JSON also takes a number of seconds.
type Duration time.Duration

// String formats d as time.Duration does.
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalText writes d as "1h0m0s".
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText reads a duration such as "90s" or "1h".
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("%q is not a duration; write a number and a unit, e.g. \"30m\" or \"1h\"", b)
	}
	*d = Duration(v)
	return nil
}

// UnmarshalJSON reads a duration string or a number of seconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		s, err := strconv.Unquote(string(b))
		if err != nil {
			return err
		}
		return d.UnmarshalText([]byte(s))
	}
	sec, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return fmt.Errorf("%s is not a duration; write a string such as \"1h\" or a number of seconds", b)
	}
	*d = Duration(sec * float64(time.Second))
	return nil
}
