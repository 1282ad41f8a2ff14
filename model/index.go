package model

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
	"slices"

	"github.com/gaissmai/bart"
)

// blacklistIndex answers which blacklists hold an address: every list
// holding it as an entry or inside one of its CIDRs. It is never modified
// once built; a nil index holds nothing.
//
// A bart table costs about 100 bytes a prefix, so IPv4 addresses, most of
// any large list, are kept apart in a sorted array (hostIndex) and the table
// holds only CIDRs and IPv6 entries. Both store the folded set of IDs (see
// prefixSets.seal), so one lookup answers, and equal sets are one shared
// slice.
type blacklistIndex struct {
	hosts hostIndex
	cidrs *bart.Table[[]uint32]
	// held4 has a bit for each IPv4 /16 holding an address of a list or
	// part of one of its CIDRs: an address of any other /16 (most
	// addresses, for most lists) is on no list, which its look-up learns
	// from one bit of 8 KiB that stay in the caches.
	held4 [1 << 16 / 64]uint64
}

// Lookup returns the IDs of the blacklists holding addr, which must be
// unmapped, and whether any does. The slice is shared and must not be
// modified.
func (x *blacklistIndex) Lookup(addr netip.Addr) ([]uint32, bool) {
	if x == nil {
		return nil, false
	}
	if addr.Is4() {
		b := addr.As4()
		a := binary.BigEndian.Uint32(b[:])
		if x.held4[a>>22]&(1<<(a>>16&63)) == 0 {
			return nil, false
		}
		if v, ok := x.hosts.lookup(a); ok {
			return v, true
		}
		if x.cidrs.Size4() == 0 { // lists of addresses only: no walk
			return nil, false
		}
	} else if x.cidrs.Size6() == 0 {
		return nil, false
	}
	return x.cidrs.Lookup(addr)
}

// hostIndex maps IPv4 addresses to sets of blacklist IDs. Keys are sorted
// and bucketed by their top bits: a lookup reads a bucket's bounds and
// binary-searches a dozen keys.
type hostIndex struct {
	keys  []uint32 // sorted, unique; shared with a list's entries when one list has addresses
	start []uint32 // keys[start[k]:start[k+1]] are those whose top bits are k
	shift uint     // 32 minus the number of top bits indexing start
	sets  [][]uint32
	setOf []uint32 // keys[i]'s set is sets[setOf[i]]; nil when it is sets[0] for every key
}

func (h *hostIndex) lookup(a uint32) ([]uint32, bool) {
	if len(h.keys) == 0 {
		return nil, false
	}
	k := a >> h.shift
	lo, hi := h.start[k], h.start[k+1]
	if lo == hi { // an empty bucket: most addresses, for most lists
		return nil, false
	}
	i, ok := slices.BinarySearch(h.keys[lo:hi], a)
	if !ok {
		return nil, false
	}
	if h.setOf == nil {
		return h.sets[0], true
	}
	return h.sets[h.setOf[int(lo)+i]], true
}

// interner hands out one shared slice for each distinct set of IDs.
type interner struct {
	index map[string]uint32 // the IDs' bytes → index in sets
	sets  [][]uint32
	key   []byte
}

// intern returns the index of the set holding ids, in their order; ids is
// copied when new.
func (in *interner) intern(ids []uint32) uint32 {
	in.key = in.key[:0]
	for _, id := range ids {
		in.key = binary.LittleEndian.AppendUint32(in.key, id)
	}
	if i, ok := in.index[string(in.key)]; ok {
		return i
	}
	i := uint32(len(in.sets))
	in.index[string(in.key)] = i
	in.sets = append(in.sets, slices.Clip(slices.Clone(ids)))
	return i
}

