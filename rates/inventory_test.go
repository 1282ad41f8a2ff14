package rates

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/flowsentry/flowsentry/flow"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestInventory checks the exporter inventory: records per second,
// interfaces from records and counter samples, counter deltas, and the
// samples that give no rates.
func TestInventory(t *testing.T) {
	e, _ := newTestEngine(t, DefaultConfig())
	for range 20 {
		e.Add(rec("203.0.113.5", "10.1.0.10", via(1, 2)))
	}
	e.Tick(at(1))
	sample := func(sec float64, exporter netip.Addr, inOctets uint64, inErrors uint32) {
		e.AddCounters(&flow.IfCounters{
			Time: at(sec), Exporter: exporter, IfIndex: 3, Speed: 1e9,
			InOctets: inOctets, OutOctets: 2 * inOctets, InPackets: inOctets / 100, OutPackets: inOctets / 50,
			InErrors: inErrors,
		})
	}
	mapped := netip.AddrFrom16(exporterA.As16())
	sample(1, exporterA, 1000, 0)
	e.Tick(at(11))
	sample(11, mapped, 1000+125_000_000, 5) // 12.5 MB/s in: 10% of 1 Gb/s
	sample(5, exporterA, 0, 0)              // older: discarded
	e.AddCounters(&flow.IfCounters{Time: at(11), IfIndex: 3})
	e.Tick(at(12))

	type iface struct {
		IfIndex  uint32
		Name     string
		LastSeen time.Time
		Cur      Rates
		Counters *IfStats
	}
	type exporter struct {
		Addr                netip.Addr
		FirstSeen, LastSeen time.Time
		Records             Rate
		Interfaces          []iface
	}
	project := func(s *Snapshot) []exporter {
		var out []exporter
		for _, x := range s.Exporters {
			p := exporter{Addr: x.Addr, FirstSeen: x.FirstSeen, LastSeen: x.LastSeen, Records: x.Records}
			for _, i := range x.Interfaces {
				p.Interfaces = append(p.Interfaces, iface{i.Key.IfIndex, i.Name, i.LastSeen, i.Cur, i.Counters})
			}
			slices.SortFunc(p.Interfaces, func(a, b iface) int { return int(a.IfIndex) - int(b.IfIndex) })
			out = append(out, p)
		}
		return out
	}
	tm := func(sec float64) time.Time { return time.Unix(0, at(sec)).UTC() }
	want := []exporter{{
		Addr: exporterA, FirstSeen: tm(0), LastSeen: tm(11),
		// 20 records in second 0, in the window [2 s, 12 s) no more.
		Records: Rate{Cur: 0, Avg: 20.0 / 12, Peak: 2, Total: 20},
		Interfaces: []iface{
			{IfIndex: 1, Name: "xe-0/0/1", LastSeen: tm(0.5)},
			{IfIndex: 2, LastSeen: tm(0.5)},
			{IfIndex: 3, LastSeen: tm(11), Counters: &IfStats{
				Time: tm(11), Speed: 1e9,
				InOctets: 125_001_000, OutOctets: 250_002_000, InPackets: 1_250_010, OutPackets: 2_500_020, InErrors: 5,
				Rates: &IfRates{
					Interval: 10,
					InOctets: 12_500_000, OutOctets: 25_000_000, InPackets: 125_000, OutPackets: 250_000, InErrors: 0.5,
					InUtilization: 0.1, OutUtilization: 0.2,
				},
			}},
		},
	}}
	if diff := cmp.Diff(project(e.Snapshot()), want, cmpAddr); diff != "" {
		t.Errorf("inventory (-got +want):\n%s", diff)
	}

	// A counter that went backwards starts a new baseline without rates;
	// the next sample gives rates again.
	sample(21, exporterA, 500, 0)
	e.Tick(at(22))
	got := project(e.Snapshot())[0].Interfaces[2].Counters
	if got.Rates != nil || got.InOctets != 500 {
		t.Errorf("after a counter reset: in_octets %d, rates %+v; want 500 and no rates", got.InOctets, got.Rates)
	}
	sample(31, exporterA, 1500, 0)
	e.Tick(at(32))
	got = project(e.Snapshot())[0].Interfaces[2].Counters
	if got.Rates == nil || got.Rates.InOctets != 100 {
		t.Errorf("after the baseline: rates %+v, want in_octets 100/s", got.Rates)
	}

	for reason, want := range map[string]float64{"out_of_order": 1, "counter_reset": 1, "no_exporter": 1} {
		if got := testutil.ToFloat64(e.metrics.discarded.WithLabelValues(reason)); got != want {
			t.Errorf("discarded{reason=%q} = %v, want %v", reason, got, want)
		}
	}
	if got := testutil.ToFloat64(e.metrics.samples); got != 5 {
		t.Errorf("counter samples = %v, want 5", got)
	}
}

