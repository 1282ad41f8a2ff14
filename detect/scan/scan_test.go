package scan

import (
	"context"
	"encoding/binary"
	"math/bits"
	"math/rand/v2"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/google/go-cmp/cmp"

	"github.com/flowsentry/flowsentry/alert"
	"github.com/flowsentry/flowsentry/detect"
	"github.com/flowsentry/flowsentry/detect/detecttest"
	"github.com/flowsentry/flowsentry/flow"
	"github.com/flowsentry/flowsentry/internal/hashmix"
	"github.com/flowsentry/flowsentry/model"
	"github.com/flowsentry/flowsentry/policy"
)

// harness routes records to n shards as the pipeline does (a side in a
// traffic group to the shard of its address) and ticks them, then the
// stage of the whole.
type harness struct {
	m      *model.Model
	shards []*Shard
	whole  *Whole
	rec    *detecttest.Recorder
	now    int64
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).UnixNano()

func newHarness(tb testing.TB, n int, pols ...policy.Policy) *harness {
	tb.Helper()
	m := model.New(
		[]model.Partition{{CID: 0, Name: "default", Internal: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")},
			Allow: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}}},
		[]model.TrafficGroup{
			{ID: 1, Name: "internal", CID: 0, CIDRs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}},
		}, nil)
	pm := policy.NewManager(&policy.MemStore{}, nil)
	if err := pm.Load(context.Background(), pols, nil); err != nil {
		tb.Fatal(err)
	}
	h := &harness{m: m, rec: &detecttest.Recorder{}, now: t0}
	d := detect.Deps{Family: Family, Policies: pm.Set, Observer: h.rec}
	var stages []detect.ShardStage
	for range n {
		s := NewShard(d)
		s.SetModel(m)
		h.shards = append(h.shards, s)
		stages = append(stages, s)
	}
	d.Shards = stages
	h.whole = NewWhole(d)
	h.whole.SetModel(m)
	return h
}

// shardOf returns the shard owning a: a fixed hash, so that every run
// routes alike (a remote block with a single attempt in a shard in a
// second counts the next second: the counts of one second depend on the
// routing).
func (h *harness) shardOf(a netip.Addr) int {
	b := a.Unmap().As16()
	return int(hashmix.Fmix64(binary.BigEndian.Uint64(b[:8])^hashmix.Fmix64(binary.BigEndian.Uint64(b[8:]))) % uint64(len(h.shards)))
}

// add routes r to the shards owning its parts.
func (h *harness) add(r *flow.Record) {
	var c model.Class
	h.m.Classify(r, &c)
	own := make([]model.Own, len(h.shards))
	if len(c.Src.Groups) > 0 {
		own[h.shardOf(r.Src)] |= model.OwnSrc
	}
	if len(c.Dst.Groups) > 0 {
		own[h.shardOf(r.Dst)] |= model.OwnDst
	}
	for i, o := range own {
		if o != 0 {
			c.Own = o
			h.shards[i].AddClass(r, &c)
		}
	}
}

// second adds records in the coming second and ticks at its end.
func (h *harness) second(recs ...flow.Record) {
	for i := range recs {
		recs[i].Start, recs[i].End = h.now, h.now+int64(time.Second)/2
		h.add(&recs[i])
	}
	h.now += int64(time.Second)
	for _, s := range h.shards {
		s.Tick(h.now)
	}
	h.whole.Tick(h.now)
}

func syn(src, dst string, dport uint16) flow.Record {
	return flow.Record{Src: netip.MustParseAddr(src), Dst: netip.MustParseAddr(dst), SrcPort: 40000, DstPort: dport,
		Proto: flow.ProtoTCP, TCPFlags: flow.TCPSyn, Packets: 1, Bytes: 60, SamplingRate: 1}
}

func sampled(r flow.Record, rate uint32) flow.Record {
	r.SamplingRate, r.Packets, r.Bytes = rate, uint64(rate), 60*uint64(rate)
	return r
}

func pol(params string) policy.Policy {
	p := policy.Policy{ID: 3, Name: "scan", Family: Family, Target: policy.TargetGroups, Object: policy.ObjectGroup, Severity: 4}
	t := NewParams()
	for kv := range strings.SplitSeq(params, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(kv), "=")
		switch k {
		case "threshold_type":
			t.Counter = v
		case "threshold":
			t.Threshold = atof(v)
		case "direction":
			t.Direction = v
		case "window":
			t.Window = int(atof(v))
		}
	}
	p.Params = t
	return p
}

func atof(s string) float64 {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		panic(err)
	}
	return f
}

