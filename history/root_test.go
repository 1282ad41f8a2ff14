package history_test

import (
	"context"
	"math"
	"net/netip"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/flowsentry/flowsentry/detect/threshold"
	"github.com/flowsentry/flowsentry/flow"
	"github.com/flowsentry/flowsentry/history"
	"github.com/flowsentry/flowsentry/model"
	"github.com/flowsentry/flowsentry/policy"
	"github.com/flowsentry/flowsentry/rates"
	"github.com/flowsentry/flowsentry/store"
)

var exporter = netip.MustParseAddr("192.0.2.1")

// minute0 is the test's first minute.
var minute0 = time.Date(2026, 3, 14, 10, 0, 0, 0, time.UTC)

var (
	groupKey = rates.Key{Kind: rates.KindGroup, Group: 1}
	ifKey    = rates.Key{Kind: rates.KindInterface, Exporter: exporter, IfIndex: 3}
	portKey  = rates.Key{Kind: rates.KindGroupPort, Group: 1, Proto: 6, Port: 443}
	otherKey = rates.Key{Kind: rates.KindGroupPort, Group: 1, Proto: 6, Port: 8080}
)

// fixture is a rate engine over one traffic group (ID 1, 10.1.0.0/16 in
// partition 1), a store in a temporary folder and a recorder on both.
type fixture struct {
	t     *testing.T
	dir   string
	st    *store.Store
	eng   *rates.Shards
	model *model.Model
	rec   *history.Recorder
	reg   *prometheus.Registry
}

func newFixture(t *testing.T, cfg history.Config, policies func() *policy.Set) *fixture {
	t.Helper()
	f := &fixture{t: t, dir: t.TempDir(), reg: prometheus.NewRegistry()}
	var err error
	if f.st, err = store.Open(context.Background(), f.dir, nil); err != nil {
		t.Fatalf("store.Open: %v", err)
	}
	t.Cleanup(func() { f.st.Close() })
	if f.eng, err = rates.NewShards(rates.DefaultConfig(), 1, prometheus.NewRegistry()); err != nil {
		t.Fatalf("rates.NewShards: %v", err)
	}
	f.model = model.New([]model.Partition{{CID: 1, Name: "acme"}},
		[]model.TrafficGroup{{ID: 1, Name: "servers", CID: 1, CIDRs: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}}}, nil)
	f.eng.SetModel(f.model)
	f.eng.Shard(0).SetModel(f.model)
	f.eng.Shard(0).Tick(minute0.UnixNano())
	f.eng.Merge(minute0.UnixNano())
	if f.rec, err = history.New(cfg, history.Deps{Store: f.st, Policies: policies, Registerer: f.reg}); err != nil {
		t.Fatalf("history.New: %v", err)
	}
	if err := f.rec.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(f.rec.Stop)
	return f
}

// second sends n packets to 10.1.0.1:443 and n to :8080 through interface
// 3 in second s after minute0, ticks the engine at its end and records.
func (f *fixture) second(s int, n uint64) {
	start := minute0.Add(time.Duration(s) * time.Second).UnixNano()
	for _, port := range []uint16{443, 8080} {
		r := &flow.Record{
			Start: start, End: start, Exporter: exporter, InIf: 3,
			Src: netip.MustParseAddr("198.51.100.1"), Dst: netip.MustParseAddr("10.1.0.1"),
			SrcPort: 40000, DstPort: port, Packets: n, Bytes: 100 * n, SamplingRate: 1,
			Proto: flow.ProtoTCP, TCPFlags: flow.TCPAck,
		}
		var c model.Class
		f.model.Classify(r, &c)
		f.eng.Shard(0).AddClass(r, &c)
	}
	f.tick(start + int64(time.Second))
}

// tick ticks the shard and merges at now, as the pipeline does, then
// records.
func (f *fixture) tick(now int64) {
	f.eng.Shard(0).Tick(now)
	f.eng.Merge(now)
	f.rec.Record(now, f.eng)
}

// read returns the stored minutes of k over the test's day.
func (f *fixture) read(k rates.Key) []history.Point {
	f.t.Helper()
	got, err := f.st.ReadHistory(context.Background(), k, minute0.Add(-time.Hour), minute0.Add(30*24*time.Hour))
	if err != nil {
		f.t.Fatalf("ReadHistory: %v", err)
	}
	return got
}

func near(a, b float32) bool { return math.Abs(float64(a-b)) <= 1e-4*math.Max(1, math.Abs(float64(b))) }

