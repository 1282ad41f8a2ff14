package rates

import (
	"testing"
	"time"
	"unsafe"

	"github.com/flowsentry/flowsentry/flow"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func tin(p, b, c uint64) Totals { return Totals{PacketsIn: p, BytesIn: b, NewConn: c, Updates: 1} }
func tout(p, b, c uint64) Totals {
	return Totals{PacketsOut: p, BytesOut: b, NewConnOut: c, Updates: 1}
}
func tboth(p, b, c uint64) Totals {
	return Totals{PacketsIn: p, BytesIn: b, NewConn: c, PacketsOut: p, BytesOut: b, NewConnOut: c, Updates: 1}
}

// TestDirections checks which objects a record counts on, in which
// direction, with which port, and the new connection rule.
func TestDirections(t *testing.T) {
	cases := []struct {
		name string
		recs []*flow.Record
		want map[Key]Totals
	}{
		{
			name: "remote to host: in for the group, port, host and InIf; out for OutIf, all under the service port",
			recs: []*flow.Record{rec("203.0.113.5", "10.1.0.10", counts(10, 5000), proto(flow.ProtoTCP, flow.TCPSyn|flow.TCPAck), via(1, 2))},
			want: map[Key]Totals{
				kGroup(1):                      tin(10, 5000, 1),
				kPort(1, flow.ProtoTCP, 443):   tin(10, 5000, 1),
				kHost(1, "10.1.0.10"):          tin(10, 5000, 1),
				kIf(1):                         tin(10, 5000, 1),
				kIfPort(1, flow.ProtoTCP, 443): tin(10, 5000, 1),
				kIf(2):                         tout(10, 5000, 1),
				kIfPort(2, flow.ProtoTCP, 443): tout(10, 5000, 1),
			},
		},
		{
			name: "host to remote: out with the source port",
			recs: []*flow.Record{rec("10.1.0.10", "203.0.113.5", ports(443, 40000), proto(flow.ProtoTCP, flow.TCPAck))},
			want: map[Key]Totals{
				kGroup(1):                    tout(1, 60, 0),
				kPort(1, flow.ProtoTCP, 443): tout(1, 60, 0),
				kHost(1, "10.1.0.10"):        tout(1, 60, 0),
			},
		},
		{
			name: "overlapping groups both count",
			recs: []*flow.Record{rec("203.0.113.5", "10.1.2.3")},
			want: map[Key]Totals{
				kGroup(1):                    tin(1, 60, 1),
				kPort(1, flow.ProtoTCP, 443): tin(1, 60, 1),
				kHost(1, "10.1.2.3"):         tin(1, 60, 1),
				kGroup(2):                    tin(1, 60, 1),
				kPort(2, flow.ProtoTCP, 443): tin(1, 60, 1),
				kHost(2, "10.1.2.3"):         tin(1, 60, 1),
			},
		},
		{
			name: "inside one group counts in and out, one update",
			recs: []*flow.Record{rec("10.1.0.1", "10.1.0.2", ports(5353, 53), proto(flow.ProtoUDP, 0))},
			want: map[Key]Totals{
				kGroup(1):                   tboth(1, 60, 1),
				kPort(1, flow.ProtoUDP, 53): tboth(1, 60, 1),
				kHost(1, "10.1.0.2"):        tin(1, 60, 1),
				kHost(1, "10.1.0.1"):        tout(1, 60, 1),
			},
		},
		{
			name: "same port on both sides is one object with one update",
			recs: []*flow.Record{rec("10.1.0.1", "10.1.0.2", ports(123, 123), proto(flow.ProtoUDP, 0))},
			want: map[Key]Totals{
				kGroup(1):                    tboth(1, 60, 1),
				kPort(1, flow.ProtoUDP, 123): tboth(1, 60, 1),
				kHost(1, "10.1.0.2"):         tin(1, 60, 1),
				kHost(1, "10.1.0.1"):         tout(1, 60, 1),
			},
		},
		{
			name: "hairpin on one interface is one object with one update",
			recs: []*flow.Record{rec("198.51.100.1", "198.51.100.2", ports(80, 80), via(5, 5))},
			want: map[Key]Totals{
				kIf(5):                        tboth(1, 60, 1),
				kIfPort(5, flow.ProtoTCP, 80): tboth(1, 60, 1),
			},
		},
		{
			name: "new connections: SYN or not TCP; TCP without SYN is none",
			recs: []*flow.Record{
				rec("203.0.113.5", "10.1.0.10", proto(flow.ProtoTCP, flow.TCPAck|flow.TCPPsh)),
				rec("203.0.113.5", "10.1.0.10", proto(flow.ProtoTCP, flow.TCPSyn|flow.TCPFin)),
				rec("203.0.113.5", "10.1.0.10", proto(flow.ProtoUDP, 0)),
				rec("203.0.113.5", "10.1.0.10", proto(47, 0), ports(0, 0)),
			},
			want: map[Key]Totals{
				kGroup(1):                    {PacketsIn: 4, BytesIn: 240, NewConn: 3, Updates: 4},
				kPort(1, flow.ProtoTCP, 443): {PacketsIn: 2, BytesIn: 120, NewConn: 1, Updates: 2},
				kPort(1, flow.ProtoUDP, 443): tin(1, 60, 1),
				kPort(1, 47, 0):              tin(1, 60, 1),
				kHost(1, "10.1.0.10"):        {PacketsIn: 4, BytesIn: 240, NewConn: 3, Updates: 4},
			},
		},
		{
			name: "continued records add packets and bytes only, spread or not",
			recs: []*flow.Record{
				rec("203.0.113.5", "10.1.0.10", proto(flow.ProtoUDP, 0)),
				rec("203.0.113.5", "10.1.0.10", proto(flow.ProtoUDP, 0), counts(3, 180), continued),
				rec("203.0.113.5", "10.1.0.10", proto(flow.ProtoUDP, 0), counts(4, 240), span(-1.5, 0.5), continued),
				rec("203.0.113.5", "10.1.0.10", proto(flow.ProtoTCP, flow.TCPSyn), ports(40000, 80), continued),
			},
			want: map[Key]Totals{
				kGroup(1):                    {PacketsIn: 9, BytesIn: 540, NewConn: 1, Updates: 1},
				kPort(1, flow.ProtoUDP, 443): {PacketsIn: 8, BytesIn: 480, NewConn: 1, Updates: 1},
				kPort(1, flow.ProtoTCP, 80):  {PacketsIn: 1, BytesIn: 60},
				kHost(1, "10.1.0.10"):        {PacketsIn: 9, BytesIn: 540, NewConn: 1, Updates: 1},
			},
		},
		{
			name: "sampled counts pass through, new connections scale",
			recs: []*flow.Record{
				rec("203.0.113.5", "10.1.0.10", counts(100, 6400), func(r *flow.Record) { r.SamplingRate = 100 }),
				rec("203.0.113.5", "10.1.0.10", counts(100, 6400), proto(flow.ProtoTCP, flow.TCPAck), func(r *flow.Record) { r.SamplingRate = 100 }),
				rec("203.0.113.5", "10.1.0.10", func(r *flow.Record) { r.SamplingRate = 0 }),
			},
			want: map[Key]Totals{
				kGroup(1):                    {PacketsIn: 201, BytesIn: 12860, NewConn: 101, Updates: 3},
				kPort(1, flow.ProtoTCP, 443): {PacketsIn: 201, BytesIn: 12860, NewConn: 101, Updates: 3},
				kHost(1, "10.1.0.10"):        {PacketsIn: 201, BytesIn: 12860, NewConn: 101, Updates: 3},
			},
		},
		{
			name: "ICMP port is type<<8|code",
			recs: []*flow.Record{
				rec("10.1.0.1", "203.0.113.9", proto(flow.ProtoICMP, 0), ports(0, 0x0800), func(r *flow.Record) { r.ICMPType, r.ICMPCode = 8, 0 }),
				rec("2001:db8:99::1", "2001:db8:1::5", proto(flow.ProtoICMPv6, 0), func(r *flow.Record) { r.ICMPType, r.ICMPCode = 1, 4 }),
			},
			want: map[Key]Totals{
				kGroup(1):                          tout(1, 60, 1),
				kPort(1, flow.ProtoICMP, 0x0800):   tout(1, 60, 1),
				kHost(1, "10.1.0.1"):               tout(1, 60, 1),
				kGroup(3):                          tin(1, 60, 1),
				kPort(3, flow.ProtoICMPv6, 0x0104): tin(1, 60, 1),
				kHost(3, "2001:db8:1::5"):          tin(1, 60, 1),
			},
		},
		{
			name: "IPv4-mapped addresses are IPv4 hosts",
			recs: []*flow.Record{rec("203.0.113.5", "::ffff:10.1.0.10")},
			want: map[Key]Totals{
				kGroup(1):                    tin(1, 60, 1),
				kPort(1, flow.ProtoTCP, 443): tin(1, 60, 1),
				kHost(1, "10.1.0.10"):        tin(1, 60, 1),
			},
		},
		{
			name: "no group and ifIndex 0 count nothing",
			recs: []*flow.Record{rec("203.0.113.5", "198.51.100.7", via(0, 0))},
			want: map[Key]Totals{},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e, _ := newTestEngine(t, DefaultConfig())
			for _, r := range tc.recs {
				e.Add(r)
			}
			e.Tick(at(1))
			got := map[Key]Totals{}
			for k, s := range allStats(e.Snapshot()) {
				got[k] = s.Totals
			}
			if diff := cmp.Diff(got, tc.want); diff != "" {
				t.Errorf("totals (-got +want):\n%s", diff)
			}
		})
	}
}

