package newserver

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/flowsentry/flowsentry/flow"
	"github.com/flowsentry/flowsentry/model"
)

func addr4(a, b, c, d byte) netip.Addr { return netip.AddrFrom4([4]byte{a, b, c, d}) }

// sequentialBatch is what AddBatch did before its two-step pipeline, and
// what it must still do: find the records to track, then track each in
// turn.
func sequentialBatch(s *Shard, rs []flow.Record, cs []model.Class) {
	var ts []tracking
	for i := range rs {
		if t, ok := s.tracked(&rs[i], &cs[i]); ok {
			t.i = int32(i)
			ts = append(ts, t)
		}
	}
	for _, t := range ts {
		s.track(&rs[t.i], &cs[t.i], &t)
	}
}

// TestBatchPipelineMatchesSequential: AddBatch, which places a record's
// session some records before it counts the record into it, leaves the
// same table, statistics and alerts as tracking the records one after the
// other. The load mixes a flood of one-way sessions that fills the
// table's buckets (so that new sessions are refused, then replace idle
// ones after a tick) with sessions whose records follow each other
// closely, both directions within the pipeline's lag.
func TestBatchPipelineMatchesSequential(t *testing.T) {
	pipelined := newHarness(t, 1, nil, testPolicies(0, DefaultMaxLearned))
	sequential := newHarness(t, 1, nil, testPolicies(0, DefaultMaxLearned))
	rng := rand.New(rand.NewPCG(1, 2))
	addr := func(prefix string, n uint32) netip.Addr {
		b := netip.MustParseAddr(prefix).As4()
		return addr4(b[0], byte(n>>16), byte(n>>8), byte(n))
	}
	for sec := range 4 {
		now := pipelined.now
		var recs []flow.Record
		for i := range 120_000 {
			// A one-way SYN from a new remote client to a server port.
			c := flow.Record{Src: addr("198.0.0.0", uint32(sec*200_000+i)), Dst: addr("10.0.0.0", uint32(rng.IntN(64))),
				SrcPort: uint16(1024 + rng.IntN(60000)), DstPort: uint16(1 + rng.IntN(40)), Proto: flow.ProtoTCP,
				Packets: 1, Bytes: 60, TCPFlags: flow.TCPSyn, SamplingRate: 1, Start: now, End: now + int64(time.Millisecond)}
			recs = append(recs, c)
			if i%7 == 0 {
				// A whole session, its two directions one to three
				// records apart.
				s := tcp(addr("203.0.0.0", uint32(rng.IntN(5000))).String(), uint16(1024+rng.IntN(60000)),
					addr("10.0.0.0", uint32(rng.IntN(64))).String(), uint16(1+rng.IntN(40)))
				two := s.records(now)
				recs = append(recs, two[0])
				for range rng.IntN(3) {
					recs = append(recs, recs[len(recs)-2])
				}
				recs = append(recs, two[1])
			}
		}
		for lo := 0; lo < len(recs); lo += flow.BatchSize {
			rs := recs[lo:min(lo+flow.BatchSize, len(recs))]
			cs := make([]model.Class, len(rs))
			for i := range rs {
				_, cs[i] = pipelined.owner(&rs[i])
			}
			pipelined.shards[0].AddBatch(slices.Clone(rs), slices.Clone(cs))
			sequentialBatch(sequential.shards[0], slices.Clone(rs), slices.Clone(cs))
		}
		p, q := pipelined.shards[0], sequential.shards[0]
		if p.stats != q.stats {
			t.Fatalf("second %d: stats %+v, one at a time %+v", sec, p.stats, q.stats)
		}
		if sec > 0 && p.stats.PendingDropped == 0 {
			t.Fatalf("second %d: no session refused or replaced: the load does not fill the table", sec)
		}
		if !slices.Equal(p.table.buckets, q.table.buckets) || !slices.Equal(p.table.sess, q.table.sess) || p.table.n != q.table.n {
			t.Fatalf("second %d: the tables differ", sec)
		}
		if diff := cmp.Diff(typeKeys(pipelined.rec), typeKeys(sequential.rec)); diff != "" {
			t.Fatalf("second %d: alerts (-pipelined +one at a time):\n%s", sec, diff)
		}
		for _, h := range []*harness{pipelined, sequential} {
			h.now += int64(time.Second)
			h.tick()
		}
	}
	if n := len(typeKeys(pipelined.rec)); n == 0 {
		t.Fatal("no alert: the whole sessions were never counted")
	} else {
		t.Logf("%d alerts, %d sessions refused or replaced", n, pipelined.shards[0].stats.PendingDropped)
	}
}

