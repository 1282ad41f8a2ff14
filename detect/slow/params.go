package slow

import (
	"errors"
	"math"

	"github.com/flowsentry/flowsentry/config/check"
	"github.com/flowsentry/flowsentry/policy"
)

// Params are the parameters of a ddos_slow policy; see the package
// documentation for how they make the index.
type Params struct {
	// Threshold is the index, in connections, above which the policy
	// fires (THRESHOLD_VALUE): the number of slow connections to one
	// server port from clients that each hold at least MinPerClient of
	// them.
	Threshold float64 `json:"threshold" yaml:"threshold"`
	// MinDuration is how long, in seconds, a connection must have been
	// seen active (its last packet minus its first) to count.
	MinDuration float64 `json:"min_duration" yaml:"min_duration"`
	// MaxRate is the highest average byte rate, client to server, in
	// layer-3 bytes per second over the connection's life, of a slow
	// connection.
	MaxRate float64 `json:"max_rate" yaml:"max_rate"`
	// MinPerClient is how many slow connections to the same server port
	// one client address must hold for its connections to count: what
	// separates a slowloris client (hundreds) from a WebSocket or SSH
	// client (one to a few).
	MinPerClient int `json:"min_per_client" yaml:"min_per_client"`
	// MaxReplyRatio is the most bytes the server may have sent on a slow
	// connection, as a multiple of what it received: a server waiting for
	// a request that never completes sends only ACKs; one serving a
	// keep-alive client sends far more than it gets.
	MaxReplyRatio float64 `json:"max_reply_ratio" yaml:"max_reply_ratio"`
	// Port restricts the policy to one server port; 0 means any.
	Port uint16 `json:"port,omitempty" yaml:"port,omitempty"`
	// InternalSources counts clients inside the partition's INT blocks
	// too; by default they never count (connection pools, internal
	// monitoring).
	InternalSources bool `json:"internal_sources,omitempty" yaml:"internal_sources,omitempty"`
}

// Defaults of the parameters.
const (
	DefaultThreshold     = 100
	DefaultMinDuration   = 60
	DefaultMaxRate       = 100
	DefaultMinPerClient  = 10
	DefaultMaxReplyRatio = 1.5
)

// NewParams returns the parameters with their defaults.
func NewParams() *Params {
	return &Params{Threshold: DefaultThreshold, MinDuration: DefaultMinDuration, MaxRate: DefaultMaxRate,
		MinPerClient: DefaultMinPerClient, MaxReplyRatio: DefaultMaxReplyRatio}
}

// Of returns the parameters of a ddos_slow policy; nil for other families.
func Of(p *policy.Policy) *Params {
	s, _ := p.Params.(*Params)
	return s
}

// Validate checks the parameters.
func (s *Params) Validate(*policy.Policy) error {
	var errs []error
	add := func(path, format string, args ...any) { errs = append(errs, check.Errorf(path, format, args...)) }
	bad := func(v float64) bool { return v <= 0 || math.IsNaN(v) || math.IsInf(v, 0) }
	if bad(s.Threshold) {
		add("threshold", "must be a number of connections above 0, e.g. %d", DefaultThreshold)
	}
	if bad(s.MinDuration) {
		add("min_duration", "must be a number of seconds above 0, e.g. %d", DefaultMinDuration)
	}
	if bad(s.MaxRate) {
		add("max_rate", "must be bytes per second above 0, e.g. %d", DefaultMaxRate)
	}
	if s.MinPerClient < 1 {
		add("min_per_client", "must be 1 or more (1 counts every slow connection), e.g. %d", DefaultMinPerClient)
	}
	if bad(s.MaxReplyRatio) {
		add("max_reply_ratio", "must be above 0, e.g. %g", DefaultMaxReplyRatio)
	}
	return errors.Join(errs...)
}
