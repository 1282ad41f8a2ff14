package ddos

import (
	"testing"

	"github.com/flowsentry/flowsentry/detect/detecttest"
	"github.com/flowsentry/flowsentry/policy"
)

func TestValidate(t *testing.T) {
	cases := []struct {
		name string
		p    policy.Policy
		want string // "" = valid
	}{
		{"flood", pol(1, Flood, 1000), ""},
		{"subtype", pol(1, Xmas, 10), ""},
		{"no threshold", pol(1, Flood, 0), "threshold: 0 is not valid"},
		{"negative", pol(1, SynFlood, -1), "threshold: -1 is not valid"},
		{"amp any", pol(1, Amp, 100), ""},
		{"amp dns", ampPol(1, 53, 100), ""},
		{"amp not a reflector", ampPol(1, 80, 100), "port: 80 is not a reflector port; use 0 (any reflector port) or one of 17 (qotd)"},
		{"amp no threshold", ampPol(1, 53, 0), "threshold: 0 is not valid"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.p
			detecttest.CheckError(t, p.Validate(), tc.want)
		})
	}
}
