package newserver

import (
	"testing"
)

func TestHashSet(t *testing.T) {
	var s hashSet
	for i := range uint64(10_000) {
		if !s.add(i * 0x9e3779b97f4a7c15) {
			t.Fatalf("add %d: already there", i)
		}
	}
	if s.add(0) || s.add(1) || s.n != 10_000 { // 0 was added first (as 1)
		t.Errorf("hashes 0 and 1 are one key: n %d", s.n)
	}
	for i := range uint64(10_000) {
		if !s.has(i * 0x9e3779b97f4a7c15) {
			t.Fatalf("has %d = false", i)
		}
	}
	if s.has(12345) {
		t.Error("has an absent hash")
	}
	if s.n*4 > len(s.slots)*3 {
		t.Errorf("%d entries in %d slots: over 3/4", s.n, len(s.slots))
	}
}

// TestPendingTable fills one bucket: a full bucket replaces the slot idle
// the longest, unless all were used since the tick; the tick evicts done
// and idle slots.
func TestPendingTable(t *testing.T) {
	var tb pendingTable
	tb.init()
	nb := uint64(len(tb.buckets))
	same := func(i uint64) uint64 { return 7 + i*nb } // all in bucket 7
	const t0 = uint32(1000)
	var b *bucket
	for i := range uint64(ways) {
		bk, _, e, fresh, dropped := tb.place(same(i), t0)
		if e == nil || !fresh || dropped {
			t.Fatalf("slot %d: session %v fresh %v dropped %v", i, e, fresh, dropped)
		}
		b = bk
	}
	// Hit.
	if _, way, e, fresh, dropped := tb.place(same(2), t0); e == nil || fresh || dropped || b.tag[way] != same(2) {
		t.Fatal("no hit")
	}
	// Full, every slot used since the tick: not tracked.
	if _, _, e, _, dropped := tb.place(same(9), t0); e != nil || !dropped {
		t.Fatalf("full bucket at the same tick: session %v dropped %v", e, dropped)
	}
	// Records at a later tick for all but slot 2; later still, a new
	// session replaces slot 2, idle the longest.
	b.seen = [ways]uint32{t0 + 5, t0 + 5, t0, t0 + 5}
	_, way, e, fresh, dropped := tb.place(same(9), t0+20)
	if e == nil || !fresh || !dropped || way != 2 || b.tag[2] != same(9) || tb.n != ways {
		t.Fatalf("replace: way %d dropped %v n %d", way, dropped, tb.n)
	}
	b.state[1] = slotDone
	tb.evict(t0 + 21)
	if tb.n != ways-1 || b.state[1] != slotEmpty {
		t.Fatalf("after tick: n %d states %v", tb.n, b.state)
	}
	tb.evict(t0 + 21 + pendingTimeoutMs + 1)
	if tb.n != 0 || b.state != [ways]uint8{} {
		t.Fatalf("after a minute: n %d states %v", tb.n, b.state)
	}
}

// TestNotTracked: sessions that can bring no candidate stay out of the
// table; the others wait in it.
func TestNotTracked(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    sess
		want int
	}{
		{"udp to an outside server", udp("10.0.0.5", 40000, "198.51.100.7", 53, 1, 0), 0},
		{"udp from outside to an inside server", udp("198.51.100.7", 40000, "10.0.0.5", 53, 1, 0), 1},
		{"udp same ports: the first packets decide", udp("10.0.0.5", 123, "198.51.100.7", 123, 1, 0), 1},
		{"tcp to an outside server: flags may decide", with(tcp("10.0.0.5", 40000, "198.51.100.7", 443), func(s *sess) { s.spk = 0 }), 1},
		{"outside to outside", udp("198.51.100.8", 40000, "198.51.100.7", 53, 1, 0), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, 1, nil, testPolicies(0, DefaultMaxLearned))
			for _, r := range tc.s.records(h.now) {
				h.add(r)
			}
			if got := h.shards[0].Stats().Pending; got != tc.want {
				t.Errorf("pending %d, want %d", got, tc.want)
			}
		})
	}
}