// newBlacklistIndex indexes the entries of lists. An address held by
// several lists, or inside CIDRs of several lists, gets their IDs in the
// order of a longest-prefix match followed by the less specific prefixes
// covering it, each prefix's IDs in the order of lists.
func newBlacklistIndex(lists []Blacklist) *blacklistIndex {
	in := &interner{index: make(map[string]uint32)}
	x := &blacklistIndex{cidrs: new(bart.Table[[]uint32])}

	// The CIDRs and IPv6 entries, each prefix with the lists holding it.
	for _, b := range lists {
		if b.entries == nil {
			continue
		}
		own := in.sets[in.intern([]uint32{b.ID})]
		for _, p := range b.entries.others {
			x.cidrs.Modify(p, func(old []uint32, found bool) ([]uint32, bool) {
				switch {
				case !found:
					return own, false
				case slices.Contains(old, b.ID):
					return old, false
				}
				return in.sets[in.intern(append(slices.Clip(old), b.ID))], false
			})
		}
	}
	type folded struct {
		p netip.Prefix
		v []uint32
	}
	all := make([]folded, 0, x.cidrs.Size())
	var set []uint32
	for p := range x.cidrs.All() {
		set = set[:0]
		for _, v := range x.cidrs.Supernets(p) {
			set = appendNew(set, v)
		}
		all = append(all, folded{p, in.sets[in.intern(set)]})
	}
	for _, f := range all {
		x.cidrs.Insert(f.p, f.v)
	}

	x.hosts = newHostIndex(lists, x.cidrs, in)
	for _, k := range x.hosts.keys {
		x.hold16(k>>16, 1)
	}
	for p := range x.cidrs.All4() {
		a := p.Addr().As4()
		n := uint32(1)
		if p.Bits() < 16 {
			n = 1 << (16 - p.Bits())
		}
		x.hold16(binary.BigEndian.Uint32(a[:])>>16, n)
	}
	return x
}

// hold16 sets the bits of held4 of the n /16s from first.
func (x *blacklistIndex) hold16(first, n uint32) {
	for i := first; i < first+n; i++ {
		x.held4[i/64] |= 1 << (i % 64)
	}
}

// appendNew appends to set the IDs of ids it does not hold yet.
func appendNew(set, ids []uint32) []uint32 {
	for _, id := range ids {
		if !slices.Contains(set, id) {
			set = append(set, id)
		}
	}
	return set
}

// newHostIndex merges the IPv4 addresses of lists, each with the IDs of the
// lists holding it followed by those of the folded CIDRs covering it.
func newHostIndex(lists []Blacklist, cidrs *bart.Table[[]uint32], in *interner) hostIndex {
	type head struct {
		id    uint32
		hosts []uint32
	}
	var heads []head
	for _, b := range lists {
		if b.entries != nil && len(b.entries.hosts) > 0 {
			heads = append(heads, head{b.ID, b.entries.hosts})
		}
	}
	if len(heads) == 0 {
		return hostIndex{}
	}

	var h hostIndex
	if len(heads) == 1 {
		h.keys = heads[0].hosts // immutable: shared
	} else {
		n := 0
		for _, hd := range heads {
			n = max(n, len(hd.hosts))
		}
		h.keys = make([]uint32, 0, n)
	}
	setOf := make([]uint32, 0, cap(h.keys))
	var (
		own, set []uint32
		// The set of the previous address, which the next one most
		// often shares.
		last             bool
		lastOwn, lastSet uint32
		lastCIDRs        []uint32
	)
	for {
		// The lowest address at the heads of the lists, then the lists
		// holding it, in the order of lists.
		var a uint32
		found := false
		for _, hd := range heads {
			if len(hd.hosts) > 0 && (!found || hd.hosts[0] < a) {
				a, found = hd.hosts[0], true
			}
		}
		if !found {
			break
		}
		own = own[:0]
		for i := range heads {
			if hd := &heads[i]; len(hd.hosts) > 0 && hd.hosts[0] == a {
				own = append(own, hd.id)
				hd.hosts = hd.hosts[1:]
			}
		}
		if len(heads) > 1 {
			h.keys = append(h.keys, a)
		}

		ownIdx := in.intern(own)
		covering, _ := cidrs.Lookup(addr4(a))
		if !last || ownIdx != lastOwn || !sameSlice(covering, lastCIDRs) {
			set = appendNew(append(set[:0], own...), covering)
			lastOwn, lastSet, lastCIDRs, last = ownIdx, in.intern(set), covering, true
		}
		setOf = append(setOf, lastSet)
	}

	h.sets = in.sets
	if first := setOf[0]; !slices.ContainsFunc(setOf, func(s uint32) bool { return s != first }) {
		h.sets = [][]uint32{in.sets[first]}
	} else {
		h.setOf = setOf
	}

	// Buckets of about 16 keys, indexed by up to 16 top bits.
	b := uint(min(16, max(0, bits.Len(uint(len(h.keys)))-4)))
	h.shift = 32 - b
	h.start = make([]uint32, 1<<b+1)
	for _, k := range h.keys {
		h.start[k>>h.shift+1]++
	}
	for i := 1; i < len(h.start); i++ {
		h.start[i] += h.start[i-1]
	}
	return h
}

// sameSlice reports whether a and b are the same shared slice.
func sameSlice(a, b []uint32) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}
