package model

import "github.com/flowsentry/flowsentry/flow"

// Side is what the model says of one address of a flow record. Its slices
// are shared with the model that classified it and must not be modified;
// they are valid as long as that model is.
type Side struct {
	// Groups are the indexes (into Model.Groups) of the traffic groups
	// holding the address.
	Groups []uint16
	// Internal are the partitions (CIDs) whose INT blocks hold the
	// address. It is looked up only when the other side of the record is
	// in a traffic group, the only case a stage reads it (a host's unique
	// local endpoints; exfiltration to outside the INT blocks).
	Internal []uint32
	// Blacklists are the IDs of the blacklists holding the address.
	Blacklists []uint32
}

// Own says which parts of a record the stage receiving it counts: the
// pipeline sends a record to every shard that owns part of its state
// (see package pipeline), each with the parts it owns.
type Own uint8

// The parts of a record.
const (
	// OwnSrc counts the source side: its traffic groups, group ports
	// and host.
	OwnSrc Own = 1 << iota
	// OwnDst counts the destination side.
	OwnDst
	// OwnRecord counts what belongs to the record as a whole: the
	// exporter and its interfaces, and state kept per session.
	OwnRecord
	// OwnAll is every part: a record seen by a single engine.
	OwnAll = OwnSrc | OwnDst | OwnRecord
)

// Class is the classification of one flow record, computed once (by the
// pipeline, for every stage) from one model: the traffic groups,
// partitions' INT blocks and blacklists of each side, and the parts of
// the record the receiving stage owns.
type Class struct {
	Src, Dst Side
	Own      Own
}

// Classify fills c for record r with every part owned. A nil model
// classifies nothing: no group, no partition, no blacklist.
func (m *Model) Classify(r *flow.Record, c *Class) {
	*c = Class{Own: OwnAll}
	if m == nil {
		return
	}
	src, dst := r.Src.Unmap(), r.Dst.Unmap()
	if src.IsValid() {
		c.Src.Groups = m.GroupsOf(src)
	}
	if dst.IsValid() {
		c.Dst.Groups = m.GroupsOf(dst)
	}
	if len(c.Src.Groups) > 0 && dst.IsValid() {
		c.Dst.Internal = m.Internal(dst)
	}
	if len(c.Dst.Groups) > 0 && src.IsValid() {
		c.Src.Internal = m.Internal(src)
	}
	if len(m.Blacklists) > 0 {
		if src.IsValid() {
			c.Src.Blacklists = m.Blacklisted(src)
		}
		if dst.IsValid() {
			c.Dst.Blacklists = m.Blacklisted(dst)
		}
	}
}
