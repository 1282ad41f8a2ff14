package rates

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/flowsentry/flowsentry/flow"
)

// benchRecords returns n records shaped like a border router's export of
// traffic group 1 (10.1.0.0/16): 1,000 local hosts, random remotes, half
// inbound to a few service ports, half outbound from ephemeral ports (so
// some ten thousand port objects), 90% TCP, 5% of flows lasting up to a
// minute, all ending in the current second of at(100), from one exporter
// with 8 interfaces.
func benchRecords(n int) []flow.Record {
	rng := rand.New(rand.NewPCG(1, 2))
	services := []uint16{22, 25, 53, 80, 123, 443, 993, 3306, 5432, 8080}
	recs := make([]flow.Record, n)
	for i := range recs {
		local := netip.AddrFrom4([4]byte{10, 1, byte(rng.IntN(4)), byte(rng.IntN(250))})
		remote := netip.AddrFrom4([4]byte{byte(11 + rng.IntN(200)), byte(rng.IntN(256)), byte(rng.IntN(256)), byte(rng.IntN(256))})
		r := flow.Record{
			Exporter: exporterA, InIf: uint32(1 + rng.IntN(8)), OutIf: uint32(1 + rng.IntN(8)),
			SamplingRate: 1, Proto: flow.ProtoTCP, TCPFlags: flow.TCPAck | flow.TCPPsh,
		}
		r.Packets = uint64(1 + rng.IntN(50))
		r.Bytes = r.Packets * uint64(40+rng.IntN(1400))
		if rng.IntN(10) == 0 {
			r.Proto, r.TCPFlags = flow.ProtoUDP, 0
		} else if rng.IntN(3) == 0 {
			r.TCPFlags |= flow.TCPSyn
		}
		service, ephemeral := services[rng.IntN(len(services))], uint16(32768+rng.IntN(8192))
		if i%2 == 0 {
			r.Src, r.Dst, r.SrcPort, r.DstPort = remote, local, ephemeral, service
		} else {
			r.Src, r.Dst, r.SrcPort, r.DstPort = local, remote, ephemeral, service
		}
		r.End = at(100.01 + 0.98*rng.Float64())
		r.Start = r.End
		if rng.IntN(20) == 0 {
			r.Start -= int64(rng.IntN(60)) * nsPerSec
		}
		recs[i] = r
	}
	return recs
}

// BenchmarkAdd measures the hot path once every object exists: ns per
// record and allocations (0). With a pool of 512 records the objects stay
// in the CPU caches (about 1,500 objects: the compute cost); with 65,536
// they do not (about 63,000 objects, 1.1 KiB each: the cost of cache
// misses, which dominates on a busy collector).
//
//	go test -run '^$' -bench . -benchmem -count=6 -cpu 1,2 ./rates | benchstat -
func BenchmarkAdd(b *testing.B) {
	for _, pool := range []int{1 << 9, 1 << 16} {
		b.Run(fmt.Sprintf("pool=%d", pool), func(b *testing.B) {
			e, _ := newTestEngine(b, DefaultConfig())
			e.Tick(at(100))
			recs := benchRecords(pool)
			for i := range recs {
				e.Add(&recs[i])
			}
			i := 0
			for b.Loop() {
				e.Add(&recs[i&(len(recs)-1)])
				i++
			}
			b.ReportMetric(float64(liveObjects(e)), "objects")
		})
	}
}

func liveObjects(e *Engine) int {
	n := 0
	for _, l := range e.live {
		n += len(l)
	}
	return n
}

// BenchmarkTick measures a tick (aligning, peaks, window roll, snapshot)
// over the objects of BenchmarkAdd's traffic.
//
//	go test -run '^$' -bench . -benchmem -count=6 -cpu 1,2 ./rates | benchstat -
func BenchmarkTick(b *testing.B) {
	cfg := timelessConfig()
	e, _ := newTestEngine(b, cfg)
	e.Tick(at(100))
	recs := benchRecords(1 << 16)
	for i := range recs {
		e.Add(&recs[i])
	}
	now := at(100)
	for b.Loop() {
		now += nsPerSec
		e.Tick(now)
	}
	b.ReportMetric(float64(liveObjects(e)), "objects")
}

// BenchmarkMerge measures a tick of two shards and their merge (summing,
// peaks, expiry; no snapshot asked) over the objects of BenchmarkAdd's
// traffic, each record split between the shards by address as the
// pipeline does.
//
//	go test -run '^$' -bench Merge -benchmem -count=6 ./rates | benchstat -
func BenchmarkMerge(b *testing.B) {
	cfg := timelessConfig()
	p := newShardedPair(b, cfg, 2, 1)
	p.tick(at(100))
	recs := benchRecords(1 << 16)
	for i := range recs {
		p.add(&recs[i])
	}
	now := at(100)
	for b.Loop() {
		now += nsPerSec
		for i := range p.shards.Len() {
			p.shards.Shard(i).Tick(now)
		}
		p.shards.Merge(now)
	}
	b.ReportMetric(float64(liveObjects(p.shards.Shard(0))+liveObjects(p.shards.Shard(1))), "objects")
}

// timelessConfig is the default configuration with timeouts long enough
// that nothing expires while a benchmark's clock runs.
func timelessConfig() Config {
	cfg := DefaultConfig()
	cfg.IdleTimeout = 100_000 * time.Hour
	cfg.ExporterTimeout = cfg.IdleTimeout
	return cfg
}