// TestRecord checks the minute's average and peak of each counter against
// the current rates the engine showed at each tick, and that they are
// stored and outlive a restart.
func TestRecord(t *testing.T) {
	f := newFixture(t, history.DefaultConfig(), nil)
	var sum, peak [history.NumCounters]float64
	ticks := 0
	// The ticks ending in minute 0 (seconds 0..58), a burst at 20.
	for s := range 59 {
		n := uint64(10 + s)
		if s == 20 {
			n = 5000
		}
		f.second(s, n)
		f.eng.Each(rates.KindGroup, func(o *rates.Object) {
			for c := range history.NumCounters {
				v := o.Cur(rates.Counter(c))
				sum[c] += v
				peak[c] = max(peak[c], v)
			}
		})
		ticks++
	}
	f.second(59, 1) // ends at minute 1: rolls minute 0 over
	f.rec.Stop()    // writes minute 1's partial minute
	f.st.Close()

	st, err := store.Open(context.Background(), f.dir, nil)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	f.st = st
	got := f.read(groupKey)
	if len(got) != 2 || !got[0].Time.Equal(minute0) || !got[1].Time.Equal(minute0.Add(time.Minute)) {
		t.Fatalf("group minutes = %+v; want minutes 0 and 1", got)
	}
	for c, name := range history.Counters {
		avg := float32(sum[c] / float64(ticks))
		if !near(got[0].Avg[c], avg) || !near(got[0].Peak[c], float32(peak[c])) {
			t.Errorf("%s: avg %g, peak %g; want %g, %g", name, got[0].Avg[c], got[0].Peak[c], avg, peak[c])
		}
	}
	if got[0].Peak[rates.PacketsIn] <= got[0].Avg[rates.PacketsIn] || got[0].Peak[rates.PacketsIn] < 2*(5000+10)/10 {
		t.Errorf("packets_in peak %g, avg %g: the burst does not show", got[0].Peak[rates.PacketsIn], got[0].Avg[rates.PacketsIn])
	}
	if len(f.read(ifKey)) != 2 {
		t.Errorf("interface minutes = %d; want 2", len(f.read(ifKey)))
	}
	if p := f.read(portKey); p != nil {
		t.Errorf("port line recorded without a port_threshold policy: %+v", p)
	}
	if n := testutil.ToFloat64(collector(t, f.reg, "flowsentry_history_batches_written_total")); n != 2 {
		t.Errorf("batches written = %g; want 2", n)
	}
}

// collector returns the registered metric family named name as a
// collector for testutil.
func collector(t *testing.T, reg *prometheus.Registry, name string) prometheus.Collector {
	t.Helper()
	return gathered{reg, name}
}

// gathered collects one metric family of a registry.
type gathered struct {
	reg  *prometheus.Registry
	name string
}

func (g gathered) Describe(ch chan<- *prometheus.Desc) { prometheus.DescribeByCollect(g, ch) }
func (g gathered) Collect(ch chan<- prometheus.Metric) {
	mfs, _ := g.reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() != g.name {
			continue
		}
		for _, m := range mf.GetMetric() {
			v := m.GetCounter().GetValue() + m.GetGauge().GetValue()
			ch <- prometheus.MustNewConstMetric(prometheus.NewDesc(g.name, "", nil, nil), prometheus.UntypedValue, v)
		}
	}
}

func TestSeriesCap(t *testing.T) {
	cfg := history.DefaultConfig()
	cfg.MaxSeries = 1
	f := newFixture(t, cfg, nil)
	for s := range 121 { // ticks in minutes 0, 1 and 2
		f.second(s, 10)
	}
	f.rec.Stop()
	if len(f.read(groupKey)) != 3 {
		t.Errorf("group minutes = %d; want 3 (the first series seen)", len(f.read(groupKey)))
	}
	if p := f.read(ifKey); p != nil {
		t.Errorf("interface recorded beyond max_series 1: %+v", p)
	}
	// The interface is refused once in each of minutes 0, 1 and 2.
	if n := testutil.ToFloat64(collector(t, f.reg, "flowsentry_history_series_refused_total")); n != 3 {
		t.Errorf("series refused = %g; want 3", n)
	}
	if n := testutil.ToFloat64(collector(t, f.reg, "flowsentry_history_series")); n != 1 {
		t.Errorf("series held = %g; want 1", n)
	}
}

func TestRetention(t *testing.T) {
	cfg := history.DefaultConfig()
	cfg.Retention = 24 * time.Hour
	f := newFixture(t, cfg, nil)
	f.second(0, 10)
	// Two days later only the group has traffic: the interface's minute
	// is pruned with its series; the group keeps only the new minute.
	later := minute0.Add(48 * time.Hour)
	for s := range 61 {
		start := later.Add(time.Duration(s) * time.Second).UnixNano()
		r := &flow.Record{Start: start, End: start, Src: netip.MustParseAddr("198.51.100.1"), Dst: netip.MustParseAddr("10.1.0.1"),
			SrcPort: 40000, DstPort: 443, Packets: 1, Bytes: 100, SamplingRate: 1, Proto: flow.ProtoTCP}
		var c model.Class
		f.model.Classify(r, &c)
		f.eng.Shard(0).AddClass(r, &c)
		f.tick(start + int64(time.Second))
	}
	f.rec.Stop()
	got := f.read(groupKey)
	if len(got) == 0 || got[0].Time.Before(later) {
		t.Errorf("group minutes = %+v; want none before %s", got, later)
	}
	keys, err := f.st.HistorySeries(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if k == ifKey {
			t.Errorf("the interface's series outlived its retention")
		}
	}
	if n := testutil.ToFloat64(collector(t, f.reg, "flowsentry_history_series_pruned_total")); n != 1 {
		t.Errorf("series pruned = %g; want 1", n)
	}
}

// TestPortLines records the port objects a port_threshold policy names,
// and no other.
func TestPortLines(t *testing.T) {
	p := policy.Policy{ID: 9, Name: "https", CID: 1, Family: threshold.PortFamily, Target: policy.TargetGroups,
		Object: policy.ObjectGroupPort, Severity: 5,
		Params: &threshold.Params{Counter: "packets_in", Threshold: 1e6, Proto: 6, Port: 443}}
	m := policy.NewManager(&policy.MemStore{}, nil)
	if err := m.Load(context.Background(), []policy.Policy{p}, []uint32{1}); err != nil {
		t.Fatalf("policies: %v", err)
	}
	f := newFixture(t, history.DefaultConfig(), m.Set)
	for s := range 61 {
		f.second(s, 10)
	}
	f.rec.Stop()
	if len(f.read(portKey)) != 2 {
		t.Errorf("port 443 minutes = %d; want 2", len(f.read(portKey)))
	}
	if p := f.read(otherKey); p != nil {
		t.Errorf("port 8080, which no policy names, was recorded: %+v", p)
	}
}
