package ddos

import (
	"errors"
	"slices"
	"strconv"
	"strings"

	"github.com/flowsentry/flowsentry/config/check"
	"github.com/flowsentry/flowsentry/detect/target"
	"github.com/flowsentry/flowsentry/policy"
)

// Params are the parameters of ddos_flood and of each subtype family: the
// inbound packet rate to one address that fires the policy.
type Params struct {
	// Threshold is in inbound packets per second to one target address
	// (sampled counts already scaled), over the trailing second. For a
	// subtype family it is compared with the packets of that kind only.
	Threshold float64 `json:"threshold" yaml:"threshold"`
}

// Validate checks the threshold.
func (t *Params) Validate(*policy.Policy) error {
	if !(t.Threshold > 0) {
		return check.Errorf("threshold", "%v is not valid; give the inbound packets per second to one address that fire the policy, above 0 (e.g. threshold: 10000)", t.Threshold)
	}
	return nil
}

// AmpParams are the parameters of ddos_amp.
type AmpParams struct {
	// Threshold is in inbound UDP packets per second to one target
	// address from the reflector source port(s) selected by Port.
	Threshold float64 `json:"threshold" yaml:"threshold"`
	// Port is the one reflector source port watched (one of
	// target.Reflectors: 53 DNS, 123 NTP, 11211 memcached …); 0 watches
	// every reflector port together. Give several policies for several
	// per-port thresholds.
	Port uint16 `json:"port,omitempty" yaml:"port,omitempty"`
}

// Validate checks the threshold and that the port is a reflector's.
func (t *AmpParams) Validate(*policy.Policy) error {
	var errs []error
	if !(t.Threshold > 0) {
		errs = append(errs, check.Errorf("threshold", "%v is not valid; give the inbound packets per second from reflector ports to one address that fire the policy, above 0 (e.g. threshold: 10000)", t.Threshold))
	}
	if t.Port != 0 && !target.IsReflector(t.Port) {
		errs = append(errs, check.Errorf("port", "%d is not a reflector port; use 0 (any reflector port) or one of %s", t.Port, reflectorList()))
	}
	return errors.Join(errs...)
}

func reflectorList() string {
	ports := make([]int, 0, len(target.Reflectors))
	for p := range target.Reflectors {
		ports = append(ports, int(p))
	}
	slices.Sort(ports)
	s := make([]string, len(ports))
	for i, p := range ports {
		s[i] = strconv.Itoa(p) + " (" + target.Reflectors[uint16(p)] + ")"
	}
	return strings.Join(s, ", ")
}

// threshold returns the threshold of a policy of this package's families;
// 0 for others.
func threshold(p *policy.Policy) float64 {
	switch v := p.Params.(type) {
	case *Params:
		return v.Threshold
	case *AmpParams:
		return v.Threshold
	}
	return 0
}
