package policy

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/flowsentry/flowsentry/config/check"
)

// Family is a detector family of the FlowTraq policy page.
type Family string

// The detector families this release evaluates.
const (
	// FamilyThreshold is Threshold/Baseline: packets in, bits in or new
	// connections of a traffic group or exporter interface, against a
	// fixed threshold or a multiple of a learned baseline.
	FamilyThreshold Family = "threshold"
	// FamilyPortThreshold is the port/protocol Threshold: any counter of a
	// traffic group, port, host or interface object.
	FamilyPortThreshold Family = "port_threshold"
)

// Target says what a policy watches.
type Target string

// The targets.
const (
	// TargetGroups are traffic groups (and the objects inside them).
	TargetGroups Target = "traffic_groups"
	// TargetInterfaces are exporter interfaces (and their ports).
	TargetInterfaces Target = "interfaces"
)

// Object types (OBJECT_TYPE of the plugin contract).
const (
	ObjectGroup         = "TGRP"
	ObjectGroupPort     = "TGRP+PROTO+PORT"
	ObjectHost          = "TGRP+IP"
	ObjectInterface     = "EXPORTER_ADDR+IFINDEX"
	ObjectInterfacePort = "EXPORTER_ADDR+IFINDEX+PROTO+PORT"
)

// Threshold types (THRESHOLD_TYPE of the plugin contract); all per second.
var thresholdTypes = []string{"bytes_in", "bytes_out", "packets_in", "packets_out", "new_conn", "updates", "uniq_local_endpoint", "uniq_remote_cidr"}

// Attachment is an action attached to a policy: a plugin instance, the
// per-policy overrides of its allowOverride fields, and whether each
// alert's action waits for an operator's approval.
type Attachment struct {
	// Instance is the plugin instance ID.
	Instance uint64 `json:"instance" yaml:"instance"`
	// Overrides replace instance values for this policy.
	Overrides map[string]string `json:"overrides,omitempty" yaml:"overrides,omitempty"`
	// Approval makes actions wait in "waiting_approval" until approved.
	Approval bool `json:"approval" yaml:"approval"`
}

// Policy is a detector with its parameters, severity and actions. A
// policy whose Group (or Exporter) is unset is a template for every traffic
// group (or interface) of its partition; a policy with Override set
// replaces that template on one object, and mutes it there when its
// severity is 0.
type Policy struct {
	// ID identifies the policy; the store assigns it when 0.
	ID uint64 `json:"id" yaml:"id"`
	// Name is shown in the UI.
	Name string `json:"name" yaml:"name"`
	// CID is the partition.
	CID uint32 `json:"cid" yaml:"cid"`
	// Family is the detector family.
	Family Family `json:"family" yaml:"family"`
	// Target is traffic_groups or interfaces.
	Target Target `json:"target" yaml:"target"`
	// Object is the OBJECT_TYPE watched (TGRP, TGRP+PROTO+PORT, TGRP+IP,
	// EXPORTER_ADDR+IFINDEX, EXPORTER_ADDR+IFINDEX+PROTO+PORT).
	Object string `json:"object_type" yaml:"object_type"`
	// Counter is the THRESHOLD_TYPE compared: bytes_in, bytes_out,
	// packets_in, packets_out, new_conn, updates, uniq_local_endpoint,
	// uniq_remote_cidr. Byte counters are compared in bytes per second;
	// the API also accepts bits_in / bits_out with a threshold in bits per
	// second and converts it.
	Counter string `json:"threshold_type" yaml:"threshold_type"`
	// Threshold is the per-second rate that fires the policy; with a
	// baseline multiplier it is the floor below which nothing fires.
	Threshold float64 `json:"threshold" yaml:"threshold"`
	// Baseline, when above 0, fires at Baseline × the learned baseline of
	// each object (but never below Threshold).
	Baseline float64 `json:"baseline_multiplier,omitempty" yaml:"baseline_multiplier,omitempty"`
	// Proto and Port select one protocol and port for the port object
	// types; 0 means any.
	Proto uint8  `json:"proto,omitempty" yaml:"proto,omitempty"`
	Port  uint16 `json:"port,omitempty" yaml:"port,omitempty"`
	// Severity is 1 and up (above 10 allowed); 0 mutes.
	Severity int `json:"severity" yaml:"severity"`
	// Group restricts the policy to one traffic group (0 = template).
	Group uint32 `json:"tgrp,omitempty" yaml:"tgrp,omitempty"`
	// Exporter and IfIndex restrict the policy to one interface.
	Exporter netip.Addr `json:"exporter_addr,omitzero" yaml:"exporter_addr"`
	IfIndex  uint32     `json:"ifindex,omitempty" yaml:"ifindex,omitempty"`
	// Override is the template this policy replaces on its one object.
	Override uint64 `json:"override,omitempty" yaml:"override,omitempty"`
	// Actions are the plugin instances called for its alerts.
	Actions []Attachment `json:"actions" yaml:"actions"`
}

