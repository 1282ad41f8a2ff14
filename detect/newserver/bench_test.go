package newserver

import (
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/flowsentry/flowsentry/flow"
	"github.com/flowsentry/flowsentry/model"
)

// BenchmarkNewServer measures the record path of a shard:
//
//	known: records of sessions whose service and client are learned (the
//	  steady state of a busy server);
//	pending: one-way records of new sessions filling and draining the
//	  session table (a scan, or a burst of new clients), one tick per
//	  10,000 records.
//
// It also reports the heap per learned client pair and per pending
// session. Recipe:
//
//	go test ./detect/newserver -run '^$' -bench NewServer -benchmem -count 6 -cpu 1,2 | tee new.txt
//	benchstat old.txt new.txt
func BenchmarkNewServer(b *testing.B) {
	const clients = 4000
	recs := func(n int, oneWay bool) []flow.Record {
		var out []flow.Record
		for i := range n {
			c := netip.AddrFrom4([4]byte{198, 51, byte(i >> 8), byte(i)})
			s := tcp(c.String(), 50000, "10.0.0.5", 443)
			if oneWay {
				s.spk, s.sport = 0, uint16(1+i%1000)
			}
			out = append(out, s.records(t0)...)
		}
		return out
	}
	b.Run("known", func(b *testing.B) {
		h := newHarness(b, 1, nil, testPolicies(0, 1<<20))
		all := recs(clients, false)
		h.step(all...)
		h.rec.got = nil
		s := h.shards[0]
		classes := classify(h, all)
		i := 0
		for b.Loop() {
			s.AddClass(&all[i], &classes[i])
			if i++; i == len(all) {
				i = 0
			}
		}
		if len(h.rec.got) != 0 || len(s.index) != 0 {
			b.Fatalf("known sessions alerted or were tracked: %d, %d", len(h.rec.got), len(s.index))
		}
	})
	b.Run("pending", func(b *testing.B) {
		h := newHarness(b, 1, nil, testPolicies(0, 1<<20))
		all := recs(clients*4, true)
		classes := classify(h, all)
		s := h.shards[0]
		// Warm the table to its working size.
		for i := range all {
			s.AddClass(&all[i], &classes[i])
		}
		i, n := 0, 0
		for b.Loop() {
			s.AddClass(&all[i], &classes[i])
			if i++; i == len(all) {
				i = 0
			}
			if n++; n == 10000 {
				n = 0
				h.now += int64(2 * time.Minute)
				s.Tick(h.now)
			}
		}
	})
	b.Run("memory", func(b *testing.B) {
		for b.Loop() {
			const n = 60_000
			l := newLearned()
			before := heap()
			for i := range n {
				l.clients[clientKey{serverKey{policy: 2, server: netip.MustParseAddr("10.0.0.5").As16(), port: 443, proto: 6},
					netip.AddrFrom4([4]byte{198, byte(i >> 16), byte(i >> 8), byte(i)}).As16()}] = struct{}{}
			}
			b.ReportMetric(float64(int64(heap())-int64(before))/n, "B/client")
			runtime.KeepAlive(l)
			l = nil

			h := newHarness(b, 1, nil, testPolicies(0, 1<<20))
			all := recs(n/2, true)
			all = append(all, recs(n/2, true)...)
			for i := n / 2; i < n; i++ { // distinct sessions
				all[i].SrcPort = 40000
			}
			classes := classify(h, all)
			before = heap()
			for i := range all {
				h.shards[0].AddClass(&all[i], &classes[i])
			}
			if got := len(h.shards[0].index); got != n {
				b.Fatalf("%d sessions tracked, want %d", got, n)
			}
			b.ReportMetric(float64(int64(heap())-int64(before))/n, "B/session")
			runtime.KeepAlive(h)
			runtime.KeepAlive(all)
			runtime.KeepAlive(classes)
		}
	})
}

func classify(h *harness, recs []flow.Record) []model.Class {
	out := make([]model.Class, len(recs))
	for i := range recs {
		h.m.Classify(&recs[i], &out[i])
		out[i].Own = model.OwnRecord
	}
	return out
}

func heap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
