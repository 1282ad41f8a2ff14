package threshold

import (
	"errors"
	"slices"
	"strings"

	"github.com/flowsentry/flowsentry/config/check"
	"github.com/flowsentry/flowsentry/detect"
	"github.com/flowsentry/flowsentry/policy"
)

// The two families of this package.
const (
	// Family is Threshold/Baseline: packets in, bits in or new
	// connections of a traffic group or exporter interface, against a
	// fixed threshold or a multiple of a learned baseline.
	Family policy.Family = "threshold"
	// PortFamily is the port/protocol Threshold: any counter of a traffic
	// group, port, host or interface object.
	PortFamily policy.Family = "port_threshold"
)

// counters are the THRESHOLD_TYPEs of the plugin contract; all per second.
var counters = []string{"bytes_in", "bytes_out", "packets_in", "packets_out", "new_conn", "updates", "uniq_local_endpoint", "uniq_remote_cidr"}

// Params are the parameters of both families.
type Params struct {
	// Counter is the THRESHOLD_TYPE compared: bytes_in, bytes_out,
	// packets_in, packets_out, new_conn, updates, uniq_local_endpoint,
	// uniq_remote_cidr. Byte counters are compared in bytes per second;
	// bits_in / bits_out with a threshold in bits per second are accepted
	// and converted.
	Counter string `json:"threshold_type" yaml:"threshold_type"`
	// Threshold is the per-second rate that fires the policy; with a
	// baseline multiplier it is the floor below which nothing fires.
	Threshold float64 `json:"threshold" yaml:"threshold"`
	// Baseline, when above 0, fires at Baseline × the learned baseline of
	// each object (but never below Threshold); family threshold only.
	Baseline float64 `json:"baseline_multiplier,omitempty" yaml:"baseline_multiplier,omitempty"`
	// Proto and Port select one protocol and port for the port object
	// types; 0 means any.
	Proto uint8  `json:"proto,omitempty" yaml:"proto,omitempty"`
	Port  uint16 `json:"port,omitempty" yaml:"port,omitempty"`
}

// Of returns the parameters of a policy of either family; nil for other
// families.
func Of(p *policy.Policy) *Params {
	t, _ := p.Params.(*Params)
	return t
}

// Normalize converts bits_in / bits_out to bytes, as the manual says the
// engine compares bytes.
func (t *Params) Normalize() {
	switch t.Counter {
	case "bits_in":
		t.Counter, t.Threshold = "bytes_in", t.Threshold/8
	case "bits_out":
		t.Counter, t.Threshold = "bytes_out", t.Threshold/8
	}
}

// Validate checks the parameters against p's family and object type.
func (t *Params) Validate(p *policy.Policy) error {
	var errs []error
	add := func(path, format string, args ...any) { errs = append(errs, check.Errorf(path, format, args...)) }
	if p.Family == Family {
		if t.Counter != "packets_in" && t.Counter != "bytes_in" && t.Counter != "new_conn" {
			add("threshold_type", "%q is not valid for family threshold; use packets_in, bits_in (bytes_in) or new_conn", t.Counter)
		}
	} else {
		if !slices.Contains(counters, t.Counter) {
			add("threshold_type", "%q is not a threshold type; use one of %s (or bits_in, bits_out)", t.Counter, strings.Join(counters, ", "))
		}
		if (t.Counter == "uniq_local_endpoint" || t.Counter == "uniq_remote_cidr") && p.Object != policy.ObjectHost {
			add("threshold_type", "%s is only available for object type %s", t.Counter, policy.ObjectHost)
		}
		if t.Baseline != 0 {
			add("baseline_multiplier", "baselines apply to the threshold family only")
		}
	}
	if t.Threshold < 0 || t.Baseline < 0 {
		add("threshold", "must not be negative")
	}
	if t.Threshold == 0 && t.Baseline == 0 {
		add("threshold", "give a threshold above 0, a baseline_multiplier, or both")
	}
	if (t.Proto != 0 || t.Port != 0) && !strings.HasSuffix(p.Object, "PROTO+PORT") {
		add("port", "proto and port apply only to the PROTO+PORT object types")
	}
	return errors.Join(errs...)
}

// DefaultTemplates are the three templates the manual says exist by
// default: Packets In, Bits In and New Connections (total), each a
// multiple of the learned baseline with a floor, at severity 5.
func DefaultTemplates(cid uint32) []policy.Policy {
	mk := func(name, counter string, floor float64) policy.Policy {
		return policy.Policy{Name: name, CID: cid, Family: Family, Target: policy.TargetGroups, Object: policy.ObjectGroup,
			Severity: 5, Actions: []policy.Attachment{},
			Params: &Params{Counter: counter, Threshold: floor, Baseline: 5}}
	}
	return []policy.Policy{
		mk("Packets In", "packets_in", 100_000),
		mk("Bits In", "bytes_in", 1e9/8),
		mk("New Connections (total)", "new_conn", 10_000),
	}
}

// newScoped returns a port_threshold detector of the objects of scope s.
func newScoped(d detect.Deps, s scope) (*Detector, error) {
	d.BaselineStore = nil
	det, err := New(d)
	if err != nil {
		return nil, err
	}
	det.scope = s
	return det, nil
}

func init() {
	newParams := func() policy.Params { return &Params{} }
	detect.Register(detect.Family{
		Policy: policy.Spec{Name: Family, Objects: []string{policy.ObjectGroup, policy.ObjectInterface},
			NewParams: newParams, Defaults: DefaultTemplates},
		New: func(d detect.Deps) (detect.Stage, error) { return New(d) },
	})
	detect.Register(detect.Family{
		Policy: policy.Spec{Name: PortFamily, NewParams: newParams, Objects: []string{
			policy.ObjectGroup, policy.ObjectGroupPort, policy.ObjectHost, policy.ObjectInterface, policy.ObjectInterfacePort}},
		// Hosts (TGRP+IP) live in their shard: a stage per shard
		// evaluates them in parallel, while the shards run; the stage of
		// the whole evaluates the merged objects. No baselines: never
		// overwrite the threshold family's.
		New: func(d detect.Deps) (detect.Stage, error) {
			return newScoped(d, mergedObjects)
		},
		NewShard: func(d detect.Deps) (detect.ShardStage, error) {
			return newScoped(d, hostObjects)
		},
	})
}
