package detect

import (
	"net/netip"
	"slices"

	"github.com/flowsentry/flowsentry/model"
	"github.com/flowsentry/flowsentry/policy"
)

// GroupPolicies resolves, for one family, the policies in force on each
// traffic group of a model: the family's templates of the group's
// partition (or their overrides on the group) and the policies bound to
// the group, muted ones left out. A family's stage keeps one, calls
// Update at each tick and SetModel, and looks policies up per record by
// the group indexes of model.Class without touching the policy set.
type GroupPolicies struct {
	family  policy.Family
	set     *policy.Set
	model   *model.Model
	byGroup [][]*policy.Policy // by index into model.Groups
	any     bool
	// allow is whether a partition of the model has an allow-list.
	allow bool
}

// NewGroupPolicies returns the resolver of family f.
func NewGroupPolicies(f policy.Family) *GroupPolicies {
	return &GroupPolicies{family: f}
}

// Update resolves the policies again when set or m changed since the last
// call, and reports whether they changed.
func (g *GroupPolicies) Update(set *policy.Set, m *model.Model) bool {
	if set == g.set && m == g.model {
		return false
	}
	g.set, g.model, g.any, g.allow = set, m, false, false
	g.byGroup = g.byGroup[:0]
	if m == nil || set == nil {
		return true
	}
	for _, tg := range m.Groups {
		var list []*policy.Policy
		for _, t := range set.Templates() {
			if t.Family != g.family || t.Target != policy.TargetGroups || t.CID != tg.CID {
				continue
			}
			if p := set.ForGroup(t, tg.ID); p != nil && p.Params != nil {
				list = append(list, p)
			}
		}
		for _, p := range set.Specific() {
			if p.Family == g.family && p.Target == policy.TargetGroups && p.Group == tg.ID && p.CID == tg.CID && p.Severity > 0 && p.Params != nil {
				list = append(list, p)
			}
		}
		g.any = g.any || len(list) > 0
		g.byGroup = append(g.byGroup, list)
	}
	g.allow = m.AllowLists()
	return true
}

// Of returns the policies in force on the traffic group at index i of
// the model (as model.Side.Groups holds them); the slice is shared.
func (g *GroupPolicies) Of(i uint16) []*policy.Policy {
	if int(i) >= len(g.byGroup) {
		return nil
	}
	return g.byGroup[i]
}

// Any reports whether any policy of the family is in force.
func (g *GroupPolicies) Any() bool { return g.any }

// Group returns the traffic group at index i of the model.
func (g *GroupPolicies) Group(i uint16) *model.TrafficGroup {
	return &g.model.Groups[i]
}

// GroupIn returns the ID of the first traffic group of groups (indexes
// into the model's groups, as model.Class has them) in partition cid; 0
// for none.
func (g *GroupPolicies) GroupIn(groups []uint16, cid uint32) uint32 {
	for _, i := range groups {
		if tg := g.Group(i); tg.CID == cid {
			return tg.ID
		}
	}
	return 0
}

// Allowed reports whether remote address addr is on the allow-list of
// policy p or of its partition: such an address never counts toward p.
func (g *GroupPolicies) Allowed(p *policy.Policy, addr netip.Addr) bool {
	return (len(p.Allow) > 0 || g.allow) && g.allowed(p, addr)
}

// allowed is Allowed once p or a partition has an allow-list.
func (g *GroupPolicies) allowed(p *policy.Policy, addr netip.Addr) bool {
	if len(p.Allow) > 0 {
		a := addr.Unmap()
		if slices.ContainsFunc(p.Allow, func(pf netip.Prefix) bool { return pf.Contains(a) }) {
			return true
		}
	}
	return g.model != nil && g.model.Allowed(p.CID, addr)
}
