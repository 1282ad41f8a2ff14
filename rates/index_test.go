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

// TestIndexProbes checks that keys shaped as the engine's, the dense sets
// an address block or a port range make, spread over the table as random
// keys do, whatever seed the index drew: a key's mean displacement from
// its home slot stays that of random keys (0.5 in a half-full table) and
// none goes far. A multiply-shift hash, one multiplication cheaper (5 %
// less in BenchmarkAdd), failed it: its slots cluster on dense sets for
// some multipliers (mean 4 for the hosts of a /16 with one of 4).
func TestIndexProbes(t *testing.T) {
	sets := []struct {
		name string
		keys func(yield func(uint64))
	}{
		{"hosts of a /16", func(yield func(uint64)) {
			for i := range 1 << 16 {
				yield(host4Key(7, netipFrom4(10, 1, byte(i>>8), byte(i))))
			}
		}},
		{"every port of two protocols", func(yield func(uint64)) {
			for _, proto := range []uint8{6, 17} {
				for port := range 1 << 16 {
					yield(groupPortKey(3, proto, uint16(port)))
				}
			}
		}},
		{"interface ports", func(yield func(uint64)) {
			for ifIndex := range uint32(64) {
				for port := range 1024 {
					yield(ifPortKey(ifIndex, 6, uint16(port)))
				}
			}
		}},
	}
	for _, set := range sets {
		for seed := range 8 {
			x := newIndex()
			var o Object
			set.keys(func(k uint64) { x.add(k, &o) })
			mask := len(x.slots) - 1
			var sum, worst int
			for i, s := range x.slots {
				if s.obj != nil {
					d := (i - x.home(s.key)) & mask
					sum += d
					worst = max(worst, d)
				}
			}
			if mean := float64(sum) / float64(x.n); mean > 1 || worst > 100 {
				t.Errorf("%s, index %d: mean displacement %.2f, worst %d over %d keys in %d slots", set.name, seed, mean, worst, x.n, len(x.slots))
			}
		}
	}
}
