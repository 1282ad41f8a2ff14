package threshold

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/flowsentry/flowsentry/alert"
	"github.com/flowsentry/flowsentry/detect"
	"github.com/flowsentry/flowsentry/detect/detecttest"
	"github.com/flowsentry/flowsentry/flow"
	"github.com/flowsentry/flowsentry/model"
	"github.com/flowsentry/flowsentry/pipeline"
	"github.com/flowsentry/flowsentry/policy"
	"github.com/flowsentry/flowsentry/rates"
)

type memBaselines struct {
	mu   sync.Mutex
	list []detect.Baseline
}

func (m *memBaselines) SaveBaselines(_ context.Context, l []detect.Baseline) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.list = append([]detect.Baseline(nil), l...)
	return nil
}

func (m *memBaselines) Baselines(context.Context) ([]detect.Baseline, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.list, nil
}

// harness runs a rate engine and the detector as the pipeline does.
type harness struct {
	t     *testing.T
	re    *rates.Shards
	m     *model.Model
	class model.Class
	det   *Detector
	rec   *detecttest.Recorder
	pm    *policy.Manager
	now   int64
	store *memBaselines
	// stages are the detectors of both families, the shard's (the one
	// engine plays the only shard) then the whole's, in the pipeline's
	// order; det is threshold's.
	stages []pipeline.Ticker
}

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC).UnixNano()

