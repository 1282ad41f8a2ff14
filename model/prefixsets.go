package model

import (
	"cmp"
	"encoding/binary"
	"net/netip"
	"slices"

	"github.com/gaissmai/bart"
)

// scanLen is how many prefixes of one IP version a prefixSets scans in a
// list rather than looking them up in its table.
const scanLen = 8

// prefixSets maps an address to the set of values of the longest prefix
// holding it; once sealed, to every value of every prefix holding it. The
// prefixes live in a bart table. While an IP version has at most scanLen
// of them, as the traffic groups and INT blocks of many networks do (the
// private blocks and a few public ones), a look-up of that version scans
// them in a list instead, most specific first, which takes a fraction of
// the table's instructions: every record is classified this way twice or
// three times (BenchmarkClassify).
type prefixSets[V comparable] struct {
	table *bart.Table[[]V]
	v4    []net4[V] // most specific first; unused when big4
	v6    []net6[V] // most specific first; unused when big6
	// big4 and big6 say that the version has more than scanLen prefixes.
	big4, big6 bool
}

// net4 is an IPv4 prefix as an address and a mask, and its set.
type net4[V any] struct {
	addr, mask uint32
	v          []V
}

// net6 is an IPv6 prefix as the halves of its address and mask, and its
// set.
type net6[V any] struct {
	hi, lo, mhi, mlo uint64
	v                []V
}

func newPrefixSets[V comparable]() *prefixSets[V] {
	return &prefixSets[V]{table: new(bart.Table[[]V])}
}

// add adds v to the set of prefix p. Call seal when every value is added.
func (s *prefixSets[V]) add(p netip.Prefix, v V) {
	s.table.Modify(p.Masked(), func(old []V, _ bool) ([]V, bool) {
		if slices.Contains(old, v) {
			return old, false
		}
		return append(old, v), false
	})
}

// seal merges into every prefix's set the sets of all prefixes covering
// it, so that the longest-prefix match answers "every value holding the
// address", and builds the lists of the versions with few prefixes.
func (s *prefixSets[V]) seal() {
	type entry struct {
		p netip.Prefix
		v []V
	}
	var all []entry
	for p := range s.table.All() {
		var set []V
		for _, v := range s.table.Supernets(p) {
			for _, x := range v {
				if !slices.Contains(set, x) {
					set = append(set, x)
				}
			}
		}
		all = append(all, entry{p, set})
	}
	for _, e := range all {
		s.table.Insert(e.p, e.v)
	}
	// Longest first: prefixes of one length are disjoint, so the first
	// that holds an address is its longest match.
	slices.SortStableFunc(all, func(a, b entry) int { return cmp.Compare(b.p.Bits(), a.p.Bits()) })
	s.v4, s.v6 = nil, nil
	for _, e := range all {
		if e.p.Addr().Is4() {
			a := e.p.Addr().As4()
			s.v4 = append(s.v4, net4[V]{addr: binary.BigEndian.Uint32(a[:]), mask: ^uint32(0) << (32 - e.p.Bits()), v: e.v})
			continue
		}
		hi, lo := halves16(e.p.Addr())
		mhi, mlo := ^uint64(0), ^uint64(0)
		if b := e.p.Bits(); b <= 64 {
			mhi, mlo = ^uint64(0)<<(64-b), 0
		} else {
			mlo = ^uint64(0) << (128 - b)
		}
		s.v6 = append(s.v6, net6[V]{hi: hi, lo: lo, mhi: mhi, mlo: mlo, v: e.v})
	}
	s.big4, s.big6 = len(s.v4) > scanLen, len(s.v6) > scanLen
	if s.big4 {
		s.v4 = nil
	}
	if s.big6 {
		s.v6 = nil
	}
}

// halves16 returns the two 64-bit halves of a's 16 bytes.
func halves16(a netip.Addr) (hi, lo uint64) {
	b := a.As16()
	return binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])
}

// lookup returns the set of the longest prefix holding a (unmapped), nil
// when none does. The returned slice is shared and must not be modified.
func (s *prefixSets[V]) lookup(a netip.Addr) []V {
	switch {
	case a.Is4() && !s.big4:
		b := a.As4()
		x := binary.BigEndian.Uint32(b[:])
		for i := range s.v4 {
			if n := &s.v4[i]; x&n.mask == n.addr {
				return n.v
			}
		}
		return nil
	case a.Is6() && !s.big6:
		hi, lo := halves16(a)
		for i := range s.v6 {
			if n := &s.v6[i]; hi&n.mhi == n.hi && lo&n.mlo == n.lo {
				return n.v
			}
		}
		return nil
	}
	v, _ := s.table.Lookup(a)
	return v
}

// empty reports whether no prefix was added.
func (s *prefixSets[V]) empty() bool { return s.table.Size() == 0 }