func TestAttempt(t *testing.T) {
	cases := []struct {
		name         string
		proto, flags uint8
		sport, dport uint16
		icmpType     uint8
		want         uint8
		pkts, bytes  uint64 // 0: one packet of 40 bytes
	}{
		{"syn", 6, flow.TCPSyn, 40000, 80, 0, connProbe, 0, 0},
		{"nmap syn+rst", 6, flow.TCPSyn | flow.TCPRst, 40000, 80, 0, connProbe, 0, 0},
		{"null scan or no flags", 6, 0, 40000, 80, 0, connProbe, 0, 0},
		{"fin scan", 6, flow.TCPFin, 40000, 80, 0, connProbe, 0, 0},
		{"xmas", 6, flow.TCPFin | flow.TCPPsh | flow.TCPUrg, 40000, 80, 0, connProbe, 0, 0},
		{"whole client connection", 6, flow.TCPSyn | flow.TCPAck | flow.TCPPsh | flow.TCPFin, 40000, 443, 0, wholeProbe, 8, 900},
		{"connect scan of an open port", 6, flow.TCPSyn | flow.TCPAck | flow.TCPRst, 40000, 443, 0, wholeProbe, 3, 140},
		{"client syn and ack with data, no psh", 6, flow.TCPSyn | flow.TCPAck, 40000, 443, 0, wholeProbe, 3, 400},
		{"client syn and ack only", 6, flow.TCPSyn | flow.TCPAck, 40000, 443, 0, notProbe, 2, 112},
		{"flood victim's syn-ack, retransmitted twice", 6, flow.TCPSyn | flow.TCPAck, 25565, 3456, 0, notProbe, 3, 180},
		{"flood victim's syn-ack, retransmitted five times", 6, flow.TCPSyn | flow.TCPAck, 25565, 3456, 0, notProbe, 6, 360},
		{"flood victim's syn-ack with 40 bytes of options", 6, flow.TCPSyn | flow.TCPAck | flow.TCPEce, 25565, 3456, 0, notProbe, 1, 80},
		{"flood victim's ipv4 syn-ack, one packet", 6, flow.TCPSyn | flow.TCPAck, 25565, 3456, 0, notProbe, 1, 60},
		{"closed port's rst-ack", 6, flow.TCPRst | flow.TCPAck, 25565, 3456, 0, notProbe, 1, 40},
		{"server side of a connection", 6, flow.TCPSyn | flow.TCPAck | flow.TCPPsh | flow.TCPFin, 443, 40000, 0, notProbe, 0, 0},
		{"syn-ack backscatter", 6, flow.TCPSyn | flow.TCPAck, 80, 3456, 0, notProbe, 0, 0},
		{"rst backscatter", 6, flow.TCPRst, 80, 3456, 0, notProbe, 0, 0},
		{"rst-ack", 6, flow.TCPRst | flow.TCPAck, 3456, 80, 0, notProbe, 0, 0},
		{"bare ack: an ack ping", 6, flow.TCPAck, 3456, 80, 0, ackProbe, 0, 0},
		{"bare ack to a high service port", 6, flow.TCPAck, 62528, 3389, 0, ackProbe, 0, 0},
		{"bare ack with ecn echo", 6, flow.TCPAck | flow.TCPEce, 3456, 80, 0, ackProbe, 0, 0},
		{"bare ack from a server to its client", 6, flow.TCPAck, 443, 50000, 0, notProbe, 0, 0},
		{"fin-ack", 6, flow.TCPFin | flow.TCPAck, 3456, 80, 0, notProbe, 0, 0},
		{"psh-ack", 6, flow.TCPPsh | flow.TCPAck, 3456, 80, 0, notProbe, 0, 0},
		{"urg-ack", 6, flow.TCPUrg | flow.TCPAck, 3456, 80, 0, notProbe, 0, 0},
		{"udp probe", 17, 0, 51436, 161, 0, connProbe, 0, 0},
		{"udp probe high ports", 17, 0, 60806, 40125, 0, connProbe, 0, 0},
		{"dns reply", 17, 0, 53, 3456, 0, notProbe, 0, 0},
		{"ntp reply", 17, 0, 123, 123, 0, notProbe, 0, 0},
		{"memcached reflector", 17, 0, 11211, 50000, 0, notProbe, 0, 0},
		{"quic server reply", 17, 0, 443, 50000, 0, notProbe, 0, 0},
		{"stun server reply", 17, 0, 3478, 50000, 0, notProbe, 0, 0},
		{"echo request", 1, 0, 0, 0, 8, connProbe, 0, 0},
		{"echo reply", 1, 0, 0, 0, 0, notProbe, 0, 0},
		{"unreachable", 1, 0, 0, 0, 3, notProbe, 0, 0},
		{"icmpv6 echo request", 58, 0, 0, 0, 128, connProbe, 0, 0},
		{"gre", 47, 0, 0, 0, 0, notProbe, 0, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// One unsampled 40-byte packet: a lone bare ACK is a probe.
			r := flow.Record{Src: netip.MustParseAddr("10.0.0.128"), Dst: netip.MustParseAddr("10.0.0.1"),
				Proto: tc.proto, TCPFlags: tc.flags, SrcPort: tc.sport, DstPort: tc.dport, ICMPType: tc.icmpType,
				Packets: 1, Bytes: 40, SamplingRate: 1}
			if tc.pkts != 0 {
				r.Packets, r.Bytes = tc.pkts, tc.bytes
			}
			if got := classify(&r); got != tc.want {
				t.Errorf("classify = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestACKPing shows which lone bare ACK records count as ACK probes: one
// unsampled packet without payload.
func TestACKPing(t *testing.T) {
	v4, v6 := netip.MustParseAddr("10.0.0.128"), netip.MustParseAddr("fd00::80")
	cases := []struct {
		name  string
		src   netip.Addr
		pkts  uint64
		bytes uint64
		rate  uint32
		want  uint8
	}{
		{"nmap -PA", v4, 1, 40, 1, ackProbe},
		{"with timestamps", v4, 1, 52, 1, ackProbe},
		{"1-byte keep-alive probe (counted: see the package documentation)", v4, 1, 41, 1, ackProbe},
		{"20 bytes of options", v4, 1, 60, 1, ackProbe},
		{"payload", v4, 1, 61, 1, notProbe},
		{"two packets", v4, 2, 80, 1, notProbe},
		{"exporter without a sampling rate", v4, 1, 40, 0, ackProbe},
		{"one sampled packet", v4, 100, 4000, 100, notProbe},
		{"ipv6", v6, 1, 60, 1, ackProbe},
		{"ipv6 with options", v6, 1, 80, 1, ackProbe},
		{"ipv6 with payload", v6, 1, 81, 1, notProbe},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := flow.Record{Src: tc.src, Dst: tc.src.Next(), Proto: flow.ProtoTCP, TCPFlags: flow.TCPAck, SrcPort: 62528, DstPort: 80,
				Packets: tc.pkts, Bytes: tc.bytes, SamplingRate: tc.rate}
			if got := classify(&r); got != tc.want {
				t.Errorf("classify = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	cases := []struct {
		name   string
		change func(*Params)
		want   string
	}{
		{"defaults", func(*Params) {}, ""},
		{"bad type", func(p *Params) { p.Counter = "bytes_in" }, `threshold_type: "bytes_in" is not a scan threshold type; use new_conn or uniq_endpoints`},
		{"zero threshold", func(p *Params) { p.Threshold = 0 }, "threshold: 0 is not valid; give a per-second rate above 0"},
		{"bad direction", func(p *Params) { p.Direction = "out" }, `direction: "out" is not a direction; use both, inbound or outbound`},
		{"long window", func(p *Params) { p.Window = 11 }, "window_seconds: 11 is not valid; use 1 to 10 seconds"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := pol("")
			tc.change(Of(&p))
			err := p.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

// TestMerge shows that a remote block sweeping hosts of every shard is
// judged on the sum of the shards, whatever their number.
func TestMerge(t *testing.T) {
	for _, n := range []int{1, 2, 3, 8} {
		t.Run("shards="+string(rune('0'+n)), func(t *testing.T) {
			h := newHarness(t, n, pol("threshold=50"))
			host := netip.MustParseAddr("10.1.0.0")
			for s := range 3 {
				var recs []flow.Record
				for i := range 60 { // 60 hosts a second, from two addresses
					host = host.Next()
					src := "203.0.113.5"
					if i%2 == 1 {
						src = "203.0.113.9"
					}
					recs = append(recs, syn(src, host.String(), 22))
				}
				h.second(recs...)
				if s == 0 && len(h.rec.Conditions()) != 0 {
					t.Fatalf("alert after one second at 30/s over the window: %+v", h.rec.Conditions())
				}
			}
			if len(h.rec.Conditions()) != 2 {
				t.Fatalf("%d observations, want 2 (seconds 2 and 3)", len(h.rec.Conditions()))
			}
			c := h.rec.Conditions()[1]
			wantFields := []alert.Field{
				{Name: "SCANNER_IP", Value: "203.0.113.5"},
				{Name: "SCANNER_CIDR", Value: "203.0.113.0/24"},
				{Name: "SCANNER_TG", Value: "0", Number: true},
				{Name: "DIRECTION", Value: "inbound"},
				{Name: "PROTO", Value: "6", Number: true},
				{Name: "TARGET_TG", Value: "1", Number: true},
				{Name: "TARGET_TG_NAME", Value: "internal"},
				{Name: "UNIQUE_HOSTS", Value: "60", Number: true},
				{Name: "UNIQUE_PORTS", Value: "1", Number: true},
				{Name: "CONNECTION_COUNT", Value: "180", Number: true},
				{Name: "PORTS", List: []string{"22"}, IsList: true, Number: true},
				{Name: "THRESHOLD_TYPE", Value: "uniq_endpoints"},
				{Name: "THRESHOLD_VALUE", Value: "50.00", Number: true},
			}
			if diff := cmp.Diff(c.Fields, wantFields); diff != "" {
				t.Errorf("fields (-got, +want):\n%s", diff)
			}
			if c.Key != "in/203.0.113.0/24/1" || c.Type != "scan" || c.Policy != 3 || c.CIDName != "default" || c.Values.NewConn != 60 || c.Values.UniqLocalEndpoint != 60 {
				t.Errorf("condition %+v", c)
			}
		})
	}
}

func TestScanners(t *testing.T) {
	portScan := func(src, dst string, n int) []flow.Record {
		var out []flow.Record
		for i := range n {
			out = append(out, syn(src, dst, uint16(1+i)))
		}
		return out
	}
	repeat := func(n int, recs []flow.Record) [][]flow.Record {
		out := make([][]flow.Record, n)
		for i := range out {
			out[i] = recs
		}
		return out
	}
	copies := func(n int, r flow.Record) []flow.Record {
		out := make([]flow.Record, n)
		for i := range out {
			out[i] = r
		}
		return out
	}
	cases := []struct {
		name    string
		params  string
		seconds [][]flow.Record
		want    []string // keys of the alerts, in order of first observation
	}{
		{"outbound port scan", "threshold=50", repeat(3, portScan("10.0.0.7", "198.51.100.1", 80)), []string{"out/10.0.0.7/32/1"}},
		{"just below", "threshold=50", repeat(5, portScan("10.0.0.7", "198.51.100.1", 50)), nil},
		{"outbound ignored", "threshold=50,direction=inbound", repeat(3, portScan("10.0.0.7", "198.51.100.1", 80)), nil},
		{"new_conn counts repeats", "threshold=50,threshold_type=new_conn", repeat(3, copies(80, syn("10.0.0.7", "198.51.100.1", 80))), []string{"out/10.0.0.7/32/1"}},
		{"uniq ignores repeats", "threshold=50", repeat(3, copies(80, syn("10.0.0.7", "198.51.100.1", 80))), nil},
		{"allow-listed destination", "threshold=50", repeat(3, portScan("10.0.0.7", "192.0.2.1", 80)), nil},
		{"allow-listed remote scanner", "threshold=50", repeat(3, portScan("192.0.2.1", "10.0.0.7", 80)), nil},
		{"ipv6 block", "threshold=50", repeat(3, portScan("2001:db8:1:2::99", "fd00::1", 80)), []string{"in/2001:db8:1:2::/64/1"}},
		{"one sampled probe is no scan", "threshold=20,threshold_type=new_conn", repeat(3, []flow.Record{sampled(syn("10.0.0.7", "198.51.100.1", 80), 2048)}), nil},
		{"sampled probes", "threshold=20,threshold_type=new_conn", repeat(2, []flow.Record{
			sampled(syn("10.0.0.7", "198.51.100.1", 80), 100), sampled(syn("10.0.0.7", "198.51.100.2", 80), 100)}), []string{"out/10.0.0.7/32/1"}},
		{"window 1 alerts at once", "threshold=50,window=1", repeat(1, portScan("10.0.0.7", "198.51.100.1", 80)), []string{"out/10.0.0.7/32/1"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, 3, pol(tc.params))
			for _, s := range tc.seconds {
				h.second(append([]flow.Record(nil), s...)...)
			}
			var keys []string
			seen := map[string]bool{}
			for _, c := range h.rec.Conditions() {
				if !seen[c.Key] {
					seen[c.Key] = true
					keys = append(keys, c.Key)
				}
			}
			if diff := cmp.Diff(keys, tc.want); diff != "" {
				t.Errorf("alerts (-got, +want):\n%s", diff)
			}
		})
	}
}

func ack(src, dst string, dport uint16) flow.Record {
	r := syn(src, dst, dport)
	r.TCPFlags, r.Bytes = flow.TCPAck, 40
	return r
}

func udp(src string, sport uint16, dst string, dport uint16) flow.Record {
	return flow.Record{Src: netip.MustParseAddr(src), Dst: netip.MustParseAddr(dst), SrcPort: sport, DstPort: dport,
		Proto: flow.ProtoUDP, Packets: 1, Bytes: 70, SamplingRate: 1}
}

// hostsOf returns n addresses from base (base + 1 …).
func hostsOf(base string, n int) []string {
	a := netip.MustParseAddr(base)
	out := make([]string, n)
	for i := range out {
		a = a.Next()
		out[i] = a.String()
	}
	return out
}

// TestACKSweep shows that lone bare ACKs to many hosts count toward the
// distinct endpoints and hosts, not toward the connection attempts.
func TestACKSweep(t *testing.T) {
	sweep := func(src, base string, n int) []flow.Record {
		var out []flow.Record
		for _, d := range hostsOf(base, n) {
			out = append(out, ack(src, d, 80))
		}
		return out
	}
	cases := []struct {
		name   string
		params string
		recs   []flow.Record
		want   string // the key of the alert; "" for none
	}{
		{"local host sweeping", "threshold=50", sweep("10.0.0.128", "198.51.100.0", 120), "out/10.0.0.128/32/1"},
		{"remote host sweeping", "threshold=50", sweep("203.0.113.9", "10.1.0.0", 120), "in/203.0.113.0/24/1"},
		{"just below", "threshold=50", sweep("10.0.0.128", "198.51.100.0", 50), ""},
		{"not connection attempts", "threshold=50,threshold_type=new_conn", sweep("10.0.0.128", "198.51.100.0", 200), ""},
		{"a server's lone acks to its clients", "threshold=50", func() []flow.Record {
			var out []flow.Record
			for i, d := range hostsOf("198.51.100.0", 200) {
				r := ack("10.0.0.80", d, uint16(40000+i))
				r.SrcPort = 443
				out = append(out, r)
			}
			return out
		}(), ""},
		{"acks with payload", "threshold=50", func() []flow.Record {
			recs := sweep("10.0.0.128", "198.51.100.0", 200)
			for i := range recs {
				recs[i].Bytes = 1240
			}
			return recs
		}(), ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, 3, pol(tc.params))
			for range 2 {
				h.second(append([]flow.Record(nil), tc.recs...)...)
			}
			if tc.want == "" {
				if len(h.rec.Conditions()) != 0 {
					t.Fatalf("alerts %+v, want none", h.rec.Conditions())
				}
				return
			}
			if len(h.rec.Conditions()) == 0 {
				t.Fatal("no alert")
			}
			c := h.rec.Conditions()[len(h.rec.Conditions())-1]
			if c.Key != tc.want || c.Values.NewConn != 0 {
				t.Errorf("key %s new_conn %v, want %s and 0", c.Key, c.Values.NewConn, tc.want)
			}
			for _, f := range c.Fields {
				if (f.Name == "UNIQUE_HOSTS" && f.Value != strconv.Itoa(len(tc.recs))) || (f.Name == "CONNECTION_COUNT" && f.Value != "0") {
					t.Errorf("%s = %s", f.Name, f.Value)
				}
			}
		})
	}
}

// TestAnsweredUDP shows that UDP endpoints which answer their prober do
// not count toward its distinct endpoints, whichever record comes first
// and when the answer's record came the second before; unanswered ones
// do.
func TestAnsweredUDP(t *testing.T) {
	const resolver = "10.0.0.53"
	servers := hostsOf("198.51.0.0", 900)
	query := func(i int) flow.Record { return udp(resolver, uint16(20000+i), servers[i], 53) }
	answer := func(i int) flow.Record { return udp(servers[i], 53, resolver, uint16(20000+i)) }
	// batch returns the records of queries [from, from+n), with the
	// answers of those whose index passes answered, answers first when
	// answerFirst.
	batch := func(from, n int, answered func(int) bool, answerFirst bool) []flow.Record {
		var out []flow.Record
		for i := from; i < from+n; i++ {
			if !answered(i) {
				out = append(out, query(i))
				continue
			}
			if answerFirst {
				out = append(out, answer(i), query(i))
			} else {
				out = append(out, query(i), answer(i))
			}
		}
		return out
	}
	all := func(int) bool { return true }
	answers := func(from, n int) []flow.Record {
		var out []flow.Record
		for i := from; i < from+n; i++ {
			out = append(out, answer(i))
		}
		return out
	}
	cases := []struct {
		name    string
		seconds [][]flow.Record
		want    bool
	}{
		{"resolver, answers after queries", [][]flow.Record{batch(0, 300, all, false), batch(300, 300, all, false), batch(600, 300, all, false)}, false},
		{"resolver, answers before queries", [][]flow.Record{batch(0, 300, all, true), batch(300, 300, all, true), batch(600, 300, all, true)}, false},
		{"resolver, answers reported the second before", [][]flow.Record{answers(0, 300),
			append(batch(0, 300, func(int) bool { return false }, false), answers(300, 300)...),
			append(batch(300, 300, func(int) bool { return false }, false), answers(600, 300)...),
			batch(600, 300, func(int) bool { return false }, false)}, false},
		{"unanswered", [][]flow.Record{batch(0, 300, func(int) bool { return false }, false), batch(300, 300, func(int) bool { return false }, false)}, true},
		{"a third answered", [][]flow.Record{batch(0, 300, func(i int) bool { return i%3 == 0 }, false), batch(300, 300, func(i int) bool { return i%3 == 0 }, false)}, true},
		{"answered from another port", [][]flow.Record{func() []flow.Record {
			var out []flow.Record
			for i := range 300 {
				a := answer(i)
				a.SrcPort = 5353
				out = append(out, query(i), a)
			}
			return out
		}()}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, 3, pol("threshold=100,window=1"))
			for _, s := range tc.seconds {
				h.second(s...)
			}
			if got := len(h.rec.Conditions()) > 0; got != tc.want {
				t.Errorf("alerted %v, want %v: %+v", got, tc.want, h.rec.Conditions())
			}
		})
	}
}

// TestForget shows that idle scanners are forgotten and their memory
// reused.
func TestForget(t *testing.T) {
	h := newHarness(t, 2, pol("threshold=50"))
	// A remote block is tracked from its second attempt.
	h.second(syn("10.0.0.7", "198.51.100.1", 80), syn("203.0.113.1", "10.0.0.8", 22), syn("203.0.113.1", "10.0.0.8", 23))
	if h.whole.Tracked() != 2 {
		t.Fatalf("tracked %d, want 2", h.whole.Tracked())
	}
	for range MaxWindow {
		h.second()
	}
	if h.whole.Tracked() != 0 {
		t.Fatalf("tracked %d after %d idle seconds, want 0", h.whole.Tracked(), MaxWindow)
	}
	h.second(syn("10.0.0.9", "198.51.100.1", 80))
	if h.whole.Tracked() != 1 || len(h.whole.list) != 2 {
		t.Fatalf("tracked %d in %d slots", h.whole.Tracked(), len(h.whole.list))
	}
}

// BenchmarkScan measures the hot path: a shard counting a mix of probes
// (2,000 scanners, outbound and inbound, 64 endpoints each) and records
// that are not attempts, with a tick (and the merge) every 100,000
// records.
//
//	go test ./detect/scan -run '^$' -bench Scan -benchmem -count=6 -cpu 1,2 | tee new.txt; benchstat new.txt
func BenchmarkScan(b *testing.B) {
	h := newHarness(b, 1, pol("threshold=1000"))
	recs := make([]flow.Record, 0, 1<<16)
	var classes []model.Class
	for i := range cap(recs) {
		var r flow.Record
		switch i % 4 {
		case 0: // outbound probe
			r = syn(netip.AddrFrom4([4]byte{10, 1, byte(i >> 8 % 8), byte(i % 250)}).String(),
				netip.AddrFrom4([4]byte{198, 51, 100, byte(i / 7 % 64)}).String(), uint16(i%1000))
		case 1: // inbound probe
			r = syn(netip.AddrFrom4([4]byte{203, 0, byte(i % 1000 / 4), 5}).String(),
				netip.AddrFrom4([4]byte{10, 2, byte(i / 9 % 64), 1}).String(), 22)
		default: // a reply: not an attempt
			r = syn("198.51.100.7", "10.0.0.1", 40000)
			r.SrcPort, r.TCPFlags = 443, flow.TCPSyn|flow.TCPAck
		}
		recs = append(recs, r)
		var c model.Class
		h.m.Classify(&recs[i], &c)
		classes = append(classes, c)
	}
	sh := h.shards[0]
	// Warm up to the high-water marks.
	for i := range recs {
		sh.AddClass(&recs[i], &classes[i])
	}
	sh.Tick(h.now)
	h.whole.Tick(h.now)
	i := 0
	b.ResetTimer()
	for b.Loop() {
		sh.AddClass(&recs[i&(len(recs)-1)], &classes[i&(len(recs)-1)])
		i++
		if i%100_000 == 0 {
			h.now += int64(time.Second)
			sh.Tick(h.now)
			h.whole.Tick(h.now)
		}
	}
	b.ReportMetric(float64(unsafe.Sizeof(tally{})), "B/tally")
	b.ReportMetric(float64(unsafe.Sizeof(scanner{})), "B/scanner")
}

// BenchmarkScanUDP measures the UDP path: a resolver's queries to many
// servers (each a new endpoint, settled at the tick) and their answers,
// with ACK probes between, and a tick every 100,000 records.
func BenchmarkScanUDP(b *testing.B) {
	h := newHarness(b, 1, pol("threshold=1000"))
	recs := make([]flow.Record, 0, 1<<16)
	for i := range cap(recs) {
		srv := netip.AddrFrom4([4]byte{198, 51, byte(i >> 8), byte(i)}).String()
		switch i % 4 {
		case 0, 1: // a query
			recs = append(recs, udp("10.1.0.53", uint16(1024+i/2), srv, 53))
		case 2: // its answer
			recs = append(recs, udp(srv, 53, "10.1.0.53", uint16(1024+i/2)))
		default: // an ACK probe
			recs = append(recs, ack("10.1.0.9", srv, 80))
		}
	}
	classes := make([]model.Class, len(recs))
	for i := range recs {
		h.m.Classify(&recs[i], &classes[i])
		classes[i].Own = model.OwnSrc | model.OwnDst
	}
	sh := h.shards[0]
	for i := range recs {
		sh.AddClass(&recs[i], &classes[i])
	}
	sh.Tick(h.now)
	h.whole.Tick(h.now)
	i := 0
	b.ResetTimer()
	for b.Loop() {
		sh.AddClass(&recs[i&(len(recs)-1)], &classes[i&(len(recs)-1)])
		i++
		if i%100_000 == 0 {
			h.now += int64(time.Second)
			sh.Tick(h.now)
			h.whole.Tick(h.now)
		}
	}
}

// spoofed returns n SYNs from random addresses (a /24 each, but for rare
// collisions) to port 25565 of victim: a spoofed SYN flood.
func spoofed(victim string, n int, seed uint64) []flow.Record {
	rng := rand.New(rand.NewPCG(seed, 7))
	out := make([]flow.Record, n)
	for i := range out {
		src := netip.AddrFrom4([4]byte{byte(11 + rng.IntN(180)), byte(rng.IntN(256)), byte(rng.IntN(256)), byte(1 + rng.IntN(254))})
		out[i] = syn(src.String(), victim, 25565)
		out[i].SrcPort = uint16(1024 + rng.IntN(60000))
	}
	return out
}

// field returns the value of field name of c.
func field(c alert.Condition, name string) string {
	for _, f := range c.Fields {
		if f.Name == name {
			return f.Value
		}
	}
	return ""
}

// TestFloodHidesNoScan shows that a spoofed flood of 40,000 single-SYN
// sources in the second of a local port scan neither hides the scan nor
// takes a place among the scanners, and that a flood of remote blocks
// probing twice (a botnet), which does, leaves the local hosts their
// quarter of the table and is counted as dropped.
func TestFloodHidesNoScan(t *testing.T) {
	scan := func() []flow.Record {
		var out []flow.Record
		for p := range 1000 {
			out = append(out, syn("10.0.0.8", "198.51.100.20", uint16(1+p)))
		}
		return out
	}
	twice := func(recs []flow.Record) []flow.Record {
		out := make([]flow.Record, 0, 2*len(recs))
		for _, r := range recs {
			r2 := r
			r2.DstPort++
			out = append(out, r, r2)
		}
		return out
	}
	cases := []struct {
		name      string
		shards    int
		before    [][]flow.Record // seconds before the flood's
		flood     []flow.Record
		wantDrops bool
	}{
		{"spoofed flood, 1 shard", 1, nil, spoofed("10.10.10.10", 40_000, 1), false},
		{"spoofed flood, 3 shards", 3, nil, spoofed("10.10.10.10", 40_000, 2), false},
		{"flood of 40,000 blocks probing twice", 1, nil, twice(spoofed("10.10.10.10", 40_000, 3)), true},
		// 3 × 25,000 blocks tracked: more than the 3/4 of the scanners
		// tracked that remote blocks may take.
		{"three seconds of 25,000 blocks probing twice", 1,
			[][]flow.Record{twice(spoofed("10.10.10.10", 25_000, 4)), twice(spoofed("10.10.10.10", 25_000, 5))},
			twice(spoofed("10.10.10.10", 25_000, 6)), true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, tc.shards, pol("threshold=100,window=1"))
			for _, s := range tc.before {
				h.second(s...)
			}
			// The flood first: its sources take their places before the scan.
			h.second(append(tc.flood, scan()...)...)
			var scanAlert *alert.Condition
			for i, c := range h.rec.Conditions() {
				if c.Key == "out/10.0.0.8/32/1" {
					scanAlert = &h.rec.Conditions()[i]
				}
			}
			if scanAlert == nil {
				t.Fatalf("no scan alert for 10.0.0.8 among %d alerts", len(h.rec.Conditions()))
			}
			if got := field(*scanAlert, "UNIQUE_PORTS"); got != "1000" {
				t.Errorf("UNIQUE_PORTS = %s, want 1000", got)
			}
			var st Stats
			tallies := 0
			for _, s := range h.shards {
				x := s.Stats()
				st.DroppedRecords += x.DroppedRecords
				st.EvictedSingles += x.EvictedSingles
				tallies += len(s.closed)
			}
			if tc.wantDrops {
				if st.DroppedRecords+h.whole.Dropped() == 0 {
					t.Errorf("no drops counted")
				}
				if tallies > maxTallies*tc.shards {
					t.Errorf("%d tallies", tallies)
				}
				return
			}
			if st.DroppedRecords != 0 {
				t.Errorf("%d records dropped", st.DroppedRecords)
			}
			// Only the /24s hit twice by chance get a tally.
			if tallies > 200 || h.whole.Tracked() > 200 {
				t.Errorf("%d tallies, %d tracked scanners: the flood's single sources took places", tallies, h.whole.Tracked())
			}
			t.Logf("tallies %d, evicted singles %d", tallies, st.EvictedSingles)
		})
	}
}

// TestSingles shows that a remote block's first attempt in a shard waits
// for its second, within this second or the previous one, and then counts
// in full; a block attempting less often is not counted.
func TestSingles(t *testing.T) {
	probe := func(i int) flow.Record { return syn("203.0.113.9", "10.0.0.7", uint16(1+i)) }
	cases := []struct {
		name    string
		params  string
		seconds [][]flow.Record // nil: a quiet second
		want    bool
		conns   float64 // NEW_CONN of the last observation, when want
	}{
		// One attempt a second: counted two at a time, every other second.
		{"one a second", "threshold_type=new_conn,threshold=0.5,window=4",
			[][]flow.Record{{probe(0)}, {probe(1)}, {probe(2)}, {probe(3)}}, true, 1},
		{"two in a second", "threshold_type=new_conn,threshold=1,window=2",
			[][]flow.Record{{probe(0), probe(1)}, {probe(2), probe(3)}}, true, 2},
		// Limit: one attempt every 3 s is never counted.
		{"one every three seconds", "threshold_type=new_conn,threshold=0.1,window=10",
			[][]flow.Record{{probe(0)}, nil, nil, {probe(1)}, nil, nil, {probe(2)}, nil, nil, {probe(3)}}, false, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, 1, pol(tc.params))
			for _, s := range tc.seconds {
				h.second(s...)
			}
			if got := len(h.rec.Conditions()) > 0; got != tc.want {
				t.Fatalf("alerted %v, want %v: %+v", got, tc.want, h.rec.Conditions())
			}
			if tc.want {
				c := h.rec.Conditions()[len(h.rec.Conditions())-1]
				if c.Key != "in/203.0.113.0/24/1" || c.Values.NewConn != tc.conns || field(c, "CONNECTION_COUNT") != "4" {
					t.Errorf("key %s NEW_CONN %v CONNECTION_COUNT %s, want NEW_CONN %v and 4", c.Key, c.Values.NewConn, field(c, "CONNECTION_COUNT"), tc.conns)
				}
			}
		})
	}
}

// TestAnsweredUDPNewConn shows that answered UDP attempts do not count
// toward new_conn either, while unanswered ones and TCP attempts do.
func TestAnsweredUDPNewConn(t *testing.T) {
	const resolver = "10.0.0.53"
	servers := hostsOf("198.51.0.0", 1500)
	query := func(i int) flow.Record { return udp(resolver, uint16(20000+i), servers[i], 53) }
	answer := func(i int) flow.Record { return udp(servers[i], 53, resolver, uint16(20000+i)) }
	// seconds returns 5 seconds of 300 queries a second, answered when
	// answered(i); early moves the answers into the second before (an
	// exporter reporting the server's side first).
	seconds := func(answered func(int) bool, early bool) [][]flow.Record {
		out := make([][]flow.Record, 6)
		for s := range 5 {
			for i := s * 300; i < (s+1)*300; i++ {
				out[s+1] = append(out[s+1], query(i))
				if answered(i) {
					if early {
						out[s] = append(out[s], answer(i))
					} else {
						out[s+1] = append(out[s+1], answer(i))
					}
				}
			}
		}
		return out
	}
	all := func(int) bool { return true }
	none := func(int) bool { return false }
	cases := []struct {
		name    string
		seconds [][]flow.Record
		conns   float64 // NEW_CONN of the last alert; 0: no alert
	}{
		{"resolver, all answered", seconds(all, false), 0},
		{"resolver, answers reported the second before", seconds(all, true), 0},
		{"resolver to one server, all answered", func() [][]flow.Record {
			out := make([][]flow.Record, 5)
			for s := range out {
				for i := range 300 {
					q, a := query(i), answer(i)
					q.Dst, a.Src = netip.MustParseAddr("198.51.100.53"), netip.MustParseAddr("198.51.100.53")
					q.SrcPort, a.DstPort = uint16(10000+s*300+i), uint16(10000+s*300+i)
					out[s] = append(out[s], q, a)
				}
			}
			return out
		}(), 0},
		{"unanswered", seconds(none, false), 300},
		{"two thirds unanswered", seconds(func(i int) bool { return i%3 == 0 }, false), 200},
		{"answered whole tcp connections", func() [][]flow.Record {
			out := make([][]flow.Record, 5)
			for s := range out {
				for i := range 300 {
					r := syn("10.0.0.66", servers[s*300+i], 445)
					r.SrcPort = uint16(30000 + s*300 + i)
					r.TCPFlags |= flow.TCPAck | flow.TCPFin
					out[s] = append(out[s], r)
				}
			}
			return out
		}(), 300},
		// A server on a high port: its side of whole connections to
		// clients of lower ports, all from its port, counts once.
		{"server's side of whole connections from one port", func() [][]flow.Record {
			out := make([][]flow.Record, 5)
			for s := range out {
				for i := range 300 {
					r := syn("10.0.0.66", servers[s*300+i], uint16(1024+s*300+i))
					r.SrcPort = 25565
					r.TCPFlags |= flow.TCPAck | flow.TCPPsh | flow.TCPFin
					out[s] = append(out[s], r)
				}
			}
			return out
		}(), 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, 3, pol("threshold_type=new_conn,threshold=50,window=1"))
			for _, s := range tc.seconds {
				h.second(s...)
			}
			if tc.conns == 0 {
				if len(h.rec.Conditions()) != 0 {
					t.Fatalf("alerts %+v, want none", h.rec.Conditions())
				}
				return
			}
			if len(h.rec.Conditions()) == 0 {
				t.Fatal("no alert")
			}
			for _, c := range h.rec.Conditions() {
				if c.Values.NewConn != tc.conns {
					t.Errorf("NEW_CONN %v, want %v", c.Values.NewConn, tc.conns)
				}
			}
		})
	}
}

