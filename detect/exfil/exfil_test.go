package exfil

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/flowsentry/flowsentry/detect"
	"github.com/flowsentry/flowsentry/detect/detecttest"
	"github.com/flowsentry/flowsentry/flow"
	"github.com/flowsentry/flowsentry/model"
	"github.com/flowsentry/flowsentry/policy"
)

var t0 = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC).UnixNano()

func pfx(s ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range s {
		out = append(out, netip.MustParsePrefix(p))
	}
	return out
}

// testModel: partition 0 with INT 10/8, 172.16/12, 192.168/16 and
// fd00::/8; groups 1 "internal" (10/8, fd00::/8), 2 "dmz" (172.16/12) and
// 3 "lab" (192.0.2.0/24, not INT); partition 0 allows 198.51.100.98.
func testModel() *model.Model {
	return model.New(
		[]model.Partition{{CID: 0, Name: "default", Internal: pfx("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fd00::/8"),
			Allow: pfx("198.51.100.98/32")}},
		[]model.TrafficGroup{
			{ID: 1, Name: "internal", CID: 0, CIDRs: pfx("10.0.0.0/8", "fd00::/8")},
			{ID: 2, Name: "dmz", CID: 0, CIDRs: pfx("172.16.0.0/12")},
			{ID: 3, Name: "lab", CID: 0, CIDRs: pfx("192.0.2.0/24")},
		}, nil)
}

type harness struct {
	m     *model.Model
	s     *Shard
	rec   *detecttest.Recorder
	now   int64
	class model.Class
	// batch makes add hand its records over in one AddBatch, as the
	// pipeline does, instead of one AddClass each.
	batch bool
}

func newHarness(t testing.TB, threshold uint64) *harness {
	t.Helper()
	p := policy.Policy{ID: 1, Name: "exfil", Family: Family, Target: policy.TargetGroups, Object: policy.ObjectGroup,
		Severity: 8, Allow: pfx("198.51.100.99/32"), Params: &Params{Threshold: threshold, SessionIdle: DefaultSessionIdle}}
	h := &harness{m: testModel(), rec: &detecttest.Recorder{}, now: t0}
	h.s = New(detect.Deps{Family: Family, Policies: detecttest.NewManager(t, p).Set, Observer: h.rec})
	h.s.SetModel(h.m)
	h.s.Tick(h.now)
	return h
}

func (h *harness) add(recs ...flow.Record) {
	classes := make([]model.Class, len(recs))
	for i := range recs {
		r := &recs[i]
		r.Start, r.End = h.now-int64(time.Second), h.now
		h.m.Classify(r, &classes[i])
		if !h.batch {
			h.s.AddClass(r, &classes[i])
		}
	}
	if h.batch {
		h.s.AddBatch(recs, classes)
	}
}

func (h *harness) tick(d time.Duration) {
	h.now += int64(d)
	h.s.Tick(h.now)
}

func rec(src string, sport uint16, dst string, dport uint16, bytes uint64) flow.Record {
	return flow.Record{Src: netip.MustParseAddr(src), Dst: netip.MustParseAddr(dst), SrcPort: sport, DstPort: dport,
		Proto: flow.ProtoTCP, TCPFlags: flow.TCPAck | flow.TCPPsh, Packets: bytes/1400 + 1, Bytes: bytes, SamplingRate: 1}
}

// flagged returns r with TCP flags f, continuing an earlier report when
// continued.
func flagged(r flow.Record, f uint8, continued bool) flow.Record {
	r.TCPFlags, r.Continued = f, continued
	return r
}

// udp returns r as UDP.
func udp(r flow.Record) flow.Record {
	r.Proto = flow.ProtoUDP
	return r
}

// step waits, ticking every second, then adds records.
type step struct {
	wait time.Duration
	recs []flow.Record
}

