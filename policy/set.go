package policy

import (
	"bytes"
	"cmp"
	"encoding/json"
	"net/netip"
	"slices"
)

// Set is an immutable view of the policies for the detectors: templates,
// and overrides by template and object. Safe for concurrent use.
type Set struct {
	all       []Policy
	templates []*Policy
	overrides map[overrideKey]*Policy
	specific  []*Policy // bound to one object, not overriding a template
}

type overrideKey struct {
	template uint64
	group    uint32
	exporter netip.Addr
	ifIndex  uint32
}

func newSet(all []Policy) *Set {
	slices.SortFunc(all, func(a, b Policy) int { return cmp.Compare(a.ID, b.ID) })
	s := &Set{all: all, overrides: map[overrideKey]*Policy{}}
	for i := range s.all {
		p := &s.all[i]
		switch {
		case p.Template():
			s.templates = append(s.templates, p)
		case p.Override != 0:
			s.overrides[overrideKey{p.Override, p.Group, p.Exporter, p.IfIndex}] = p
		default:
			s.specific = append(s.specific, p)
		}
	}
	return s
}

// All returns every policy by ID; the slice must not be modified.
func (s *Set) All() []Policy { return s.all }

// Templates returns the template policies.
func (s *Set) Templates() []*Policy { return s.templates }

// Specific returns the policies bound to one object that override no
// template.
func (s *Set) Specific() []*Policy { return s.specific }

// ForGroup returns the policy in force for template t on traffic group g:
// the override there if any (nil when it mutes), else t itself.
func (s *Set) ForGroup(t *Policy, g uint32) *Policy {
	return s.resolve(t, overrideKey{template: t.ID, group: g})
}

// ForInterface returns the policy in force for template t on an exporter
// interface.
func (s *Set) ForInterface(t *Policy, exporter netip.Addr, ifIndex uint32) *Policy {
	return s.resolve(t, overrideKey{template: t.ID, exporter: exporter, ifIndex: ifIndex})
}

func (s *Set) resolve(t *Policy, k overrideKey) *Policy {
	p := t
	if o, ok := s.overrides[k]; ok {
		p = o
	}
	if p.Severity == 0 {
		return nil
	}
	return p
}

// ByID returns a policy by ID, nil if none.
func (s *Set) ByID(id uint64) *Policy {
	i, ok := slices.BinarySearchFunc(s.all, id, func(p Policy, id uint64) int { return cmp.Compare(p.ID, id) })
	if !ok {
		return nil
	}
	return &s.all[i]
}

// Attachments returns the actions attached to a policy; the action
// dispatcher calls it for every new alert.
func (s *Set) Attachments(id uint64) []Attachment {
	if p := s.ByID(id); p != nil {
		return p.Actions
	}
	return nil
}

// Encode writes a policy as its JSON document.
func Encode(p Policy) ([]byte, error) { return json.Marshal(p) }

// Decode reads a policy document strictly: unknown fields are errors.
func Decode(doc []byte) (Policy, error) {
	var p Policy
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return Policy{}, err
	}
	p.Normalize()
	return p, nil
}