func newHarness(t *testing.T, cfg detect.BaselineConfig, policies ...policy.Policy) *harness {
	t.Helper()
	m := model.New(
		[]model.Partition{{CID: 0, Name: "default"}, {CID: 3, Name: "tenant"}},
		[]model.TrafficGroup{
			{ID: 1, Name: "internal", CID: 0, CIDRs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}},
			{ID: 2, Name: "dmz", CID: 0, CIDRs: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}},
			{ID: 9, Name: "tenant-net", CID: 3, CIDRs: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}},
		}, nil)
	// One shard and its merge, as the pipeline runs them.
	re, err := rates.NewShards(rates.DefaultConfig(), 1, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	re.SetModel(m)
	re.Shard(0).SetModel(m)
	pm := detecttest.NewManager(t, policies...)
	h := &harness{t: t, re: re, m: m, rec: &detecttest.Recorder{}, pm: pm, now: t0, store: &memBaselines{}}
	d := detect.Deps{Policies: pm.Set, Objects: re, Observer: h.rec, Baselines: cfg, BaselineStore: h.store,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	sd := d
	sd.Objects = re.Shard(0)
	inShard, err := detect.NewShardStages(sd)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range inShard {
		s.SetModel(m)
		h.stages = append(h.stages, s)
	}
	whole, err := detect.NewStages(d)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range whole {
		s.SetModel(m)
		h.stages = append(h.stages, s)
		if det := s.(*Detector); det.family == Family {
			h.det = det
		}
	}
	h.advance()
	return h
}

// advance ticks the shard at h.now and merges it, as the pipeline does
// before its stages tick.
func (h *harness) advance() {
	h.re.Shard(0).Tick(h.now)
	h.re.Merge(h.now)
}

// second adds records spread over the coming second and ticks at its end.
func (h *harness) second(recs ...flow.Record) {
	for i := range recs {
		recs[i].Start, recs[i].End = h.now, h.now+int64(time.Second)-1
		h.m.Classify(&recs[i], &h.class)
		h.re.Shard(0).AddClass(&recs[i], &h.class)
	}
	h.now += int64(time.Second)
	h.advance()
	h.tick()
}

// tick ticks the stage of every family.
func (h *harness) tick() {
	for _, s := range h.stages {
		s.Tick(h.now)
	}
}

func rec(src, dst string, dport uint16, packets, bytes uint64) flow.Record {
	return flow.Record{
		Exporter: netip.MustParseAddr("127.0.0.1"), InIf: 3, OutIf: 4,
		Src: netip.MustParseAddr(src), Dst: netip.MustParseAddr(dst),
		SrcPort: 40000, DstPort: dport, Proto: flow.ProtoTCP, TCPFlags: flow.TCPSyn,
		Packets: packets, Bytes: bytes, SamplingRate: 1,
	}
}

func fixed(name, object, counter string, threshold float64, severity int) policy.Policy {
	fam := PortFamily
	if object == policy.ObjectGroup && (counter == "packets_in" || counter == "bytes_in" || counter == "bits_in" || counter == "new_conn") {
		fam = Family
	}
	target := policy.TargetGroups
	if object == policy.ObjectInterface || object == policy.ObjectInterfacePort {
		target = policy.TargetInterfaces
	}
	return policy.Policy{Name: name, Family: fam, Target: target, Object: object, Severity: severity,
		Params: &Params{Counter: counter, Threshold: threshold}}
}

func TestFixedThresholds(t *testing.T) {
	tg := fixed("Packets In", policy.ObjectGroup, "packets_in", 100, 4)
	tg.ID = 1
	port := fixed("HTTP bits in", policy.ObjectGroupPort, "bits_in", 80_000, 6) // 10,000 bytes/s
	port.ID, Of(&port).Proto, Of(&port).Port = 2, 6, 80
	host := fixed("Host packets in", policy.ObjectHost, "packets_in", 50, 2)
	host.ID = 3
	ifc := fixed("Interface packets in", policy.ObjectInterface, "packets_in", 100, 7)
	ifc.ID = 4
	mute := policy.Policy{ID: 5, Name: "mute dmz", Family: Family, Target: policy.TargetGroups,
		Object: policy.ObjectGroup, Params: &Params{Counter: "packets_in", Threshold: 1}, Override: 1, Group: 2, Severity: 0}
	h := newHarness(t, detect.BaselineConfig{Warmup: 0, HalfLife: time.Hour, SaveInterval: time.Minute}, tg, port, host, ifc, mute)
	for range 10 {
		// 10.0.0.1 gets 2,000 packets/s of 60 bytes on port 80; the dmz the
		// same but its template is muted there; port 22 stays low.
		h.second(rec("203.0.113.5", "10.0.0.1", 80, 2000, 120_000), rec("203.0.113.5", "192.0.2.1", 80, 2000, 120_000),
			rec("203.0.113.6", "10.0.0.2", 22, 10, 600))
	}
	last := h.rec.Last()
	want := map[string][]alert.Field{
		"TGRP/1": {{Name: "OBJECT_TYPE", Value: "TGRP"}, {Name: "TGRP", Value: "1", Number: true}, {Name: "TGRP_NAME", Value: "internal"},
			{Name: "THRESHOLD_TYPE", Value: "packets_in"}, {Name: "THRESHOLD_VALUE", Value: "100.0", Number: true}},
		"TGRP+PROTO+PORT/1/6/80": {{Name: "OBJECT_TYPE", Value: "TGRP+PROTO+PORT"}, {Name: "TGRP", Value: "1", Number: true}, {Name: "TGRP_NAME", Value: "internal"},
			{Name: "PROTO", Value: "6", Number: true}, {Name: "PORT", Value: "80", Number: true},
			{Name: "THRESHOLD_TYPE", Value: "bytes_in"}, {Name: "THRESHOLD_VALUE", Value: "10000.0", Number: true}},
		"TGRP+PROTO+PORT/2/6/80": {{Name: "OBJECT_TYPE", Value: "TGRP+PROTO+PORT"}, {Name: "TGRP", Value: "2", Number: true}, {Name: "TGRP_NAME", Value: "dmz"},
			{Name: "PROTO", Value: "6", Number: true}, {Name: "PORT", Value: "80", Number: true},
			{Name: "THRESHOLD_TYPE", Value: "bytes_in"}, {Name: "THRESHOLD_VALUE", Value: "10000.0", Number: true}},
		"TGRP+IP/1/10.0.0.1": {{Name: "OBJECT_TYPE", Value: "TGRP+IP"}, {Name: "TGRP", Value: "1", Number: true}, {Name: "TGRP_NAME", Value: "internal"},
			{Name: "IP", Value: "10.0.0.1"}, {Name: "THRESHOLD_TYPE", Value: "packets_in"}, {Name: "THRESHOLD_VALUE", Value: "50.0", Number: true}},
		"TGRP+IP/2/192.0.2.1": {{Name: "OBJECT_TYPE", Value: "TGRP+IP"}, {Name: "TGRP", Value: "2", Number: true}, {Name: "TGRP_NAME", Value: "dmz"},
			{Name: "IP", Value: "192.0.2.1"}, {Name: "THRESHOLD_TYPE", Value: "packets_in"}, {Name: "THRESHOLD_VALUE", Value: "50.0", Number: true}},
		"EXPORTER_ADDR+IFINDEX/127.0.0.1/3": {{Name: "OBJECT_TYPE", Value: "EXPORTER_ADDR+IFINDEX"}, {Name: "EXPORTER_ADDR", Value: "127.0.0.1"},
			{Name: "IFINDEX", Value: "3", Number: true}, {Name: "THRESHOLD_TYPE", Value: "packets_in"}, {Name: "THRESHOLD_VALUE", Value: "100.0", Number: true}},
	}
	got := map[string][]alert.Field{}
	for k, c := range last {
		got[k] = c.Fields
	}
	if d := cmp.Diff(got, want); d != "" {
		t.Fatalf("conditions at the last tick (-got +want):\n%s", d)
	}
	c := last["TGRP/1"]
	if c.Type != AlertType || c.Policy != 1 || c.Severity != 4 || c.CIDName != "default" || c.Values.PacketsIn != 2010 || c.Values.BytesIn != 120_600 {
		t.Errorf("TGRP/1 condition: %+v", c)
	}
	if !last["TGRP+IP/1/10.0.0.1"].Uniq || c.Uniq {
		t.Errorf("uniq counters must apply to TGRP+IP only")
	}
}

func TestBaseline(t *testing.T) {
	p := policy.Policy{ID: 1, Name: "Packets In", Family: Family, Target: policy.TargetGroups,
		Object: policy.ObjectGroup, Params: &Params{Counter: "packets_in", Threshold: 50, Baseline: 3}, Severity: 5}
	h := newHarness(t, detect.BaselineConfig{Warmup: 30 * time.Second, HalfLife: time.Minute, SaveInterval: 10 * time.Second}, p)
	// Warm-up: 100 pps, twice the floor, but the baseline is still
	// learning: nothing may fire even at 5× the level for the last second.
	for i := range 30 {
		n := uint64(100)
		if i == 29 {
			n = 500
		}
		h.second(rec("203.0.113.5", "10.0.0.1", 80, n, n*60))
	}
	if len(h.rec.Got) != 0 {
		t.Fatalf("fired during warm-up: %+v", h.rec.Got[0])
	}
	for range 30 {
		h.second(rec("203.0.113.5", "10.0.0.1", 80, 100, 6000))
	}
	bl := h.det.Baselines()
	// The current rate ramps up over the first 10 s window, so the
	// warm-up mean is below 100; learning then moves it toward 100.
	if len(bl) != 1 || bl[0].Samples < 50 || bl[0].Value < 80 || bl[0].Value > 120 { // as of the last save, every 10 s
		t.Fatalf("baseline after a minute near 100 pps: %+v", bl)
	}
	h.det.saving.Wait()
	if saved, _ := h.store.Baselines(context.Background()); len(saved) != 1 {
		t.Fatalf("baselines not saved: %+v", saved)
	}
	before := bl[0].Value
	// An attack at 10× the baseline fires, and is not learned.
	for range 15 {
		h.second(rec("203.0.113.5", "10.0.0.1", 80, 1000, 60_000))
	}
	if len(h.rec.Got) == 0 {
		t.Fatal("10× the baseline did not fire")
	}
	c := h.rec.Got[len(h.rec.Got)-1].Condition
	if c.Values.PacketsIn != 1000 {
		t.Errorf("current packets_in %v, want 1000", c.Values.PacketsIn)
	}
	h.det.Stop()
	after := h.det.Baselines()[0].Value
	if after > before*1.5 {
		t.Errorf("the attack raised the baseline from %v to %v", before, after)
	}
	// A restarted detector starts from the saved baseline.
	h2 := newHarness(t, detect.BaselineConfig{Warmup: 30 * time.Second, HalfLife: time.Minute, SaveInterval: 10 * time.Second}, p)
	h2.store.list, _ = h.store.Baselines(context.Background())
	if err := h2.det.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Without the saved baseline the new detector would be warming up
	// for 30 s and could not fire within these 5.
	for range 5 {
		h2.second(rec("203.0.113.5", "10.0.0.1", 80, 1000, 60_000))
	}
	if len(h2.rec.Got) == 0 {
		t.Fatal("after a restart the learned baseline was lost: the policy did not fire")
	}
}

// BenchmarkTick measures policy evaluation for 10,000 traffic-group/port
// objects per tick.
//
//	go test -run '^$' -bench Tick -benchmem -count=6 ./detect/threshold | benchstat -
func BenchmarkTick(b *testing.B) {
	p := policy.Policy{ID: 1, Name: "ports", Family: PortFamily, Target: policy.TargetGroups,
		Object: policy.ObjectGroupPort, Params: &Params{Counter: "packets_in", Threshold: 1e9}, Severity: 3}
	t := &testing.T{}
	h := newHarness(t, detect.BaselineConfig{Warmup: 0, HalfLife: time.Hour, SaveInterval: time.Hour}, p)
	recs := make([]flow.Record, 0, 10_000)
	for i := range 10_000 {
		recs = append(recs, rec("203.0.113.5", "10.0.0.1", uint16(i+1), 10, 600))
	}
	h.second(recs...)
	b.ReportAllocs()
	for b.Loop() {
		h.tick()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/10_000, "ns/object")
}

// TestScopes: port_threshold's stage of the whole reports no host, its
// stage of a shard only hosts, so that a host crossing a TGRP+IP policy is
// reported once, by the shard that owns it.
func TestScopes(t *testing.T) {
	hosts := fixed("hosts", policy.ObjectHost, "packets_in", 50, 3)
	ports := fixed("ports", policy.ObjectGroupPort, "packets_in", 50, 3)
	hosts.ID, ports.ID = 1, 2
	h := newHarness(t, detect.DefaultBaselineConfig(), hosts, ports)
	for range 12 {
		h.second(rec("203.0.113.9", "10.0.0.1", 80, 1000, 60_000))
	}
	count := map[string]int{}
	for _, s := range h.stages {
		h.rec.Reset()
		s.Tick(h.now)
		det := s.(*Detector)
		for _, o := range h.rec.Got {
			count[fmt.Sprintf("%v %s", det.scope, o.Key)]++
		}
	}
	want := map[string]int{
		fmt.Sprintf("%v TGRP+IP/1/10.0.0.1", hostObjects):       1,
		fmt.Sprintf("%v TGRP+PROTO+PORT/1/6/80", mergedObjects): 1,
	}
	if diff := cmp.Diff(count, want); diff != "" {
		t.Errorf("conditions by stage scope (-got +want):\n%s", diff)
	}
}