func TestAlerts(t *testing.T) {
	const mb = 1_000_000
	up := func(n int, bytes uint64) []step { // n records of bytes, a second apart
		var s []step
		for range n {
			s = append(s, step{time.Second, []flow.Record{rec("10.0.0.5", 40000, "203.0.113.9", 443, bytes)}})
		}
		return s
	}
	tests := []struct {
		name  string
		steps []step
		want  map[string]map[string]string
	}{
		{
			name:  "upload over three records of a session",
			steps: up(3, 600_000),
			want: map[string]map[string]string{"10.0.0.5/203.0.113.9": {
				"SENDER_IP": "10.0.0.5", "SENDER_TG": "1", "SENDER_TG_NAME": "internal", "SENDER_PORT": "40000",
				"RECEIVER_IP": "203.0.113.9", "RECEIVER_TG": "0", "RECEIVER_PORT": "443", "PROTO": "6",
				"BYTES_EXFILTRATED": "1800000", "THRESHOLD_VALUE": "1000000", "TOTAL_PORTS": "0", "ADDITIONAL_PORTS": "",
			}},
		},
		{
			name: "download from outside",
			steps: []step{{time.Second, []flow.Record{rec("203.0.113.9", 443, "10.0.0.5", 40000, 50*mb), rec("10.0.0.5", 40000, "203.0.113.9", 443, 500_000)}},
				{time.Second, []flow.Record{rec("203.0.113.9", 443, "10.0.0.5", 40000, 50*mb), rec("10.0.0.5", 40000, "203.0.113.9", 443, 400_000)}}},
		},
		{name: "copy to another group inside the INT blocks", steps: []step{{time.Second, []flow.Record{rec("10.0.0.5", 40000, "172.16.0.9", 445, 50*mb)}}}},
		{name: "copy within the group", steps: []step{{time.Second, []flow.Record{rec("10.0.0.5", 40000, "10.1.0.9", 445, 50*mb)}}}},
		{name: "copy to an INT block outside any group", steps: []step{{time.Second, []flow.Record{rec("10.0.0.5", 40000, "192.168.1.1", 22, 50*mb)}}}},
		{
			name:  "copy to another group outside the INT blocks",
			steps: []step{{time.Second, []flow.Record{rec("10.0.0.5", 40000, "192.0.2.10", 22, 2*mb)}}},
			want: map[string]map[string]string{"10.0.0.5/192.0.2.10": {
				"RECEIVER_TG": "3", "RECEIVER_TG_NAME": "lab", "BYTES_EXFILTRATED": "2000000", "RECEIVER_PORT": "22"}},
		},
		{name: "exactly the threshold", steps: up(2, 500_000)},
		{
			name:  "internal server answers an outside client",
			steps: []step{{time.Second, []flow.Record{rec("203.0.113.9", 51000, "10.0.0.5", 443, 2000), rec("10.0.0.5", 443, "203.0.113.9", 51000, 2*mb)}}},
			want: map[string]map[string]string{"10.0.0.5/203.0.113.9": {
				"SENDER_PORT": "443", "RECEIVER_PORT": "51000", "BYTES_EXFILTRATED": "2000000"}},
		},
		{
			name: "records further apart than session_idle are two sessions",
			steps: []step{{time.Second, []flow.Record{rec("10.0.0.5", 40000, "203.0.113.9", 443, 600_000)}},
				{301 * time.Second, []flow.Record{rec("10.0.0.5", 40000, "203.0.113.9", 443, 600_000)}}},
		},
		{
			name: "records within session_idle are stitched",
			steps: []step{{time.Second, []flow.Record{rec("10.0.0.5", 40000, "203.0.113.9", 443, 600_000)}},
				{299 * time.Second, []flow.Record{rec("10.0.0.5", 40000, "203.0.113.9", 443, 600_000)}}},
			want: map[string]map[string]string{"10.0.0.5/203.0.113.9": {"BYTES_EXFILTRATED": "1200000"}},
		},
		{
			name: "sessions that crossed accumulate, the others do not",
			steps: []step{
				{time.Second, []flow.Record{rec("10.0.0.5", 40000, "203.0.113.9", 443, 1_500_000)}},
				{time.Second, []flow.Record{rec("10.0.0.5", 40001, "203.0.113.9", 22, 1_200_000), rec("10.0.0.5", 40002, "203.0.113.9", 8443, 900_000)}},
				{time.Second, []flow.Record{rec("10.0.0.5", 40003, "203.0.113.9", 443, 1_100_000), rec("10.0.0.5", 40001, "203.0.113.9", 22, 100)}},
			},
			want: map[string]map[string]string{"10.0.0.5/203.0.113.9": {
				"SENDER_PORT": "40000", "RECEIVER_PORT": "443", "BYTES_EXFILTRATED": "3800100", "TOTAL_PORTS": "1", "ADDITIONAL_PORTS": "22"}},
		},
		{
			name:  "a whole connection in one record over the threshold",
			steps: []step{{time.Second, []flow.Record{flagged(rec("10.0.0.5", 40000, "203.0.113.9", 443, 2*mb), flow.TCPSyn|flow.TCPAck|flow.TCPFin, false)}}},
			want:  map[string]map[string]string{"10.0.0.5/203.0.113.9": {"BYTES_EXFILTRATED": "2000000", "SENDER_PORT": "40000"}},
		},
		{
			name:  "a connection reset in one record over the threshold",
			steps: []step{{time.Second, []flow.Record{flagged(rec("10.0.0.5", 40000, "203.0.113.9", 443, 2*mb), flow.TCPSyn|flow.TCPAck|flow.TCPRst, false)}}},
			want:  map[string]map[string]string{"10.0.0.5/203.0.113.9": {"BYTES_EXFILTRATED": "2000000"}},
		},
		{
			name: "whole connections under the threshold do not add up",
			steps: []step{{time.Second, []flow.Record{flagged(rec("10.0.0.5", 40000, "203.0.113.9", 443, 600_000), flow.TCPSyn|flow.TCPAck|flow.TCPFin, false)}},
				{time.Second, []flow.Record{flagged(rec("10.0.0.5", 40000, "203.0.113.9", 443, 600_000), flow.TCPSyn|flow.TCPAck|flow.TCPFin, false)}}},
		},
		{
			name: "a meter's interim reports carry the flow's flags and still add up",
			steps: []step{{time.Second, []flow.Record{flagged(rec("10.0.0.5", 40000, "203.0.113.9", 443, 600_000), flow.TCPSyn|flow.TCPAck, false)}},
				{time.Second, []flow.Record{flagged(rec("10.0.0.5", 40000, "203.0.113.9", 443, 600_000), flow.TCPSyn|flow.TCPAck|flow.TCPFin, true)}}},
			want: map[string]map[string]string{"10.0.0.5/203.0.113.9": {"BYTES_EXFILTRATED": "1200000"}},
		},
		{
			name: "the last record of a connection adds to its session",
			steps: []step{{time.Second, []flow.Record{flagged(rec("10.0.0.5", 40000, "203.0.113.9", 443, 600_000), flow.TCPSyn|flow.TCPAck|flow.TCPPsh, false)}},
				{time.Second, []flow.Record{flagged(rec("10.0.0.5", 40000, "203.0.113.9", 443, 600_000), flow.TCPAck|flow.TCPFin, false)}}},
			want: map[string]map[string]string{"10.0.0.5/203.0.113.9": {"BYTES_EXFILTRATED": "1200000"}},
		},
		{
			name: "UDP with the bits of SYN and FIN is no whole connection",
			steps: []step{{time.Second, []flow.Record{udp(flagged(rec("10.0.0.5", 40000, "203.0.113.9", 443, 600_000), flow.TCPSyn|flow.TCPFin, false))}},
				{time.Second, []flow.Record{udp(flagged(rec("10.0.0.5", 40000, "203.0.113.9", 443, 600_000), flow.TCPSyn|flow.TCPFin, false))}}},
			want: map[string]map[string]string{"10.0.0.5/203.0.113.9": {"BYTES_EXFILTRATED": "1200000", "PROTO": "17"}},
		},
		{name: "allow-listed by the policy", steps: []step{{time.Second, []flow.Record{rec("10.0.0.5", 40000, "198.51.100.99", 443, 50*mb)}}}},
		{name: "allow-listed by the partition", steps: []step{{time.Second, []flow.Record{rec("10.0.0.5", 40000, "198.51.100.98", 443, 50*mb)}}}},
		{name: "between two outside hosts", steps: []step{{time.Second, []flow.Record{rec("203.0.113.5", 40000, "203.0.113.9", 443, 50*mb)}}}},
		{
			name:  "IPv6",
			steps: []step{{time.Second, []flow.Record{rec("fd00::5", 40000, "2001:db8::9", 443, 3*mb)}}},
			want: map[string]map[string]string{"fd00::5/2001:db8::9": {
				"SENDER_IP": "fd00::5", "RECEIVER_IP": "2001:db8::9", "BYTES_EXFILTRATED": "3000000"}},
		},
	}
	for _, tt := range tests {
		for _, batch := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/batch=%v", tt.name, batch), func(t *testing.T) {
				h := newHarness(t, mb)
				h.batch = batch
				for _, s := range tt.steps {
					for range int(s.wait / time.Second) {
						h.tick(time.Second)
					}
					h.add(s.recs...)
				}
				h.tick(time.Second)
				got := map[string]map[string]string{}
				for k, c := range h.rec.Last() {
					if c.Type != AlertType || c.Policy != 1 || c.Severity != 8 {
						t.Errorf("%s: condition %+v", k, c)
					}
					all := detecttest.Fields(c)
					if all["RECEIVER_TG"] == "0" && all["RECEIVER_TG_NAME"] != "" {
						t.Errorf("%s: RECEIVER_TG_NAME %q with RECEIVER_TG 0", k, all["RECEIVER_TG_NAME"])
					}
					f := map[string]string{}
					for name := range tt.want[k] {
						if v, ok := all[name]; ok {
							f[name] = v
						}
					}
					got[k] = f
				}
				if tt.want == nil {
					tt.want = map[string]map[string]string{}
				}
				if diff := cmp.Diff(got, tt.want); diff != "" {
					t.Errorf("(-got, +want)\n%s", diff)
				}
			})
		}
	}
}

