package model

import (
	"net/netip"
	"slices"

	"github.com/gaissmai/bart"
)

// Partition is a tenant: traffic groups, policies, plugins and users belong
// to one partition.
type Partition struct {
	// CID is the partition's numeric ID (FlowTraq's "CID").
	CID uint32
	// Name is the partition's display name.
	Name string
	// Internal are the partition's internal (INT) blocks.
	Internal []netip.Prefix
}

// TrafficGroup is a named set of CIDRs in a partition; rates, policies and
// alerts are kept per traffic group.
type TrafficGroup struct {
	// ID is the numeric traffic group ID (TGRP in plugin environments).
	ID uint32
	// Name is the friendly name (TGRP_NAME).
	Name string
	// CID is the partition the group belongs to.
	CID uint32
	// CIDRs are the prefixes the group holds.
	CIDRs []netip.Prefix
}

// Model is an immutable snapshot of the configured network: built once per
// configuration load and swapped atomically (see Holder), so readers on the
// hot path take no lock. All methods are safe for concurrent use.
type Model struct {
	// Partitions are the configured partitions, in configuration order.
	Partitions []Partition
	// Groups are the configured traffic groups, in configuration order.
	// Lookups return indexes into this slice.
	Groups []TrafficGroup

	groups   bart.Table[[]uint16]    // prefix → every group holding it
	internal bart.Table[[]uint32]    // prefix → every CID with it as INT
	ifNames  map[InterfaceKey]string // exporter interface names
}

// InterfaceKey names an exporter interface.
type InterfaceKey struct {
	// Exporter is the exporter's address.
	Exporter netip.Addr
	// IfIndex is the interface index on that exporter.
	IfIndex uint32
}

// New builds a model from validated parts. Overlapping traffic groups are
// allowed: an address belongs to every group one of whose CIDRs holds it.
func New(partitions []Partition, groups []TrafficGroup, ifNames map[InterfaceKey]string) *Model {
	m := &Model{Partitions: partitions, Groups: groups, ifNames: ifNames}
	for i, g := range groups {
		for _, p := range g.CIDRs {
			m.groups.Modify(p.Masked(), func(old []uint16, _ bool) ([]uint16, bool) {
				if slices.Contains(old, uint16(i)) {
					return old, false
				}
				return append(old, uint16(i)), false
			})
		}
	}
	for _, pt := range partitions {
		for _, p := range pt.Internal {
			m.internal.Modify(p.Masked(), func(old []uint32, _ bool) ([]uint32, bool) {
				if slices.Contains(old, pt.CID) {
					return old, false
				}
				return append(old, pt.CID), false
			})
		}
	}
	// A longest-prefix match finds one prefix; fold every supernet's set
	// into each prefix so that one lookup answers "all groups holding addr".
	foldSupernets(&m.groups)
	foldSupernets(&m.internal)
	return m
}

func foldSupernets[V comparable](t *bart.Table[[]V]) {
	type entry struct {
		p netip.Prefix
		v []V
	}
	var all []entry
	for p := range t.All() {
		var set []V
		for _, v := range t.Supernets(p) {
			for _, x := range v {
				if !slices.Contains(set, x) {
					set = append(set, x)
				}
			}
		}
		all = append(all, entry{p, set})
	}
	for _, e := range all {
		t.Insert(e.p, e.v)
	}
}

// GroupsOf returns the indexes (into Groups) of the traffic groups that hold
// addr. The returned slice is shared and must not be modified.
func (m *Model) GroupsOf(addr netip.Addr) []uint16 {
	v, _ := m.groups.Lookup(addr.Unmap())
	return v
}

// IsInternal reports whether addr is in one of partition cid's INT blocks.
func (m *Model) IsInternal(cid uint32, addr netip.Addr) bool {
	v, _ := m.internal.Lookup(addr.Unmap())
	return slices.Contains(v, cid)
}

// InterfaceName returns the configured name of an exporter interface, or ""
// when none is configured.
func (m *Model) InterfaceName(exporter netip.Addr, ifIndex uint32) string {
	return m.ifNames[InterfaceKey{exporter, ifIndex}]
}
