package newserver

import (
	"math/rand/v2"
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
//	  10,000 records;
//	flowgen: the load of bench/peers.sh (cmd/flowgen's defaults): 100
//	  internal hosts of 10.0.0.0/16 open one-way TCP and UDP sessions
//	  from random source ports to ports 80, 443, 53, 123 and 22 of 1000
//	  remote addresses of 198.18.0.0/15, every record a new session never
//	  answered (the table stays full), one tick per
//	  million records, with 10,000 services and clients learned.
//
// It also reports the heap per learned client pair and per pending
// session slot. Recipe:
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
		h.rec.Reset()
		s := h.shards[0]
		classes := classify(h, all)
		i := 0
		for b.Loop() {
			s.AddClass(&all[i], &classes[i])
			if i++; i == len(all) {
				i = 0
			}
		}
		if len(h.rec.Got) != 0 || s.Stats().Pending != 0 {
			b.Fatalf("known sessions alerted or were tracked: %d, %d", len(h.rec.Got), s.Stats().Pending)
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
	b.Run("flowgen", func(b *testing.B) {
		h := newHarness(b, 1, nil, testPolicies(24*time.Hour, 1<<20))
		// Learn 10,000 services and clients of the internal hosts, as a
		// day of learning would.
		for i := range 10_000 {
			c := netip.AddrFrom4([4]byte{198, 51, byte(i >> 8), byte(i)})
			srv := netip.AddrFrom4([4]byte{10, 0, 0, byte(i % 100)})
			for _, r := range tcp(c.String(), 50000, srv.String(), uint16(1+i%50)).records(h.now) {
				h.add(r)
			}
			if i%1000 == 999 { // under maxCandidates a tick
				h.now += int64(time.Second)
				h.tick()
			}
		}
		if st := h.whole.Stats(); st.Servers == 0 || st.Clients != 10_000 {
			b.Fatalf("learned %+v", st)
		}
		// A few records, rewritten with a new source port each time: in
		// the pipeline the record is in cache, just decoded.
		all := flowgenRecords(1024, h.now)
		classes := classify(h, all)
		s := h.shards[0]
		// Batches of the pipeline's size, as the pipeline hands them over.
		i, n, port := 0, 0, uint32(0)
		b.ResetTimer()
		for b.Loop() {
			rs, cs := all[i:i+flow.BatchSize], classes[i:i+flow.BatchSize]
			for k := range rs {
				port = port*1103515245 + 12345
				rs[k].SrcPort = uint16(32768 + (port>>8)%28232)
			}
			s.AddBatch(rs, cs)
			if i += flow.BatchSize; i == len(all) {
				i = 0
			}
			if n += flow.BatchSize; n >= 1<<20 {
				n = 0
				h.now += int64(time.Second)
				s.Tick(h.now)
			}
		}
		records := b.N * flow.BatchSize
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(records), "ns/record")
		if st := s.Stats(); records > 2*pendingSlots && st.Pending < pendingSlots*9/10 {
			b.Fatalf("table not full under the flowgen load: %+v", st)
		}
	})
	b.Run("memory", func(b *testing.B) {
		for b.Loop() {
			const n = 60_000
			l := newLearned()
			before := heap()
			sh := serverHash(ptr(netip.MustParseAddr("10.0.0.5").As16()))
			for i := range n {
				c := netip.AddrFrom4([4]byte{198, byte(i >> 16), byte(i >> 8), byte(i)}).As16()
				l.clients.add(clientHash(serviceHash(sh, 2, 6, 443), &c))
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
			if st := h.shards[0].Stats(); uint64(st.Pending)+st.PendingDropped != n {
				b.Fatalf("%+v: sessions tracked and forgotten, want %d in all", st, n)
			}
			b.ReportMetric(float64(int64(heap())-int64(before))/pendingSlots, "B/slot")
			b.ReportMetric(float64(h.shards[0].Stats().PendingDropped), "dropped/60k")
			runtime.KeepAlive(h)
			runtime.KeepAlive(all)
			runtime.KeepAlive(classes)
		}
	})
}

func ptr[T any](v T) *T { return &v }

// flowgenRecords returns n records as cmd/flowgen sends them by default
// (see the flowgen case of BenchmarkNewServer), from a fixed seed.
func flowgenRecords(n int, at int64) []flow.Record {
	rng := rand.New(rand.NewPCG(1, 2))
	ports := []uint16{80, 443, 53, 123, 22}
	out := make([]flow.Record, n)
	for i := range out {
		proto := flow.ProtoTCP
		if rng.IntN(2) == 1 {
			proto = flow.ProtoUDP
		}
		remote := rng.IntN(1000)
		out[i] = flow.Record{
			Src:     netip.AddrFrom4([4]byte{10, 0, 0, byte(rng.IntN(100))}),
			Dst:     netip.AddrFrom4([4]byte{198, 18 + byte(remote>>16), byte(remote >> 8), byte(remote)}),
			SrcPort: uint16(32768 + rng.IntN(61000-32768)), DstPort: ports[rng.IntN(len(ports))],
			Proto: proto, Packets: 5, Bytes: 2000, SamplingRate: 1, Start: at, End: at + int64(time.Second),
		}
		if proto == flow.ProtoTCP {
			out[i].TCPFlags = flow.TCPSyn | flow.TCPAck
		}
	}
	return out
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