// TestNames checks that objects carry the model's names and partitions,
// and that a model reload keeps state by traffic group ID.
func TestNames(t *testing.T) {
	e, _ := newTestEngine(t, DefaultConfig())
	e.Add(rec("203.0.113.5", "10.1.0.10", via(1, 2)))
	e.Add(rec("203.0.113.5", "192.168.1.1"))
	e.Tick(at(1))

	type named struct {
		Name string
		CID  uint32
	}
	names := func() map[Key]named {
		out := map[Key]named{}
		for k, s := range allStats(e.Snapshot()) {
			if k.Kind != KindGroupPort && k.Kind != KindInterfacePort {
				out[k] = named{s.Name, s.CID}
			}
		}
		return out
	}
	want := map[Key]named{
		kGroup(1):               {"servers", 1},
		kHost(1, "10.1.0.10"):   {"servers", 1},
		kGroup(7):               {"wifi", 2},
		kHost(7, "192.168.1.1"): {"wifi", 2},
		kIf(1):                  {"xe-0/0/1", 0},
		kIf(2):                  {"", 0},
	}
	if diff := cmp.Diff(names(), want); diff != "" {
		t.Errorf("before reload (-got +want):\n%s", diff)
	}

	// Reload: group 1 renamed and moved to index 0 of a smaller model.
	m := testModel()
	m.Groups[0].Name = "backend"
	e.SetModel(m)
	e.Add(rec("203.0.113.5", "10.1.0.10"))
	e.Tick(at(2))
	want[kGroup(1)] = named{"backend", 1}
	want[kHost(1, "10.1.0.10")] = named{"backend", 1}
	if diff := cmp.Diff(names(), want); diff != "" {
		t.Errorf("after reload (-got +want):\n%s", diff)
	}
	if got := allStats(e.Snapshot())[kGroup(1)].Totals.PacketsIn; got != 2 {
		t.Errorf("group 1 packets in after reload = %d, want 2 (state kept by ID)", got)
	}
}