// Template reports whether p applies to every object of its partition.
func (p *Policy) Template() bool {
	return p.Group == 0 && !p.Exporter.IsValid()
}

// Normalize converts UI units: a bits_in / bits_out counter becomes
// bytes_in / bytes_out with the threshold divided by 8, as the manual
// says the engine compares bytes.
func (p *Policy) Normalize() {
	switch p.Counter {
	case "bits_in":
		p.Counter, p.Threshold = "bytes_in", p.Threshold/8
	case "bits_out":
		p.Counter, p.Threshold = "bytes_out", p.Threshold/8
	}
	if p.Actions == nil {
		p.Actions = []Attachment{}
	}
}

// Validate checks p on its own (references to partitions, groups and
// instances are checked by the Set).
func (p *Policy) Validate() error {
	var errs []error
	add := func(path, format string, args ...any) { errs = append(errs, check.Errorf(path, format, args...)) }
	if strings.TrimSpace(p.Name) == "" {
		add("name", "is empty; give the policy a name")
	}
	switch p.Family {
	case FamilyThreshold:
		if p.Object != ObjectGroup && p.Object != ObjectInterface {
			add("object_type", "%q is not valid for family threshold; use %s or %s", p.Object, ObjectGroup, ObjectInterface)
		}
		if p.Counter != "packets_in" && p.Counter != "bytes_in" && p.Counter != "new_conn" {
			add("threshold_type", "%q is not valid for family threshold; use packets_in, bits_in (bytes_in) or new_conn", p.Counter)
		}
	case FamilyPortThreshold:
		if !validObject(p.Object) {
			add("object_type", "%q is not an object type; use one of %s", p.Object, strings.Join(objectTypes(), ", "))
		}
		if !validCounter(p.Counter) {
			add("threshold_type", "%q is not a threshold type; use one of %s (or bits_in, bits_out)", p.Counter, strings.Join(thresholdTypes, ", "))
		}
		if (p.Counter == "uniq_local_endpoint" || p.Counter == "uniq_remote_cidr") && p.Object != ObjectHost {
			add("threshold_type", "%s is only available for object type %s", p.Counter, ObjectHost)
		}
	default:
		add("family", "%q is not a detector family; use %q or %q", p.Family, FamilyThreshold, FamilyPortThreshold)
	}
	wantTarget := TargetGroups
	if strings.HasPrefix(p.Object, "EXPORTER_ADDR") {
		wantTarget = TargetInterfaces
	}
	if p.Target != wantTarget {
		add("target", "%q does not match object type %s; use %q", p.Target, p.Object, wantTarget)
	}
	if p.Threshold < 0 || p.Baseline < 0 {
		add("threshold", "must not be negative")
	}
	if p.Threshold == 0 && p.Baseline == 0 {
		add("threshold", "give a threshold above 0, a baseline_multiplier, or both")
	}
	if p.Baseline != 0 && p.Family != FamilyThreshold {
		add("baseline_multiplier", "baselines apply to the threshold family only")
	}
	if p.Severity < 0 {
		add("severity", "%d is negative; use 0 to mute or 1 and up", p.Severity)
	}
	if (p.Proto != 0 || p.Port != 0) && !strings.HasSuffix(p.Object, "PROTO+PORT") {
		add("port", "proto and port apply only to the PROTO+PORT object types")
	}
	if p.Group != 0 && p.Target != TargetGroups {
		add("tgrp", "a traffic group applies only to target traffic_groups")
	}
	if p.Exporter.IsValid() != (p.IfIndex != 0) {
		add("ifindex", "give both exporter_addr and ifindex to bind a policy to one interface, or neither")
	}
	if p.Exporter.IsValid() && p.Target != TargetInterfaces {
		add("exporter_addr", "an interface applies only to target interfaces")
	}
	if p.Override != 0 && p.Template() {
		add("override", "an override needs the one traffic group (tgrp) or interface it applies to")
	}
	seen := map[uint64]bool{}
	for i, a := range p.Actions {
		if a.Instance == 0 {
			add(fmt.Sprintf("actions[%d].instance", i), "is 0; give a plugin instance ID")
		}
		if seen[a.Instance] {
			add(fmt.Sprintf("actions[%d].instance", i), "instance %d is attached twice", a.Instance)
		}
		seen[a.Instance] = true
	}
	return joinErrs(errs)
}

func validObject(o string) bool {
	for _, v := range objectTypes() {
		if v == o {
			return true
		}
	}
	return false
}

func objectTypes() []string {
	return []string{ObjectGroup, ObjectGroupPort, ObjectHost, ObjectInterface, ObjectInterfacePort}
}

func validCounter(c string) bool {
	for _, v := range thresholdTypes {
		if v == c {
			return true
		}
	}
	return false
}