// BenchmarkScanFlood measures a spoofed SYN flood: every record from a
// new remote /24 (a single attempt kept aside, never a tally), with a tick
// every 16,384 records (a source comes back after 4 ticks: stale).
func BenchmarkScanFlood(b *testing.B) {
	h := newHarness(b, 1, pol("threshold=1000"))
	recs := spoofed("10.10.10.10", 1<<16, 9)
	classes := make([]model.Class, len(recs))
	for i := range recs {
		h.m.Classify(&recs[i], &classes[i])
		classes[i].Own = model.OwnDst
	}
	sh := h.shards[0]
	i := 0
	add := func() {
		sh.AddClass(&recs[i&(len(recs)-1)], &classes[i&(len(recs)-1)])
		i++
		if i%(1<<14) == 0 {
			h.now += int64(time.Second)
			sh.Tick(h.now)
			h.whole.Tick(h.now)
		}
	}
	for range 4 * len(recs) { // up to the high-water marks
		add()
	}
	b.ResetTimer()
	for b.Loop() {
		add()
	}
	b.ReportMetric(float64(unsafe.Sizeof(single{})), "B/single")
}

// BenchmarkScanFlowgen measures the load of bench/peers.sh (flowgen): 100
// internal hosts each talking to 1,000 remote hosts (198.18.0.0/15) from
// random source ports, TCP (any of flowgen's flag sets) and UDP to 5
// service ports: every host an outbound "scanner" of up to 10,000
// endpoints a second, far above exactLimit, with a tick every 2^20
// records. The records are 4,096 templates (records and their classes
// in cache, as in the pipeline, where a shard meets a record right after
// decoding it) given a new destination and source port at each use.
func BenchmarkScanFlowgen(b *testing.B) {
	h := newHarness(b, 1, pol("threshold=1000000"))
	rng := rand.New(rand.NewPCG(1, 2))
	ports := []uint16{80, 443, 53, 123, 22}
	flags := []uint8{flow.TCPSyn, flow.TCPSyn | flow.TCPAck, flow.TCPAck | flow.TCPPsh,
		flow.TCPSyn | flow.TCPAck | flow.TCPPsh | flow.TCPFin, flow.TCPAck | flow.TCPRst}
	recs := make([]flow.Record, 1<<12)
	classes := make([]model.Class, len(recs))
	for i := range recs {
		r := flow.Record{Src: netip.AddrFrom4([4]byte{10, 0, 0, byte(1 + rng.IntN(100))}),
			Dst:     netip.AddrFrom4([4]byte{198, 18, 0, 1}),
			SrcPort: uint16(32768 + rng.IntN(28232)), DstPort: ports[rng.IntN(len(ports))],
			Proto: flow.ProtoUDP, Packets: uint64(1 + rng.IntN(64)), SamplingRate: 1}
		r.Bytes = r.Packets * uint64(40+rng.IntN(1461))
		if rng.IntN(2) == 0 {
			r.Proto, r.TCPFlags = flow.ProtoTCP, flags[rng.IntN(len(flags))]
		}
		recs[i] = r
		h.m.Classify(&recs[i], &classes[i])
		classes[i].Own = model.OwnSrc
	}
	dsts := make([]netip.Addr, 1000)
	for n := range dsts {
		dsts[n] = netip.AddrFrom4([4]byte{198, 18, byte(n >> 8), byte(n)})
	}
	sh := h.shards[0]
	i := 0
	x := uint32(1)
	add := func() {
		j := i & (len(recs) - 1)
		x ^= x << 13 // xorshift32: the remote host and source port
		x ^= x >> 17
		x ^= x << 5
		r := &recs[j]
		r.Dst, r.SrcPort = dsts[x%1000], uint16(32768+x>>16%28232)
		sh.AddClass(r, &classes[j])
		i++
		if i%(1<<20) == 0 {
			h.now += int64(time.Second)
			sh.Tick(h.now)
			h.whole.Tick(h.now)
		}
	}
	for range 1 << 21 { // up to the high-water marks
		add()
	}
	b.ResetTimer()
	for b.Loop() {
		add()
	}
}

