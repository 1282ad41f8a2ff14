package rates

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/flowsentry/flowsentry/config/check"
	"github.com/flowsentry/flowsentry/flow"
	"github.com/flowsentry/flowsentry/model"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/prometheus/client_golang/prometheus"
)

// t0 is the test epoch, in whole seconds.
const t0 = int64(1_700_000_000)

// at returns t0+sec as Unix ns; sec may be fractional.
func at(sec float64) int64 { return t0*nsPerSec + int64(sec*float64(nsPerSec)) }

var exporterA = netip.MustParseAddr("192.0.2.1")

// testModel has two partitions:
//
//	CID 1 "acme", INT 10.0.0.0/8:
//	  TG 1 "servers" 10.1.0.0/16, TG 2 "dmz" 10.1.2.0/24 (inside TG 1),
//	  TG 3 "v6" 2001:db8:1::/48
//	CID 2 "guests", no INT: TG 7 "wifi" 192.168.0.0/16
//
// and names interface 1 of exporterA "xe-0/0/1".
func testModel() *model.Model {
	p := netip.MustParsePrefix
	return model.New(
		[]model.Partition{
			{CID: 1, Name: "acme", Internal: []netip.Prefix{p("10.0.0.0/8")}},
			{CID: 2, Name: "guests"},
		},
		[]model.TrafficGroup{
			{ID: 1, Name: "servers", CID: 1, CIDRs: []netip.Prefix{p("10.1.0.0/16")}},
			{ID: 2, Name: "dmz", CID: 1, CIDRs: []netip.Prefix{p("10.1.2.0/24")}},
			{ID: 3, Name: "v6", CID: 1, CIDRs: []netip.Prefix{p("2001:db8:1::/48")}},
			{ID: 7, Name: "wifi", CID: 2, CIDRs: []netip.Prefix{p("192.168.0.0/16")}},
		},
		map[model.InterfaceKey]string{{Exporter: exporterA, IfIndex: 1}: "xe-0/0/1"},
	)
}

// newTestEngine returns an engine on testModel with its own registry,
// ticked to t0.
func newTestEngine(t testing.TB, cfg Config) (*Engine, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	e, err := New(cfg, reg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	e.SetModel(testModel())
	e.Tick(at(0))
	return e, reg
}

// rec is a one-packet-per-call record builder: a TCP SYN of 1 packet and
// 60 bytes at t0+0.5, unsampled, with no exporter. Options adjust it.
func rec(src, dst string, opts ...func(*flow.Record)) *flow.Record {
	r := &flow.Record{
		Start: at(0.5), End: at(0.5),
		Src: netip.MustParseAddr(src), Dst: netip.MustParseAddr(dst),
		SrcPort: 40000, DstPort: 443,
		Packets: 1, Bytes: 60, SamplingRate: 1,
		Proto: flow.ProtoTCP, TCPFlags: flow.TCPSyn,
	}
	for _, o := range opts {
		o(r)
	}
	return r
}

func ports(src, dst uint16) func(*flow.Record) {
	return func(r *flow.Record) { r.SrcPort, r.DstPort = src, dst }
}

func counts(packets, bytes uint64) func(*flow.Record) {
	return func(r *flow.Record) { r.Packets, r.Bytes = packets, bytes }
}

func proto(p, flags uint8) func(*flow.Record) {
	return func(r *flow.Record) { r.Proto, r.TCPFlags = p, flags }
}

// continued marks the record as continuing a flow already counted.
func continued(r *flow.Record) { r.Continued = true }

// span sets the record's start and end, in seconds after t0.
func span(start, end float64) func(*flow.Record) {
	return func(r *flow.Record) { r.Start, r.End = at(start), at(end) }
}

// via sets the exporter to exporterA and the interfaces.
func via(in, out uint32) func(*flow.Record) {
	return func(r *flow.Record) { r.Exporter, r.InIf, r.OutIf = exporterA, in, out }
}

// Keys of objects in tests.
func kGroup(id uint32) Key { return Key{Kind: KindGroup, Group: id} }
func kPort(id uint32, proto uint8, port uint16) Key {
	return Key{Kind: KindGroupPort, Group: id, Proto: proto, Port: port}
}
func kHost(id uint32, ip string) Key {
	return Key{Kind: KindHost, Group: id, IP: netip.MustParseAddr(ip)}
}
func kIf(ifIndex uint32) Key {
	return Key{Kind: KindInterface, Exporter: exporterA, IfIndex: ifIndex}
}
func kIfPort(ifIndex uint32, proto uint8, port uint16) Key {
	return Key{Kind: KindInterfacePort, Exporter: exporterA, IfIndex: ifIndex, Proto: proto, Port: port}
}

// allStats returns every object of the snapshot, interfaces included, by
// key.
func allStats(s *Snapshot) map[Key]Stats {
	out := map[Key]Stats{}
	for _, list := range [][]Stats{s.Groups, s.GroupPorts, s.Hosts, s.InterfacePorts} {
		for _, st := range list {
			out[st.Key] = st
		}
	}
	for _, x := range s.Exporters {
		for _, i := range x.Interfaces {
			out[i.Key] = i.Stats
		}
	}
	return out
}

// liveKeys returns the keys of the live objects of kind k, sorted.
func liveKeys(e *Engine, k Kind) []Key {
	var keys []Key
	e.Each(k, func(o *Object) { keys = append(keys, o.Key()) })
	slices.SortFunc(keys, func(a, b Key) int {
		if c := a.IP.Compare(b.IP); c != 0 {
			return c
		}
		return int(a.Port) - int(b.Port)
	})
	return keys
}

func netipFrom4(a, b, c, d byte) netip.Addr { return netip.AddrFrom4([4]byte{a, b, c, d}) }

// cmpAddr lets go-cmp compare netip.Addr values (and keys holding them).
var cmpAddr = cmpopts.EquateComparable(netip.Addr{})

// New returns an engine on its own, as a single shard would be without
// the merge: the tests of the engine's counting use it.
func New(cfg Config, reg prometheus.Registerer) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, check.Prefix("rates", err)
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	e := newEngine(cfg, m)
	e.publish()
	return e, nil
}

// Add counts r, classified with the engine's model, every part owned.
func (e *Engine) Add(r *flow.Record) {
	var c model.Class
	e.model.Classify(r, &c)
	e.AddClass(r, &c)
}