// TestGrowing: the alert is observed at every tick that added bytes, with
// the growing count, and Poll reports it as soon as it crosses.
func TestGrowing(t *testing.T) {
	h := newHarness(t, 1_000_000)
	var counts []string
	for i := range 5 {
		h.now += int64(100 * time.Millisecond)
		h.add(rec("10.0.0.5", 40000, "203.0.113.9", 443, 400_000))
		h.s.Poll(h.now)
		if i == 2 && (len(h.rec.Got) != 1 || h.rec.Commits != 1) {
			t.Fatalf("Poll after crossing: %d conditions, %d commits; want 1, 1", len(h.rec.Got), h.rec.Commits)
		}
		h.tick(900 * time.Millisecond)
		if n := len(h.rec.Got); n > 0 {
			counts = append(counts, detecttest.Field(h.rec.Got[n-1].Condition, "BYTES_EXFILTRATED"))
		}
	}
	for range 30 {
		h.tick(time.Second)
	}
	want := []string{"1200000", "1600000", "2000000"}
	if diff := cmp.Diff(counts, want); diff != "" {
		t.Errorf("(-got, +want)\n%s", diff)
	}
	if n := len(h.rec.Got); n != 4 { // Poll, then three ticks
		t.Errorf("observed %d times, want 4", n)
	}
	h.tick(AlertIdle)
	h.tick(30 * time.Second)
	if len(h.s.alerts) != 0 || h.s.Sessions() != 0 {
		t.Errorf("%d alerts, %d sessions left; want none", len(h.s.alerts), h.s.Sessions())
	}
}