// TestSketch shows the error (within 7%: 3 standard errors) of the HyperLogLog sketches over the counts
// a tally reaches once past exactLimit.
func TestSketch(t *testing.T) {
	for _, n := range []int{1, 10, 100, 1000, 3000, 10_000, 100_000} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			var s sketch
			for i := range n {
				he, _, _ := itemHashes(addrHash(netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)})), uint16(i>>16), 6)
				s.insert(he)
			}
			got := float64(s.estimate())
			if tol := max(1, 0.07*float64(n)); got < float64(n)-tol || got > float64(n)+tol {
				t.Errorf("estimate %v of %d distinct hashes, want within %v", got, n, tol)
			}
		})
	}
}

// TestBigScanner shows a scanner counted past exactLimit: its distinct
// endpoints, hosts and ports estimated within 7% (3 standard errors), whatever the shard count,
// in its first second (exact, then sketches) and the next (sketches from
// the start).
func TestBigScanner(t *testing.T) {
	const hosts, ports = 1500, 4
	second := func(s int) []flow.Record {
		var out []flow.Record
		for i := range hosts {
			for p := range ports {
				r := syn("10.0.0.9", netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)}).String(), uint16(s*10+p+1))
				r.SrcPort = uint16(1024 + i)
				out = append(out, r, r) // each endpoint twice
			}
		}
		return out
	}
	near := func(t *testing.T, name, got string, want float64) {
		t.Helper()
		if v := atof(got); v < want*0.93 || v > want*1.07 {
			t.Errorf("%s = %s, want %v ± 7%%", name, got, want)
		}
	}
	for _, n := range []int{1, 3} {
		t.Run("shards="+strconv.Itoa(n), func(t *testing.T) {
			h := newHarness(t, n, pol("threshold=1000,window=1"))
			for s := range 2 {
				h.rec.Reset()
				h.second(second(s)...)
				if len(h.rec.Conditions()) != 1 {
					t.Fatalf("second %d: %d alerts, want 1", s, len(h.rec.Conditions()))
				}
				c := h.rec.Conditions()[0]
				near(t, "uniq", strconv.FormatFloat(c.Values.UniqLocalEndpoint+float64(h.whole.list[0].ring[(h.now/int64(time.Second)-1)%MaxWindow].uniq), 'f', 0, 64), hosts*ports)
				near(t, "UNIQUE_HOSTS", field(c, "UNIQUE_HOSTS"), hosts)
				if got := field(c, "UNIQUE_PORTS"); got != strconv.Itoa(ports) {
					t.Errorf("UNIQUE_PORTS = %s, want %d", got, ports)
				}
				if c.Values.NewConn != 2*hosts*ports {
					t.Errorf("NEW_CONN = %v, want %d", c.Values.NewConn, 2*hosts*ports)
				}
			}
		})
	}
}