// TestBatchPipelineKeepsLocatedSlots: a record located in an idle slot
// and not counted yet keeps the slot from a new session placed after it
// in the same batch. Four pending sessions fill one bucket; a second
// later, one record of the first and a new session of the same bucket
// come in one batch: the new session must replace another slot, not the
// one the first record is still to be counted into.
func TestBatchPipelineKeepsLocatedSlots(t *testing.T) {
	pipelined := newHarness(t, 1, nil, testPolicies(0, DefaultMaxLearned))
	sequential := newHarness(t, 1, nil, testPolicies(0, DefaultMaxLearned))
	s := pipelined.shards[0]
	// Five one-way sessions to 10.0.0.5:443 whose hashes share a bucket.
	var same []flow.Record
	var bucket uint64
	for n := uint32(0); len(same) < 5; n++ {
		r := flow.Record{Src: addr4(198, 51, byte(n>>16), byte(n>>8)), Dst: netip.MustParseAddr("10.0.0.5"), SrcPort: 1024 + uint16(n&0xff), DstPort: 443,
			Proto: flow.ProtoTCP, Packets: 1, Bytes: 60, TCPFlags: flow.TCPSyn, SamplingRate: 1}
		_, c := pipelined.owner(&r)
		tr, ok := s.tracked(&r, &c)
		if !ok {
			t.Fatal("a SYN to an internal server is not tracked")
		}
		b := tr.h & uint64(pendingSlots/ways-1)
		if len(same) == 0 {
			bucket = b
		}
		if b == bucket {
			same = append(same, r)
		}
	}
	add := func(recs ...flow.Record) {
		for _, h := range []*harness{pipelined, sequential} {
			rs := slices.Clone(recs)
			cs := make([]model.Class, len(rs))
			for i := range rs {
				rs[i].Start, rs[i].End = h.now, h.now+int64(time.Millisecond)
				_, cs[i] = h.owner(&rs[i])
			}
			if h == pipelined {
				h.shards[0].AddBatch(rs, cs)
			} else {
				sequentialBatch(h.shards[0], rs, cs)
			}
		}
	}
	add(same[:4]...) // the bucket is full
	for _, h := range []*harness{pipelined, sequential} {
		h.now += int64(time.Second)
		h.tick()
	}
	// The first session again, then a new one of the bucket: one slot,
	// idle since the last tick, is replaced, not the first session's.
	add(same[0], same[4])
	p, q := pipelined.shards[0], sequential.shards[0]
	if !slices.Equal(p.table.buckets, q.table.buckets) || !slices.Equal(p.table.sess, q.table.sess) {
		t.Fatalf("the tables differ:\npipelined %+v\none at a time %+v", p.table.buckets[bucket], q.table.buckets[bucket])
	}
	if p.stats.PendingDropped != 1 {
		t.Fatalf("%d sessions replaced, want 1", p.stats.PendingDropped)
	}
	sess := p.table.sess[bucket*ways : bucket*ways+ways]
	for way, h := range p.table.buckets[bucket].tag {
		if e := sess[way]; h != 0 && e.packets[0]+e.packets[1] != 1 && e.packets[0]+e.packets[1] != 2 {
			t.Fatalf("way %d holds %d packets", way, e.packets[0]+e.packets[1])
		}
	}
}