// TestSessionMemory measures the memory taken by a million concurrent
// sessions of one shard, IPv4 and IPv6: heap, and the session table where
// it is mapped outside the heap. Every session is kept.
func TestSessionMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates a million sessions")
	}
	for _, v6 := range []bool{false, true} {
		name := "IPv4"
		if v6 {
			name = "IPv6"
		}
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, 1<<40)
			c := model.Class{Src: model.Side{Groups: []uint16{0}}, Own: model.OwnAll}
			r := rec("10.0.0.5", 40000, "203.0.113.9", 443, 1000)
			if v6 {
				r = rec("fd00::5", 40000, "2001:db8::9", 443, 1000)
			}
			const n = 1_000_000
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			for i := range n {
				a := r.Dst.As16()
				a[13], a[14], a[15] = byte(i>>16), byte(i>>8), byte(i)
				d := netip.AddrFrom16(a)
				if !v6 {
					d = d.Unmap()
				}
				r.Dst, r.SrcPort = d, uint16(i)
				h.s.AddClass(&r, &c)
			}
			runtime.GC()
			runtime.ReadMemStats(&after)
			if got := h.s.Sessions(); got != n {
				t.Fatalf("%d sessions, want %d", got, n)
			}
			if d := h.s.Dropped(); d != 0 {
				t.Errorf("%d sessions dropped, want none", d)
			}
			heap := int64(after.HeapAlloc) - int64(before.HeapAlloc)
			per := float64(heap+int64(h.s.sessions.offHeap())) / n
			t.Logf("%s: %.1f bytes per session (%d of heap, %d off the heap)", name, per, heap, h.s.sessions.offHeap())
			if limit := 100.0; per > limit {
				t.Errorf("%.1f bytes per session, want at most %.0f", per, limit)
			}
			runtime.KeepAlive(h)
		})
	}
}

func TestParams(t *testing.T) {
	tests := []struct {
		name string
		p    Params
		keys []string
	}{
		{"valid", Params{Threshold: 1, SessionIdle: 300}, nil},
		{"no threshold", Params{SessionIdle: 300}, []string{"threshold"}},
		{"no idle", Params{Threshold: 5}, []string{"session_idle"}},
		{"idle too long", Params{Threshold: 5, SessionIdle: maxSessionIdle + 1}, []string{"session_idle"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.p.Validate(&policy.Policy{})
			for _, k := range tt.keys {
				if err == nil || !strings.Contains(err.Error(), k) {
					t.Errorf("error %v, want one at %s", err, k)
				}
			}
			if tt.keys == nil && err != nil {
				t.Errorf("error %v, want none", err)
			}
		})
	}
}