// TestAddrHash shows that addrHash hashes an address as its 16-byte form
// (through As4 for IPv4): an IPv4 address and its IPv4-mapped form alike.
func TestAddrHash(t *testing.T) {
	slow := func(a netip.Addr) uint64 {
		b := a.As16()
		return hashmix.Fmix64(binary.BigEndian.Uint64(b[8:]) ^ bits.RotateLeft64(binary.BigEndian.Uint64(b[:8])*0xc2b2ae3d27d4eb4f, 31))
	}
	for _, tc := range []struct{ addr, same string }{
		{"10.1.2.3", "::ffff:10.1.2.3"},
		{"0.0.0.0", "::ffff:0.0.0.0"},
		{"255.255.255.255", "::ffff:255.255.255.255"},
		{"2001:db8::1", "2001:db8::1"},
		{"::1", "::1"},
		{"::", "::"},
	} {
		t.Run(tc.addr, func(t *testing.T) {
			a, b := netip.MustParseAddr(tc.addr), netip.MustParseAddr(tc.same)
			if got, want := addrHash(a), slow(a); got != want {
				t.Errorf("addrHash(%v) = %x, want %x", a, got, want)
			}
			if addrHash(a) != addrHash(b) {
				t.Errorf("addrHash(%v) = %x, addrHash(%v) = %x: want equal", a, addrHash(a), b, addrHash(b))
			}
		})
	}
}

