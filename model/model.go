package model

import (
	"iter"
	"net/netip"
	"slices"
	"time"
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
	// Allow are the remote blocks no security detector of the partition
	// counts (its allow-list).
	Allow []netip.Prefix
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
	// Blacklists are the configured blacklists with the entries last read
	// from their files, in configuration order.
	Blacklists []Blacklist

	// The tables are never modified once built, so a refreshed snapshot
	// shares those that did not change.
	groups     *prefixSets[uint16]     // address → every group holding it
	internal   *prefixSets[uint32]     // address → every CID with it as INT
	allow      *prefixSets[uint32]     // address → every CID allowing it
	blacklists *blacklistIndex         // address → every blacklist ID holding it
	ifNames    map[InterfaceKey]string // exporter interface names
	names      names                   // partition, group and blacklist names by ID
}

// names are the display names by numeric ID, for alert fields.
type names struct {
	partitions, groups, blacklists map[uint32]string
}

// Blacklist is a named list of addresses and CIDRs read from a file and
// re-read every Refresh when the file changed.
type Blacklist struct {
	// ID is the blacklist's numeric ID.
	ID uint32
	// Name is the display name, also the "blacklist" metric label.
	Name string
	// File is the path of the list.
	File string
	// Refresh is how often File is checked for changes and re-read; 0
	// means never.
	Refresh time.Duration

	entries *entries // read from File, shared by the snapshots holding them
}

// Len returns how many distinct entries were read from the file.
func (b Blacklist) Len() int { return b.entries.len() }

// Prefixes yields the distinct entries read from the file, addresses as /32
// or /128: IPv4 addresses in order, then the other entries in order.
func (b Blacklist) Prefixes() iter.Seq[netip.Prefix] { return b.entries.all() }

// InterfaceKey names an exporter interface.
type InterfaceKey struct {
	// Exporter is the exporter's address.
	Exporter netip.Addr
	// IfIndex is the interface index on that exporter.
	IfIndex uint32
}

// New builds a model from validated parts. Overlapping traffic groups are
// allowed: an address belongs to every group one of whose CIDRs holds it.
// The model has no blacklists; Build adds those configured.
func New(partitions []Partition, groups []TrafficGroup, ifNames map[InterfaceKey]string) *Model {
	m := &Model{
		Partitions: partitions,
		Groups:     groups,
		groups:     newPrefixSets[uint16](),
		internal:   newPrefixSets[uint32](),
		allow:      newPrefixSets[uint32](),
		ifNames:    ifNames,
		names:      names{partitions: map[uint32]string{}, groups: map[uint32]string{}},
	}
	for _, pt := range partitions {
		m.names.partitions[pt.CID] = pt.Name
	}
	for _, g := range groups {
		m.names.groups[g.ID] = g.Name
	}
	for i, g := range groups {
		for _, p := range g.CIDRs {
			m.groups.add(p, uint16(i))
		}
	}
	for _, pt := range partitions {
		for _, p := range pt.Internal {
			m.internal.add(p, pt.CID)
		}
		for _, p := range pt.Allow {
			m.allow.add(p, pt.CID)
		}
	}
	m.groups.seal()
	m.internal.seal()
	m.allow.seal()
	return m
}

// withBlacklists returns a copy of m holding lists instead of its own
// blacklists; m is left untouched for the readers still using it.
// Entries are not copied: lists share those of m that did not change.
func (m *Model) withBlacklists(lists []Blacklist) *Model {
	c := *m
	c.Blacklists = lists
	c.names.blacklists = make(map[uint32]string, len(lists))
	for _, b := range lists {
		c.names.blacklists[b.ID] = b.Name
	}
	c.blacklists = newBlacklistIndex(lists)
	return &c
}

// GroupsOf returns the indexes (into Groups) of the traffic groups that hold
// addr. The returned slice is shared and must not be modified.
func (m *Model) GroupsOf(addr netip.Addr) []uint16 {
	return m.groups.lookup(addr.Unmap())
}

// Internal returns the partitions (CIDs) whose INT blocks hold addr, nil
// when none does. The returned slice is shared and must not be modified.
func (m *Model) Internal(addr netip.Addr) []uint32 {
	return m.internal.lookup(addr.Unmap())
}

// PartitionName returns the name of partition cid; "" for none (or a nil
// model).
func (m *Model) PartitionName(cid uint32) string {
	if m == nil {
		return ""
	}
	return m.names.partitions[cid]
}

// GroupName returns the name of traffic group id; "" for none.
func (m *Model) GroupName(id uint32) string {
	if m == nil {
		return ""
	}
	return m.names.groups[id]
}

// BlacklistName returns the name of blacklist id; "" for none.
func (m *Model) BlacklistName(id uint32) string {
	if m == nil {
		return ""
	}
	return m.names.blacklists[id]
}

// AllowLists reports whether any partition has an allow-list: without one,
// Allowed is false for every address.
func (m *Model) AllowLists() bool { return !m.allow.empty() }

// Allowed reports whether partition cid's allow-list holds addr; cheap
// when no partition has one.
func (m *Model) Allowed(cid uint32, addr netip.Addr) bool {
	if m.allow.empty() {
		return false
	}
	return slices.Contains(m.allow.lookup(addr.Unmap()), cid)
}

// Blacklisted returns the IDs of the blacklists holding addr, nil when none
// does. The returned slice is shared and must not be modified.
func (m *Model) Blacklisted(addr netip.Addr) []uint32 {
	v, _ := m.blacklists.Lookup(addr.Unmap())
	return v
}

// InterfaceName returns the configured name of an exporter interface, or ""
// when none is configured.
func (m *Model) InterfaceName(exporter netip.Addr, ifIndex uint32) string {
	return m.ifNames[InterfaceKey{exporter, ifIndex}]
}
