package policy

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/flowsentry/flowsentry/config/check"
)

// Family is the name of a detector family; each family registers itself
// (see RegisterFamily) with its parameters, object types and stage.
type Family string

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
	// Allow are remote blocks that never count toward this policy (an
	// allow-list beside the partition's): speed-test servers, CDNs, one's
	// own scanners. Security families honour it; empty allows nothing.
	Allow []netip.Prefix `json:"allow,omitempty" yaml:"allow,omitempty"`
	// Source says where the policy is defined: SourceConfig for the
	// configuration file, which alone changes it, SourceAPI for the API
	// and the default templates. The Manager sets it; a request's or a
	// file's value is ignored.
	Source Source `json:"source,omitempty" yaml:"-"`
	// Params are the parameters of the family (threshold_type, threshold
	// … for the threshold families), flat beside the keys above in every
	// encoding; nil until the family is known.
	Params Params `json:"-" yaml:"-"`
}

// Template reports whether p applies to every object of its partition.
func (p *Policy) Template() bool {
	return p.Group == 0 && !p.Exporter.IsValid()
}

// Normalize fills what a policy may leave out: the actions list and the
// family's parameters (with their defaults), converted from user units
// (bits to bytes) where the family does. A typed nil Params counts as
// none.
func (p *Policy) Normalize() {
	if p.Actions == nil {
		p.Actions = []Attachment{}
	}
	if noParams(p.Params) {
		p.Params = nil
		if s, ok := Lookup(p.Family); ok {
			p.Params = s.NewParams()
		}
	}
	if n, ok := p.Params.(Normalizer); ok {
		n.Normalize()
	}
}

// Validate checks p on its own: the common fields, then the family's
// parameters (references to partitions, groups and instances are checked
// by the Manager's Checker). Without parameters (nil or a typed nil), p
// gets the family's defaults, which are checked.
func (p *Policy) Validate() error {
	var errs []error
	add := func(path, format string, args ...any) { errs = append(errs, check.Errorf(path, format, args...)) }
	if strings.TrimSpace(p.Name) == "" {
		add("name", "is empty; give the policy a name")
	}
	spec, known := Lookup(p.Family)
	switch {
	case !known:
		add("family", "%q is not a detector family; use one of %s", p.Family, familyNames())
	case !slices.Contains(spec.Objects, p.Object):
		add("object_type", "%q is not an object type of family %s; use one of %s", p.Object, p.Family, strings.Join(spec.Objects, ", "))
	}
	wantTarget := TargetGroups
	if strings.HasPrefix(p.Object, "EXPORTER_ADDR") {
		wantTarget = TargetInterfaces
	}
	if p.Target != wantTarget {
		add("target", "%q does not match object type %s; use %q", p.Target, p.Object, wantTarget)
	}
	if p.Severity < 0 {
		add("severity", "%d is negative; use 0 to mute or 1 and up", p.Severity)
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
	for i, a := range p.Allow {
		if !a.IsValid() || a != a.Masked() {
			add(fmt.Sprintf("allow[%d]", i), "%s is not a canonical CIDR; use %s", a, a.Masked())
		}
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
	if known && len(errs) == 0 {
		if noParams(p.Params) {
			p.Params = spec.NewParams()
		}
		errs = append(errs, p.Params.Validate(p))
	}
	return errors.Join(errs...)
}
