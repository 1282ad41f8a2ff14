package model

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
)

// TestPrefixSetsScan: the list scanned for a few prefixes answers as the
// folded table does, for IPv4 and IPv6, nested prefixes and /0 included,
// and a version past scanLen prefixes goes to the table.
func TestPrefixSetsScan(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 9))
	randAddr := func(v6 bool) netip.Addr {
		if v6 {
			var b [16]byte
			for i := range b {
				b[i] = byte(rng.Uint32())
			}
			b[0] = 0xfd // near the prefixes below
			return netip.AddrFrom16(b)
		}
		return netip.AddrFrom4([4]byte{10, byte(rng.Uint32N(4)), byte(rng.Uint32()), byte(rng.Uint32())})
	}
	for _, n := range []int{0, 1, 3, scanLen, scanLen + 1, 40} {
		for _, v6 := range []bool{false, true} {
			s := newPrefixSets[uint16]()
			var prefixes []netip.Prefix
			for i := range n {
				a := randAddr(v6)
				bits := int(rng.Uint32N(uint32(a.BitLen()) + 1))
				if i == 0 {
					bits = 0
				}
				if !v6 && bits > 0 && bits < 8 {
					bits = 8 // keep most inside 10/8, so that they nest
				}
				p := netip.PrefixFrom(a, bits).Masked()
				prefixes = append(prefixes, p)
				s.add(p, uint16(i%5))
			}
			s.seal()
			if s.big4 != (s.table.Size4() > scanLen) || s.big6 != (s.table.Size6() > scanLen) {
				t.Errorf("%d + %d prefixes: big4 %v big6 %v", s.table.Size4(), s.table.Size6(), s.big4, s.big6)
			}
			for range 2000 {
				a := randAddr(v6)
				if rng.Uint32N(2) == 0 && len(prefixes) > 0 { // inside a prefix
					p := prefixes[rng.IntN(len(prefixes))]
					b := a.AsSlice()
					pb := p.Addr().AsSlice()
					for i := range p.Bits() / 8 {
						b[i] = pb[i]
					}
					a, _ = netip.AddrFromSlice(b)
				}
				want, _ := s.table.Lookup(a)
				if got := s.lookup(a); !slices.Equal(got, want) {
					t.Fatalf("%d prefixes %v: lookup(%s) = %v, table says %v", n, prefixes, a, got, want)
				}
			}
		}
	}
	if got := newPrefixSets[uint32]().lookup(netip.Addr{}); got != nil {
		t.Errorf("lookup of the zero address: %v", got)
	}
}
