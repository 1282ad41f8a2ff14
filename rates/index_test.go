package rates

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"testing"
)

// TestIndex checks the index against a Go map over random adds, look-ups
// and deletes, with keys shaped like the engine's and key sets that grow
// the table and shrink it back.
func TestIndex(t *testing.T) {
	cases := []struct {
		name string
		key  func(rng *rand.Rand) uint64
	}{
		{"group ports", func(rng *rand.Rand) uint64 {
			return groupPortKey(uint32(rng.IntN(3)), uint8(rng.IntN(2)*11+6), uint16(rng.IntN(600)))
		}},
		{"hosts of one /22", func(rng *rand.Rand) uint64 {
			return host4Key(1, netipFrom4(10, 1, byte(rng.IntN(4)), byte(rng.IntN(256))))
		}},
		{"zero and small keys", func(rng *rand.Rand) uint64 { return uint64(rng.IntN(40)) }},
		{"random", func(rng *rand.Rand) uint64 { return rng.Uint64() >> rng.IntN(64) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(3, 4))
			x, want := newIndex(), map[uint64]*Object{}
			objs := make([]Object, 4000)
			for i := range 40_000 {
				k := tc.key(rng)
				// Add more than delete for the first half, then the reverse.
				switch op := rng.IntN(10); {
				case op < 4 == (i < 20_000):
					if want[k] == nil {
						o := &objs[i%len(objs)]
						x.add(k, o)
						want[k] = o
					}
				case op < 7:
					x.del(k)
					delete(want, k)
				}
				if got := x.get(k); got != want[k] {
					t.Fatalf("op %d: get(%#x) = %p, want %p", i, k, got, want[k])
				}
			}
			if x.n != len(want) {
				t.Errorf("%d keys, want %d", x.n, len(want))
			}
			for k, o := range want {
				if got := x.get(k); got != o {
					t.Errorf("get(%#x) = %p, want %p", k, got, o)
				}
			}
			x.add(1<<60, nil)
			if got := x.get(1 << 60); got != nil || x.n != len(want) {
				t.Errorf("adding nil stored %p (%d keys, want %d)", got, x.n, len(want))
			}
		})
	}
}

// TestHalves checks the IPv4 fast path of halves against the 16-byte form.
func TestHalves(t *testing.T) {
	for _, s := range []string{"0.0.0.0", "10.1.2.3", "255.255.255.255", "::ffff:10.1.2.3", "2001:db8::1", "::"} {
		t.Run(s, func(t *testing.T) {
			a := netip.MustParseAddr(s)
			b := a.As16()
			wantHi, wantLo := binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])
			if hi, lo := halves(a); hi != wantHi || lo != wantLo {
				t.Errorf("halves(%v) = %#x, %#x; want %#x, %#x", a, hi, lo, wantHi, wantLo)
			}
		})
	}
}
