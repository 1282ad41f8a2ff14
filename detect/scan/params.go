package scan

import (
	"errors"

	"github.com/flowsentry/flowsentry/config/check"
	"github.com/flowsentry/flowsentry/policy"
)

// The THRESHOLD_TYPEs of a scan policy; both per second.
const (
	// NewConn counts connection attempts per second.
	NewConn = "new_conn"
	// UniqEndpoints counts distinct endpoints (address, protocol and
	// port) probed per second.
	UniqEndpoints = "uniq_endpoints"
)

// The directions a scan policy watches.
const (
	// Both watches local hosts scanning out and remote blocks scanning in.
	Both = "both"
	// Inbound watches remote blocks probing the traffic group.
	Inbound = "inbound"
	// Outbound watches hosts of the traffic group probing anything.
	Outbound = "outbound"
)

// MaxWindow is the longest window, in seconds.
const MaxWindow = 10

// Defaults of the parameters.
const (
	DefaultCounter   = UniqEndpoints
	DefaultThreshold = 100
	DefaultDirection = Both
	DefaultWindow    = 2
)

// Params are the parameters of a scan policy, flat beside the policy's
// common keys.
type Params struct {
	// Counter is the THRESHOLD_TYPE: new_conn (connection attempts per
	// second) or uniq_endpoints (distinct endpoints probed per second,
	// the default: a busy client opens many connections to few
	// endpoints, a scanner one or two to each of many).
	Counter string `json:"threshold_type" yaml:"threshold_type"`
	// Threshold is the per-second rate, averaged over the window, above
	// which a scanner is alerted on; default 100.
	Threshold float64 `json:"threshold" yaml:"threshold"`
	// Direction is both (the default), inbound (remote blocks probing the
	// group) or outbound (hosts of the group probing anything).
	Direction string `json:"direction" yaml:"direction"`
	// Window is the number of seconds the rate is averaged over, 1 to
	// MaxWindow; default 2. A longer window smooths bursty exporters and
	// alerts later.
	Window int `json:"window_seconds" yaml:"window_seconds"`
}

// NewParams returns the parameters with their defaults.
func NewParams() *Params {
	return &Params{Counter: DefaultCounter, Threshold: DefaultThreshold, Direction: DefaultDirection, Window: DefaultWindow}
}

// Of returns the parameters of a scan policy; nil for other families.
func Of(p *policy.Policy) *Params {
	t, _ := p.Params.(*Params)
	return t
}

// Validate checks the parameters.
func (t *Params) Validate(*policy.Policy) error {
	var errs []error
	add := func(path, format string, args ...any) { errs = append(errs, check.Errorf(path, format, args...)) }
	if t.Counter != NewConn && t.Counter != UniqEndpoints {
		add("threshold_type", "%q is not a scan threshold type; use new_conn or uniq_endpoints", t.Counter)
	}
	if !(t.Threshold > 0) {
		add("threshold", "%v is not valid; give a per-second rate above 0 (default %d)", t.Threshold, DefaultThreshold)
	}
	if t.Direction != Both && t.Direction != Inbound && t.Direction != Outbound {
		add("direction", "%q is not a direction; use both, inbound or outbound", t.Direction)
	}
	if t.Window < 1 || t.Window > MaxWindow {
		add("window_seconds", "%d is not valid; use 1 to %d seconds (default %d)", t.Window, MaxWindow, DefaultWindow)
	}
	return errors.Join(errs...)
}

// watches reports whether the policy counts direction dir.
func (t *Params) watches(dir uint8) bool {
	switch t.Direction {
	case Inbound:
		return dir == dirIn
	case Outbound:
		return dir == dirOut
	}
	return true
}