// TestAllowedScannerNewModel shows that a local scanner put on its
// partition's allow-list by a new model in the middle of a second stops
// counting at once, though its tally of the second was made before.
func TestAllowedScannerNewModel(t *testing.T) {
	for _, tc := range []struct {
		name  string
		allow bool
		want  int
	}{
		{"allowed mid-second", true, 0},
		{"not allowed", false, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, 1, pol("threshold=100,window=1"))
			for p := range 50 { // below the threshold, before the new model
				r := syn("10.0.0.8", "198.51.100.20", uint16(1+p))
				r.Start, r.End = h.now, h.now
				h.add(&r)
			}
			if tc.allow {
				allow := []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("10.0.0.8/32")}
				h.m = model.New(
					[]model.Partition{{CID: 0, Name: "default", Internal: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, Allow: allow}},
					[]model.TrafficGroup{{ID: 1, Name: "internal", CID: 0, CIDRs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}}, nil)
				h.shards[0].SetModel(h.m)
				h.whole.SetModel(h.m)
			}
			var recs []flow.Record
			for p := range 150 { // above it with the first 50
				recs = append(recs, syn("10.0.0.8", "198.51.100.20", uint16(100+p)))
			}
			h.second(recs...)
			if len(h.rec.Conditions()) != tc.want {
				t.Errorf("%d alerts, want %d", len(h.rec.Conditions()), tc.want)
			}
		})
	}
}