// BenchmarkExfil adds records of known sessions (IPv4 and IPv6, one over
// its threshold and growing its alert) and of a download, classified
// beforehand, as the shard does in steady state.
//
//	go test ./detect/exfil -run '^$' -bench Exfil -benchmem -count=6 -cpu 1,2 | tee new.txt; benchstat new.txt
func BenchmarkExfil(b *testing.B) {
	h := newHarness(b, 1_000_000)
	recs := []flow.Record{
		rec("10.0.0.5", 40000, "203.0.113.9", 443, 1500),
		rec("10.0.0.6", 40000, "203.0.113.9", 443, 2_000_000),
		rec("fd00::5", 40000, "2001:db8::9", 443, 1500),
		rec("203.0.113.9", 443, "10.0.0.5", 40000, 1500),
	}
	classes := make([]model.Class, len(recs))
	for i := range recs {
		h.m.Classify(&recs[i], &classes[i])
		h.s.AddClass(&recs[i], &classes[i])
	}
	h.tick(time.Second)
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		for i := range recs {
			h.s.AddClass(&recs[i], &classes[i])
		}
		n += len(recs)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/record")
}

// BenchmarkExfilNewSessions adds records as bench/peers.sh sends them
// (cmd/flowgen): 100 hosts of 10.0.0.0/16 send to 1000 addresses of
// 198.18.0.0/15 from random ports, so nearly every record is a new
// session, to a shard already holding a million sessions; the table fills
// and then replaces its sessions with the fewest bytes.
func BenchmarkExfilNewSessions(b *testing.B) {
	h := newHarness(b, 100_000_000_000)
	r := rec("10.0.0.1", 40000, "198.18.0.1", 443, 1500)
	var c model.Class
	h.m.Classify(&r, &c)
	rng := rand.New(rand.NewPCG(1, 2))
	// A pipeline's batch: flow.BatchSize records and their classes.
	rs, cs := make([]flow.Record, flow.BatchSize), make([]model.Class, flow.BatchSize)
	next := func() {
		for k := range rs {
			i, j := rng.Uint32N(100), rng.Uint32N(1000)
			r.Src = netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)})
			r.Dst = netip.AddrFrom4([4]byte{198, 18 + byte(j>>16), byte(j >> 8), byte(j)})
			r.SrcPort, r.DstPort = uint16(1024+rng.Uint32N(64512)), uint16(rng.Uint32N(1024))
			r.Bytes = uint64(64 + rng.Uint32N(1400))
			rs[k], cs[k] = r, c
		}
	}
	for range 1_000_000 / flow.BatchSize {
		next()
		h.s.AddBatch(rs, cs)
	}
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		next()
		h.s.AddBatch(rs, cs)
		n += len(rs)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/record")
	b.ReportMetric(float64(h.s.Sessions()), "sessions")
}

// BenchmarkRecordGen is the cost of BenchmarkExfilNewSessions's record
// generation alone, to subtract from its ns/record.
func BenchmarkRecordGen(b *testing.B) {
	r := rec("10.0.0.1", 40000, "198.18.0.1", 443, 1500)
	rng := rand.New(rand.NewPCG(1, 2))
	for b.Loop() {
		i, j := rng.Uint32N(100), rng.Uint32N(1000)
		r.Src = netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)})
		r.Dst = netip.AddrFrom4([4]byte{198, 18 + byte(j>>16), byte(j >> 8), byte(j)})
		r.SrcPort, r.DstPort = uint16(1024+rng.Uint32N(64512)), uint16(rng.Uint32N(1024))
		r.Bytes = uint64(64 + rng.Uint32N(1400))
	}
	sink = r
}

var sink flow.Record

// TestWholeConnectionsTakeNoSlot: a whole TCP connection in one record
// is judged alone and leaves no session behind; a connection still open
// does.
func TestWholeConnectionsTakeNoSlot(t *testing.T) {
	for _, batch := range []bool{false, true} {
		h := newHarness(t, 1_000_000)
		h.batch = batch
		var recs []flow.Record
		for i := range 100 {
			recs = append(recs, flagged(rec("10.0.0.5", uint16(40000+i), "203.0.113.9", 443, 5000), flow.TCPSyn|flow.TCPAck|flow.TCPFin, false))
		}
		h.add(recs...)
		if n := h.s.Sessions(); n != 0 {
			t.Errorf("batch=%v: %d sessions after 100 whole connections, want 0", batch, n)
		}
		h.add(rec("10.0.0.5", 50000, "203.0.113.9", 443, 5000))
		if n := h.s.Sessions(); n != 1 {
			t.Errorf("batch=%v: %d sessions after a connection under way, want 1", batch, n)
		}
	}
}
