package engine

import (
	"context"
	"log/slog"
	"net/netip"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flowsentry/flowsentry/alert"
	"github.com/flowsentry/flowsentry/collector/netflow"
	"github.com/flowsentry/flowsentry/config"
	"github.com/flowsentry/flowsentry/detect"
	"github.com/flowsentry/flowsentry/detect/threshold"
	"github.com/flowsentry/flowsentry/flow"
	"github.com/flowsentry/flowsentry/gen"
	"github.com/flowsentry/flowsentry/model"
	"github.com/flowsentry/flowsentry/pipeline"
	"github.com/flowsentry/flowsentry/policy"
	"github.com/flowsentry/flowsentry/rates"
)

// BenchmarkPipeline measures the whole detection path in one process, as
// serve runs it: NetFlow v9 datagrams of 30 records from 10,000 remote
// sources to 10,000 hosts, decoded by GOMAXPROCS producers (the collector's
// workers) into batches that the pipeline classifies and routes to
// GOMAXPROCS shards; rates per shard, merged every 100 ms (the tick), the
// manual's three default TGRP templates and a TGRP+IP packets_in policy on
// every host, and the alert engine. records/s is the figure to compare
// between -cpu 1 and -cpu 2 (one shard, then two):
//
//	go test -run '^$' -bench Pipeline -benchmem -count=6 -cpu 1,2 ./engine | benchstat -col /cpu -
//
// With /families=all, every detector family also runs as a template on
// the default traffic group, with the policies of
// bench/peers/all-families.yaml (high thresholds: the cost of watching).
func BenchmarkPipeline(b *testing.B) {
	dgs := datagrams(b, hostsLoad, 1024)
	b.Run("families=threshold", func(b *testing.B) { benchPipeline(b, nil, dgs) })
	b.Run("families=all", func(b *testing.B) {
		f, err := config.Read("../bench/peers/all-families.yaml")
		if err != nil {
			b.Fatal(err)
		}
		benchPipeline(b, f.Config.Policies, dgs)
	})
}

// hostsLoad is BenchmarkPipeline's load: 10,000 remote sources to 10,000
// hosts.
var hostsLoad = gen.Config{
	Protocol:  gen.NetFlowV9,
	SrcPrefix: netip.MustParsePrefix("198.18.0.0/15"), SrcAddrs: 10_000,
	DstPrefix: netip.MustParsePrefix("10.1.0.0/16"), DstAddrs: 10_000,
	Ports: []uint16{80, 443, 53, 123, 22, 25, 8080, 3389},
	Seed:  1,
}

// BenchmarkPeersLoad runs BenchmarkPipeline's path on the load of
// bench/peers.sh (flowgen's defaults: 100 local hosts to 1,000 remote
// addresses, 5 ports), with no family beyond the thresholds, every family,
// and each family of bench/peers/all-families.yaml alone, so that the
// cost of each is the difference from families=threshold. The datagrams
// hold 2 million distinct records, replayed in turn:
//
//	go test -run '^$' -bench PeersLoad -benchtime 200000x -cpu 1 ./engine
func BenchmarkPeersLoad(b *testing.B) {
	// 2 million records, as many as peers.sh sends in a second or two, so
	// that nearly every record opens a new session and a big scanner's
	// tally counts with sketches, as under flowgen's endless load (1,024
	// datagrams repeated would make a few thousand sessions, all known).
	dgs := datagrams(b, gen.Config{Protocol: gen.NetFlowV9, Seed: 1}, 1<<16)
	f, err := config.Read("../bench/peers/all-families.yaml")
	if err != nil {
		b.Fatal(err)
	}
	b.Run("families=threshold", func(b *testing.B) { benchPipeline(b, nil, dgs) })
	b.Run("families=all", func(b *testing.B) { benchPipeline(b, f.Config.Policies, dgs) })
	for _, p := range f.Config.Policies {
		if p.Family == threshold.PortFamily || strings.HasPrefix(string(p.Family), "ddos_") && p.Family != "ddos_flood" && p.Family != "ddos_slow" {
			continue
		}
		b.Run("families="+string(p.Family), func(b *testing.B) { benchPipeline(b, []policy.Policy{p}, dgs) })
	}
}

