package scan

import (
	"context"
	"hash/maphash"
	"net/netip"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/google/go-cmp/cmp"

	"github.com/flowsentry/flowsentry/alert"
	"github.com/flowsentry/flowsentry/detect"
	"github.com/flowsentry/flowsentry/flow"
	"github.com/flowsentry/flowsentry/model"
	"github.com/flowsentry/flowsentry/policy"
)

type recorder struct{ got []alert.Condition }

func (r *recorder) Observe(_ time.Time, c alert.Condition) { r.got = append(r.got, c) }
func (r *recorder) Commit()                                {}

// harness routes records to n shards as the pipeline does (a side in a
// traffic group to the shard of its address) and ticks them, then the
// stage of the whole.
type harness struct {
	m      *model.Model
	shards []*Shard
	whole  *Whole
	rec    *recorder
	now    int64
	seed   maphash.Seed
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
	h := &harness{m: m, rec: &recorder{}, now: t0, seed: maphash.MakeSeed()}
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

func (h *harness) shardOf(a netip.Addr) int {
	return int(maphash.Comparable(h.seed, a.Unmap()) % uint64(len(h.shards)))
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
	var f float64
	for _, c := range s {
		f = f*10 + float64(c-'0')
	}
	return f
}

func TestAttempt(t *testing.T) {
	cases := []struct {
		name         string
		proto, flags uint8
		sport, dport uint16
		icmpType     uint8
		want         bool
	}{
		{"syn", 6, flow.TCPSyn, 40000, 80, 0, true},
		{"nmap syn+rst", 6, flow.TCPSyn | flow.TCPRst, 40000, 80, 0, true},
		{"null scan or no flags", 6, 0, 40000, 80, 0, true},
		{"fin scan", 6, flow.TCPFin, 40000, 80, 0, true},
		{"xmas", 6, flow.TCPFin | flow.TCPPsh | flow.TCPUrg, 40000, 80, 0, true},
		{"whole client connection", 6, flow.TCPSyn | flow.TCPAck | flow.TCPPsh | flow.TCPFin, 40000, 443, 0, true},
		{"server side of a connection", 6, flow.TCPSyn | flow.TCPAck | flow.TCPPsh | flow.TCPFin, 443, 40000, 0, false},
		{"syn-ack backscatter", 6, flow.TCPSyn | flow.TCPAck, 80, 3456, 0, false},
		{"rst backscatter", 6, flow.TCPRst, 80, 3456, 0, false},
		{"rst-ack", 6, flow.TCPRst | flow.TCPAck, 3456, 80, 0, false},
		{"bare ack", 6, flow.TCPAck, 3456, 80, 0, false},
		{"udp probe", 17, 0, 51436, 161, 0, true},
		{"udp probe high ports", 17, 0, 60806, 40125, 0, true},
		{"dns reply", 17, 0, 53, 3456, 0, false},
		{"ntp reply", 17, 0, 123, 123, 0, false},
		{"memcached reflector", 17, 0, 11211, 50000, 0, false},
		{"quic server reply", 17, 0, 443, 50000, 0, false},
		{"stun server reply", 17, 0, 3478, 50000, 0, false},
		{"echo request", 1, 0, 0, 0, 8, true},
		{"echo reply", 1, 0, 0, 0, 0, false},
		{"unreachable", 1, 0, 0, 0, 3, false},
		{"icmpv6 echo request", 58, 0, 0, 0, 128, true},
		{"gre", 47, 0, 0, 0, 0, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := flow.Record{Proto: tc.proto, TCPFlags: tc.flags, SrcPort: tc.sport, DstPort: tc.dport, ICMPType: tc.icmpType}
			if got := attempt(&r); got != tc.want {
				t.Errorf("attempt = %v, want %v", got, tc.want)
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
				if s == 0 && len(h.rec.got) != 0 {
					t.Fatalf("alert after one second at 30/s over the window: %+v", h.rec.got)
				}
			}
			if len(h.rec.got) != 2 {
				t.Fatalf("%d observations, want 2 (seconds 2 and 3)", len(h.rec.got))
			}
			c := h.rec.got[1]
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
				{Name: "PORTS", List: []string{"22"}, IsList: true},
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
			for _, c := range h.rec.got {
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

// TestForget shows that idle scanners are forgotten and their memory
// reused.
func TestForget(t *testing.T) {
	h := newHarness(t, 2, pol("threshold=50"))
	h.second(syn("10.0.0.7", "198.51.100.1", 80), syn("203.0.113.1", "10.0.0.8", 22))
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