// TestNoGroupMetric checks the records and records-without-group counters,
// also without a model.
func TestNoGroupMetric(t *testing.T) {
	e, _ := newTestEngine(t, DefaultConfig())
	e.Add(rec("203.0.113.5", "198.51.100.7"))
	e.Add(rec("203.0.113.5", "10.1.0.10"))
	e.Add(rec("203.0.113.5", "198.51.100.8"))
	e.SetModel(nil) // no model: nothing is in a group, interfaces still count
	e.Add(rec("203.0.113.5", "10.1.0.10", via(1, 0)))
	e.Tick(at(1))
	if got := testutil.ToFloat64(e.metrics.records); got != 4 {
		t.Errorf("records_total = %v, want 4", got)
	}
	if got := testutil.ToFloat64(e.metrics.noGroup); got != 3 {
		t.Errorf("records_without_group_total = %v, want 3", got)
	}
	if got := allStats(e.Snapshot())[kIf(1)].Totals; got != tin(1, 60, 1) {
		t.Errorf("interface totals without a model = %+v, want one record in", got)
	}
}

// TestIdleAndCaps checks idle expiry and per-kind caps.
func TestIdleAndCaps(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxHosts = 2
	cfg.MaxGroupPorts = 0
	cfg.IdleTimeout = time.Minute
	cfg.ExporterTimeout = 2 * time.Minute
	e, _ := newTestEngine(t, cfg)
	for _, dst := range []string{"10.1.0.1", "10.1.0.2", "10.1.0.3"} {
		e.Add(rec("203.0.113.5", dst, via(1, 0)))
	}
	e.Tick(at(1))
	if diff := cmp.Diff(liveKeys(e, KindHost), []Key{kHost(1, "10.1.0.1"), kHost(1, "10.1.0.2")}, cmpAddr); diff != "" {
		t.Errorf("hosts (-got +want):\n%s", diff)
	}
	if n := len(liveKeys(e, KindGroupPort)); n != 0 {
		t.Errorf("%d group ports, want 0 with max_group_ports 0", n)
	}
	refused := func(kind string) float64 { return testutil.ToFloat64(e.metrics.refused.WithLabelValues(kind)) }
	if got := refused("host"); got != 1 {
		t.Errorf("refused hosts = %v, want 1", got)
	}
	if got := refused("group_port"); got != 3 {
		t.Errorf("refused group ports = %v, want 3", got)
	}
	if got := testutil.ToFloat64(e.metrics.objects.WithLabelValues("host")); got != 2 {
		t.Errorf("host objects gauge = %v, want 2", got)
	}

	// 10.1.0.2 stays active; the others go idle. The last record was at
	// 0.5 s, so at 60.5 s the idle objects expire.
	e.Tick(at(30))
	e.Add(rec("203.0.113.5", "10.1.0.2", span(30.2, 30.2)))
	e.Tick(at(60.4))
	if got := len(liveKeys(e, KindHost)); got != 2 {
		t.Errorf("%d hosts at 60.4 s, want 2 before the idle timeout", got)
	}
	e.Tick(at(60.5))
	if diff := cmp.Diff(liveKeys(e, KindHost), []Key{kHost(1, "10.1.0.2")}, cmpAddr); diff != "" {
		t.Errorf("hosts after idle timeout (-got +want):\n%s", diff)
	}
	// A freed slot takes a new host.
	e.Add(rec("203.0.113.5", "10.1.0.3", span(60.6, 60.6)))
	e.Tick(at(61))
	if diff := cmp.Diff(liveKeys(e, KindHost), []Key{kHost(1, "10.1.0.2"), kHost(1, "10.1.0.3")}, cmpAddr); diff != "" {
		t.Errorf("hosts after a slot freed (-got +want):\n%s", diff)
	}
	// The interface outlives the idle timeout but not the exporter timeout.
	if got := len(e.Snapshot().Exporters); got != 1 {
		t.Fatalf("%d exporters, want 1", got)
	}
	e.Tick(at(200))
	s := e.Snapshot()
	if len(s.Exporters) != 0 || len(s.Hosts) != 0 || len(s.Groups) != 0 {
		t.Errorf("after 200 s: %d exporters, %d hosts, %d groups, want none", len(s.Exporters), len(s.Hosts), len(s.Groups))
	}
	// Expired objects start over.
	e.Add(rec("203.0.113.5", "10.1.0.2", span(200.5, 200.5)))
	e.Tick(at(201))
	if got := allStats(e.Snapshot())[kHost(1, "10.1.0.2")].Totals; got != tin(1, 60, 1) {
		t.Errorf("restarted host totals = %+v, want one record", got)
	}
	// The traffic group's totals since the start count every record,
	// those of the TGRP object dropped at 200 s included.
	want := Totals{PacketsIn: 6, BytesIn: 360, NewConn: 6, Updates: 6}
	if got := e.Snapshot().GroupTotals(1); got != want {
		t.Errorf("GroupTotals(1) = %+v, want %+v (six records)", got, want)
	}
	if got := e.Snapshot().GroupTotals(7); got != (Totals{}) {
		t.Errorf("GroupTotals(7) = %+v, want zero (no traffic)", got)
	}
}

// TestObjectLayout guards the cache-line layout that Add's speed relies
// on: the fields of the common path in the first 64 bytes, and a size that
// the allocator aligns on 64 bytes.
func TestObjectLayout(t *testing.T) {
	var o Object
	if end := unsafe.Offsetof(o.open) + unsafe.Sizeof(o.open); end > 64 {
		t.Errorf("last and open end at byte %d, want within the first 64", end)
	}
	if size := unsafe.Sizeof(o); size%64 != 0 {
		t.Errorf("Object is %d bytes, want a multiple of 64", size)
	}
}
