package exfil

import (
	"errors"

	"github.com/flowsentry/flowsentry/config/check"
	"github.com/flowsentry/flowsentry/detect"
	"github.com/flowsentry/flowsentry/policy"
)

// Family is the name policies give the family.
const Family policy.Family = "exfil"

// DefaultSessionIdle is the default session_idle, in seconds.
const DefaultSessionIdle = 300

// maxSessionIdle bounds session_idle: a day.
const maxSessionIdle = 86400

// Params are the parameters of an exfil policy.
type Params struct {
	// Threshold is the number of bytes one session (or the sessions of
	// one sender and receiver, see the package documentation) must send
	// beyond for the policy to fire; above 0. Bytes are layer-3 bytes, as
	// the flow records count them.
	Threshold uint64 `json:"threshold" yaml:"threshold"`
	// SessionIdle is how long, in seconds, a session may go without a
	// record and still continue: records of the same 5-tuple closer than
	// that add up. 1 to 86400; the default is 300.
	SessionIdle uint32 `json:"session_idle" yaml:"session_idle"`
}

// Of returns the parameters of an exfil policy; nil for other families.
func Of(p *policy.Policy) *Params {
	t, _ := p.Params.(*Params)
	return t
}

// Validate checks the threshold and the idle time.
func (t *Params) Validate(*policy.Policy) error {
	var errs []error
	if t.Threshold == 0 {
		errs = append(errs, check.Errorf("threshold", "must be above 0; give the bytes one session may send outside, e.g. 100000000 for 100 MB"))
	}
	if t.SessionIdle == 0 || t.SessionIdle > maxSessionIdle {
		errs = append(errs, check.Errorf("session_idle", "is %d; give the seconds a session may stay idle, 1 to %d (default %d)", t.SessionIdle, maxSessionIdle, DefaultSessionIdle))
	}
	return errors.Join(errs...)
}

func init() {
	detect.Register(detect.Family{
		Policy: policy.Spec{Name: Family, Objects: []string{policy.ObjectGroup},
			NewParams: func() policy.Params { return &Params{SessionIdle: DefaultSessionIdle} }},
		NewShard: func(d detect.Deps) (detect.ShardStage, error) { return New(d), nil },
	})
}