// datagrams returns n datagrams of load, ending now.
func datagrams(b *testing.B, load gen.Config, n int) [][]byte {
	b.Helper()
	g, err := gen.New(load)
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now().UnixNano()
	dgs := make([][]byte, n)
	for i := range dgs {
		dgs[i] = g.Append(nil, now)
	}
	return dgs
}

// benchPipeline decodes dgs, over and over, into the pipeline of an
// engine with the extra policies.
func benchPipeline(b *testing.B, extra []policy.Policy, dgs [][]byte) {
	n := runtime.GOMAXPROCS(0)
	now := time.Now().UnixNano()
	reg := prometheus.NewRegistry()
	eng := newBenchEngine(b, n, reg, extra)
	pl := eng.Pipeline
	if err := pl.Start(); err != nil {
		b.Fatal(err)
	}
	exporter := netip.MustParseAddr("127.0.0.1")
	var records atomic.Int64
	var producer atomic.Int64
	b.ReportAllocs()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		nf := netflow.NewDecoder(netflow.NewTemplates(netflow.DefaultConfig()))
		i := int(producer.Add(1)) * 7919
		batch := flow.NewBatch()
		submit := func() {
			k := len(batch.Records)
			for !pl.Submit(batch) {
				// A full queue: wait as a collector worker does, leaving
				// the CPU to the shards.
				time.Sleep(100 * time.Microsecond)
			}
			records.Add(int64(k))
			batch = flow.NewBatch()
		}
		for pb.Next() {
			var err error
			if batch.Records, _, err = nf.Decode(exporter, now, dgs[i%len(dgs)], batch.Records); err != nil {
				panic(err)
			}
			i++
			if len(batch.Records) > flow.BatchSize-30 {
				submit()
			}
		}
		if len(batch.Records) > 0 {
			submit()
		} else {
			batch.Release()
		}
	})
	pl.Stop() // every queued batch is processed
	elapsed := time.Since(start)
	eng.Stop()
	// Records a full shard queue dropped were not processed.
	done := float64(records.Load()) - gathered(b, reg, "flowsentry_pipeline_dropped_total")
	b.ReportMetric(done/elapsed.Seconds(), "records/s")
	b.ReportMetric(float64(elapsed.Nanoseconds())/done, "ns/record")
	b.ReportMetric(gathered(b, reg, "flowsentry_pipeline_dropped_total")/float64(records.Load()), "dropped/record")
}

// gathered sums the samples of a counter in reg.
func gathered(b *testing.B, reg *prometheus.Registry, name string) float64 {
	b.Helper()
	families, err := reg.Gather()
	if err != nil {
		b.Fatal(err)
	}
	var sum float64
	for _, f := range families {
		if f.GetName() == name {
			for _, m := range f.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

// newBenchEngine builds the engine of serve with n shards, the default
// templates, a TGRP+IP policy and the extra policies, alerts kept in
// memory.
func newBenchEngine(b *testing.B, n int, reg prometheus.Registerer, extra []policy.Policy) *Engine {
	b.Helper()
	m, err := model.Build(model.DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	pm := policy.NewManager(&policy.MemStore{}, nil)
	hostPolicy := policy.Policy{
		ID: 1000, Name: "host packets", Family: threshold.PortFamily, Target: policy.TargetGroups,
		Object: policy.ObjectHost, Severity: 3, Params: &threshold.Params{Counter: "packets_in", Threshold: 1e6},
	}
	if err := pm.Load(context.Background(), append([]policy.Policy{hostPolicy}, extra...), []uint32{0}); err != nil {
		b.Fatal(err)
	}
	cfg := Config{Rates: rates.DefaultConfig(), Pipeline: pipeline.DefaultConfig(), Alerts: alert.DefaultConfig(), Baselines: detect.DefaultBaselineConfig()}
	cfg.Pipeline.Shards = n
	cfg.Pipeline.TickInterval = 100 * time.Millisecond
	eng, err := New(cfg, Deps{
		Model: model.NewHolder(m), Policies: pm.Set, AlertStore: alert.NewMemStore(0),
		Sink: alert.SinkFunc(func(alert.Event) {}), Registerer: reg, Log: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		b.Fatal(err)
	}
	if err := eng.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	return eng
}
