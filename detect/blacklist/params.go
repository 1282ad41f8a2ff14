package blacklist

import (
	"github.com/flowsentry/flowsentry/detect"
	"github.com/flowsentry/flowsentry/policy"
)

// Family is the name policies give the family.
const Family policy.Family = "blacklist"

// Params are the parameters of a blacklist policy: there are none beyond
// the common keys (the blacklists themselves are configured in the
// model's `blacklists:`, an allow-list in the policy's `allow:`).
type Params struct{}

// Of returns the parameters of a blacklist policy; nil for other
// families.
func Of(p *policy.Policy) *Params {
	t, _ := p.Params.(*Params)
	return t
}

// Validate accepts every blacklist policy: the common keys were checked.
func (*Params) Validate(*policy.Policy) error { return nil }

func init() {
	detect.Register(detect.Family{
		Policy: policy.Spec{Name: Family, Objects: []string{policy.ObjectGroup},
			NewParams: func() policy.Params { return &Params{} }},
		NewShard: func(d detect.Deps) (detect.ShardStage, error) { return New(d), nil },
	})
}