// TestExporterCap checks that records from exporters beyond the cap
// create no exporter and no interface.
func TestExporterCap(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxExporters = 1
	e, _ := newTestEngine(t, cfg)
	e.Add(rec("203.0.113.5", "10.1.0.10", via(1, 2)))
	other := rec("203.0.113.5", "10.1.0.10", via(1, 2))
	other.Exporter = netip.MustParseAddr("192.0.2.2")
	e.Add(other)
	e.AddCounters(&flow.IfCounters{Time: at(0.5), Exporter: other.Exporter, IfIndex: 1})
	e.Tick(at(1))
	s := e.Snapshot()
	if len(s.Exporters) != 1 || s.Exporters[0].Addr != exporterA {
		t.Errorf("exporters %+v, want only %v", s.Exporters, exporterA)
	}
	if got := testutil.ToFloat64(e.metrics.refused.WithLabelValues("exporter")); got != 2 {
		t.Errorf("refused exporters = %v, want 2", got)
	}
	// The group still counts both records.
	if got := allStats(s)[kGroup(1)].Totals.PacketsIn; got != 2 {
		t.Errorf("group packets in = %d, want 2", got)
	}
}

// TestInterfaceCap checks that an interface port whose interface was
// refused counts alone, and that its interface counts from the first
// record after the cap made room.
func TestInterfaceCap(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxInterfaces = 1
	cfg.IdleTimeout, cfg.ExporterTimeout = 10*time.Second, 10*time.Second
	e, _ := newTestEngine(t, cfg)
	for _, s := range []step{
		add(rec("203.0.113.5", "10.1.0.10", via(1, 0), span(0.5, 0.5))),
		tick(5.6),
		add(rec("203.0.113.5", "10.1.0.10", via(2, 0), span(5.5, 5.5))), // interface 2 refused
		tick(12), // interface 1 and its port expire
		tick(12.4),
		add(rec("203.0.113.5", "10.1.0.10", via(2, 0), span(12.5, 12.5))),
		add(rec("203.0.113.5", "10.1.0.10", via(2, 0), span(12.6, 12.6))),
		tick(13),
	} {
		if s.r != nil {
			e.Add(s.r)
		} else {
			e.Tick(at(s.tick))
		}
	}
	got := map[Key]uint64{}
	for k, st := range allStats(e.Snapshot()) {
		if k.Kind == KindInterface || k.Kind == KindInterfacePort {
			got[k] = st.Totals.PacketsIn
		}
	}
	want := map[Key]uint64{kIf(2): 2, kIfPort(2, flow.ProtoTCP, 443): 3}
	if diff := cmp.Diff(got, want, cmpAddr); diff != "" {
		t.Errorf("interface packets in (-got +want):\n%s", diff)
	}
	if got := testutil.ToFloat64(e.metrics.refused.WithLabelValues("interface")); got != 1 {
		t.Errorf("refused interfaces = %v, want 1", got)
	}
}
