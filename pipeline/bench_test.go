package pipeline

import (
	"net/netip"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flowsentry/flowsentry/collector/netflow"
	"github.com/flowsentry/flowsentry/collector/sflow"
	"github.com/flowsentry/flowsentry/flow"
	"github.com/flowsentry/flowsentry/gen"
	"github.com/flowsentry/flowsentry/model"
	"github.com/flowsentry/flowsentry/rates"
)

// BenchmarkDecodeRates measures decode + rates together, per record, for
// each export protocol: datagrams of 30 records (10 flow samples for
// sFlow) from 10,000 remote sources to 1,000 hosts of the default traffic
// group, decoded, classified and added to the rate engine of one shard
// with a tick every second of virtual time, as the collector worker and
// the pipeline do. The budget is
// 400 ns of CPU per record and no allocation.
//
//	go test -run '^$' -bench DecodeRates -benchmem -count=6 -cpu 1 ./pipeline | benchstat -
func BenchmarkDecodeRates(b *testing.B) {
	for _, proto := range []gen.Protocol{gen.NetFlowV5, gen.NetFlowV9, gen.IPFIX, gen.SFlow} {
		b.Run(proto.String(), func(b *testing.B) {
			g, err := gen.New(gen.Config{
				Protocol:  proto,
				SrcPrefix: netip.MustParsePrefix("198.18.0.0/15"), SrcAddrs: 10_000,
				DstPrefix: netip.MustParsePrefix("10.1.0.0/16"), DstAddrs: 1000,
				Ports: []uint16{80, 443, 53, 123, 22, 25, 8080, 3389},
				Seed:  1,
			})
			if err != nil {
				b.Fatal(err)
			}
			const n = 256
			now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC).UnixNano()
			var datagrams [][]byte
			for range n {
				datagrams = append(datagrams, g.Append(nil, now))
			}
			m, err := model.Build(model.DefaultConfig())
			if err != nil {
				b.Fatal(err)
			}
			shards, err := rates.NewShards(rates.DefaultConfig(), 1, prometheus.NewRegistry())
			if err != nil {
				b.Fatal(err)
			}
			re := shards.Shard(0)
			re.SetModel(m)
			var class model.Class
			add := func(r *flow.Record) {
				m.Classify(r, &class)
				re.AddClass(r, &class)
			}
			exporter := netip.MustParseAddr("127.0.0.1")
			nf := netflow.NewDecoder(netflow.NewTemplates(netflow.DefaultConfig()))
			sf := sflow.NewDecoder()
			batch := &flow.Batch{Records: make([]flow.Record, 0, 64), Counters: make([]flow.IfCounters, 0, 16)}
			decode := func(d []byte) {
				batch.Records, batch.Counters = batch.Records[:0], batch.Counters[:0]
				if proto == gen.SFlow {
					if _, err := sf.Decode(now, d, batch); err != nil {
						b.Fatal(err)
					}
					return
				}
				var err error
				if batch.Records, _, err = nf.Decode(exporter, now, d, batch.Records); err != nil {
					b.Fatal(err)
				}
			}
			// Learn the templates and create the objects once.
			for _, d := range datagrams {
				decode(d)
				for i := range batch.Records {
					add(&batch.Records[i])
				}
			}
			re.Tick(now)
			records := 0
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				decode(datagrams[i%n])
				for j := range batch.Records {
					add(&batch.Records[j])
				}
				for j := range batch.Counters {
					re.AddCounters(&batch.Counters[j])
				}
				records += len(batch.Records)
				if i%n == n-1 {
					now += int64(time.Second)
					re.Tick(now)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(records), "ns/record")
			b.ReportMetric(float64(records)/b.Elapsed().Seconds(), "records/s")
		})
	}
}
