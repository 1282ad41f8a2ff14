package slow

import (
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/flowsentry/flowsentry/alert"
	"github.com/flowsentry/flowsentry/detect"
	"github.com/flowsentry/flowsentry/detect/detecttest"
	"github.com/flowsentry/flowsentry/flow"
	"github.com/flowsentry/flowsentry/model"
	"github.com/flowsentry/flowsentry/policy"
)

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC).UnixNano()

func testModel() *model.Model {
	return model.New(
		[]model.Partition{{CID: 0, Name: "default", Internal: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fc00::/7")}}},
		[]model.TrafficGroup{
			{ID: 1, Name: "servers", CID: 0, CIDRs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/16"), netip.MustParsePrefix("fd00::/64")}},
			{ID: 2, Name: "apps", CID: 0, CIDRs: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}},
		}, nil)
}

func slowPolicy(change func(p *policy.Policy)) policy.Policy {
	p := policy.Policy{ID: 7, Name: "slow", Family: Family, Target: policy.TargetGroups, Object: policy.ObjectGroup,
		Severity: 4, Actions: []policy.Attachment{}, Params: NewParams()}
	if change != nil {
		change(&p)
	}
	return p
}

// harness drives a Detector as one shard that owns everything.
type harness struct {
	t     *testing.T
	m     *model.Model
	det   *Detector
	rec   *detecttest.Recorder
	now   int64
	class model.Class
}

func newHarness(t *testing.T, policies ...policy.Policy) *harness {
	t.Helper()
	h := &harness{t: t, m: testModel(), rec: &detecttest.Recorder{}, now: t0}
	h.det = New(detect.Deps{Family: Family, Policies: detecttest.NewManager(t, policies...).Set, Observer: h.rec})
	h.det.SetModel(h.m)
	return h
}

func (h *harness) add(r flow.Record) {
	h.m.Classify(&r, &h.class)
	h.det.AddClass(&r, &h.class)
}

// session is one TCP connection of a simulation: the client sends a
// packet of size bytes every interval from start to stop, the server
// answers each with reply bytes (0: replies unseen), and closes at stop
// when fin is set.
type session struct {
	client, server netip.Addr
	cport, sport   uint16
	start, stop    time.Duration
	interval       time.Duration
	size, reply    uint64
	fin            bool
}

// run simulates sessions second by second for d, ticking each second,
// with records as a prompt exporter (the replay meter) emits them: one
// per second in which a packet was sent.
func (h *harness) run(d time.Duration, sessions []session) {
	for el := time.Duration(0); el < d; el += time.Second {
		now := t0 + int64(el)
		for _, s := range sessions {
			closes := el == s.stop && s.fin
			if el < s.start || el > s.stop || ((el-s.start)%s.interval != 0 && !closes) {
				continue
			}
			flags := flow.TCPAck | flow.TCPPsh
			if el == s.start {
				flags |= flow.TCPSyn
			}
			if closes {
				flags |= flow.TCPFin
			}
			h.add(flow.Record{Start: now, End: now + int64(100*time.Millisecond), Src: s.client, Dst: s.server,
				SrcPort: s.cport, DstPort: s.sport, Proto: flow.ProtoTCP, TCPFlags: flags, Packets: 1, Bytes: s.size,
				Continued: el != s.start})
			if s.reply > 0 {
				h.add(flow.Record{Start: now, End: now + int64(150*time.Millisecond), Src: s.server, Dst: s.client,
					SrcPort: s.sport, DstPort: s.cport, Proto: flow.ProtoTCP, TCPFlags: flags, Packets: 1, Bytes: s.reply,
					Continued: el != s.start})
			}
		}
		h.now = now + int64(time.Second)
		h.det.Tick(h.now)
	}
}

// clients returns n sessions from each of the clients to server:port,
// opened one per 100 ms from start, sending size bytes every interval.
func clients(server string, port uint16, n int, size, reply uint64, interval time.Duration, addrs ...string) []session {
	var out []session
	for _, a := range addrs {
		for i := range n {
			out = append(out, session{client: netip.MustParseAddr(a), server: netip.MustParseAddr(server),
				cport: uint16(30000 + i), sport: port, start: time.Duration(i%10) * time.Second, stop: time.Hour,
				interval: interval, size: size, reply: reply})
		}
	}
	return out
}

func TestSlow(t *testing.T) {
	attackers := []string{"198.51.100.7", "203.0.113.9", "192.0.2.33"}
	cases := []struct {
		name     string
		policy   func(p *policy.Policy)
		sessions []session
		dur      time.Duration
		// want are the fields of the one condition expected at the end;
		// nil expects none.
		want map[string]string
	}{
		{
			name: "slowloris from three hosts", dur: 3 * time.Minute,
			sessions: clients("10.0.0.5", 80, 50, 72, 52, 10*time.Second, attackers...),
			want: map[string]string{"TARGET_IP": "10.0.0.5", "TARGET_MASK": "16", "TARGET_TG": "1", "TARGET_TG_NAME": "servers",
				"PROTO": "6", "PORT": "80", "TOTAL_SOURCES": "3", "THRESHOLD_VALUE": "100.00",
				"SOURCES": "192.0.2.0/24 198.51.100.0/24 203.0.113.0/24"},
		},
		{
			name: "rudy slow post, one byte a packet", dur: 3 * time.Minute,
			sessions: clients("10.0.0.5", 8080, 120, 53, 52, 5*time.Second, "198.51.100.7"),
			want:     map[string]string{"TARGET_IP": "10.0.0.5", "PORT": "8080", "TOTAL_SOURCES": "1", "SOURCES": "198.51.100.0/24"},
		},
		{
			name: "slowloris over IPv6", dur: 3 * time.Minute,
			sessions: clients("fd00::80", 443, 150, 92, 72, 10*time.Second, "2001:db8:1::5"),
			want:     map[string]string{"TARGET_IP": "fd00::80", "TARGET_MASK": "64", "PORT": "443", "SOURCES": "2001:db8:1::/64"},
		},
		{
			name: "just below the threshold", dur: 3 * time.Minute,
			sessions: clients("10.0.0.5", 80, 50, 72, 52, 10*time.Second, attackers[:2]...),
		},
		{
			name: "too early: connections younger than min_duration", dur: 50 * time.Second,
			sessions: clients("10.0.0.5", 80, 50, 72, 52, 10*time.Second, attackers...),
		},
		{
			name: "allow-listed attacker", dur: 3 * time.Minute,
			policy: func(p *policy.Policy) {
				p.Allow = []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24"), netip.MustParsePrefix("203.0.113.0/24")}
			},
			sessions: clients("10.0.0.5", 80, 50, 72, 52, 10*time.Second, attackers...),
		},
		{
			name: "port of another policy", dur: 3 * time.Minute,
			policy:   func(p *policy.Policy) { Of(p).Port = 443 },
			sessions: clients("10.0.0.5", 80, 50, 72, 52, 10*time.Second, attackers...),
		},
		{
			name: "websockets: 300 clients, one connection each, pings", dur: 3 * time.Minute,
			sessions: websockets(300),
		},
		{
			name: "websockets counted with min_per_client 1 (the guard's control)", dur: 3 * time.Minute,
			policy:   func(p *policy.Policy) { Of(p).MinPerClient = 1 },
			sessions: websockets(300),
			want:     map[string]string{"TARGET_IP": "10.0.0.5", "PORT": "443", "TOTAL_SOURCES": "2"},
		},
		{
			name: "keep-alive browsers behind one NAT: answered", dur: 3 * time.Minute,
			sessions: clients("10.0.0.5", 80, 150, 600, 8000, 10*time.Second, "198.51.100.7"),
		},
		{
			name: "keep-alive browsers counted with max_reply_ratio 20 (the guard's control)", dur: 3 * time.Minute,
			policy:   func(p *policy.Policy) { Of(p).MaxReplyRatio = 20 },
			sessions: clients("10.0.0.5", 80, 150, 600, 8000, 10*time.Second, "198.51.100.7"),
			want:     map[string]string{"TARGET_IP": "10.0.0.5", "PORT": "80"},
		},
		{
			name: "fast uploads from one host", dur: 3 * time.Minute,
			sessions: clients("10.0.0.5", 80, 150, 1500, 52, time.Second, "198.51.100.7"),
		},
		{
			name: "database pool from internal app servers", dur: 3 * time.Minute,
			policy:   func(p *policy.Policy) { Of(p).Threshold = 30 },
			sessions: clients("10.0.0.9", 5432, 20, 60, 40, 10*time.Second, "10.1.0.4", "10.1.0.5"),
		},
		{
			name: "database pool counted with internal_sources", dur: 3 * time.Minute,
			policy:   func(p *policy.Policy) { Of(p).Threshold = 30; Of(p).InternalSources = true },
			sessions: clients("10.0.0.9", 5432, 20, 60, 40, 10*time.Second, "10.1.0.4", "10.1.0.5"),
			want:     map[string]string{"TARGET_IP": "10.0.0.9", "PORT": "5432", "THRESHOLD_VALUE": "30.00", "SOURCES": "10.1.0.0/24"},
		},
		{
			name: "interactive ssh", dur: 3 * time.Minute,
			sessions: []session{{client: netip.MustParseAddr("198.51.100.7"), server: netip.MustParseAddr("10.0.0.22"),
				cport: 51000, sport: 22, stop: time.Hour, interval: time.Second, size: 92, reply: 140}},
		},
		{
			name: "busy web server, short connections", dur: 2 * time.Minute,
			sessions: shortConns(2000),
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, slowPolicy(tc.policy))
			h.run(tc.dur, tc.sessions)
			var last []alert.Condition
			for _, o := range h.rec.Got {
				if o.Time.UnixNano() == h.now {
					last = append(last, o.Condition)
				}
			}
			if tc.want == nil {
				if len(h.rec.Got) > 0 {
					t.Fatalf("observed %d conditions, first %+v", len(h.rec.Got), h.rec.Got[0].Condition)
				}
				return
			}
			if len(last) != 1 {
				t.Fatalf("observed %d conditions at the last tick, want 1", len(last))
			}
			c := last[0]
			if c.Type != AlertType || c.Policy != 7 || c.Severity != 4 || c.CIDName != "default" || c.Key != "ddos_slow/"+tc.want["TARGET_IP"] {
				t.Errorf("condition %+v", c)
			}
			for k, v := range tc.want {
				if got := detecttest.Field(c, k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			if c.Values.PacketsIn <= 0 || c.Values.BytesIn <= 0 {
				t.Errorf("values %+v", c.Values)
			}
		})
	}
}

func websockets(n int) []session {
	var out []session
	for i := range n {
		out = append(out, session{client: netip.AddrFrom4([4]byte{198, 18, byte(i / 200), byte(i % 200)}),
			server: netip.MustParseAddr("10.0.0.5"), cport: 40000, sport: 443, start: time.Duration(i%30) * time.Second,
			stop: time.Hour, interval: 30 * time.Second, size: 58, reply: 56})
	}
	return out
}

// shortConns are n connections of 2 s from 20 clients, one after the other.
func shortConns(n int) []session {
	var out []session
	for i := range n {
		st := time.Duration(i%110) * time.Second
		out = append(out, session{client: netip.AddrFrom4([4]byte{198, 51, 100, byte(i % 20)}), server: netip.MustParseAddr("10.0.0.5"),
			cport: uint16(32768 + i), sport: 80, start: st, stop: st + 2*time.Second, interval: time.Second, size: 400, reply: 9000, fin: true})
	}
	return out
}

// TestLifecycle follows an attack from its start to the end of its
// connections: the condition holds at every tick while the index is over
// the threshold, ends when the connections close or go quiet, and the
// state empties.
func TestLifecycle(t *testing.T) {
	for _, stop := range []struct {
		name string
		fin  bool
	}{{"closed", true}, {"gone quiet", false}} {
		t.Run(stop.name, func(t *testing.T) {
			h := newHarness(t, slowPolicy(nil))
			s := clients("10.0.0.5", 80, 150, 72, 52, 10*time.Second, "198.51.100.7")
			for i := range s {
				s[i].stop, s[i].fin = 150*time.Second, stop.fin
			}
			h.run(6*time.Minute, s)
			var first, last time.Time
			ticks := 0
			for _, o := range h.rec.Got {
				if first.IsZero() {
					first = o.Time
				}
				last = o.Time
				ticks++
			}
			if ticks == 0 {
				t.Fatal("never observed")
			}
			// Fires once the connections are min_duration old (60 s
			// plus the 9 s of staggered starts), within a scan interval.
			if got := first.Sub(time.Unix(0, t0)); got < 69*time.Second || got > 69*time.Second+ScanInterval+time.Second {
				t.Errorf("first observed after %v", got)
			}
			if ticks != int(last.Sub(first)/time.Second)+1 {
				t.Errorf("%d observations between %v and %v: not one per tick", ticks, first, last)
			}
			end := last.Sub(time.Unix(0, t0))
			if stop.fin && end > 150*time.Second+ScanInterval+time.Second {
				t.Errorf("closed connections still observed at %v", end)
			}
			if !stop.fin && (end < 150*time.Second+ConnTimeout-ScanInterval || end > 150*time.Second+ConnTimeout+ScanInterval+time.Second) {
				t.Errorf("quiet connections observed until %v", end)
			}
			if st := h.det.Stats(); st.Conns != 0 || st.Servers != 0 || st.Dropped != 0 {
				t.Errorf("stats at the end %+v", st)
			}
		})
	}
}

// TestOneAlertPerAddress: two ports of one server attacked give one
// condition, for the port with the higher index.
func TestOneAlertPerAddress(t *testing.T) {
	h := newHarness(t, slowPolicy(nil))
	s := append(clients("10.0.0.5", 80, 120, 72, 52, 10*time.Second, "198.51.100.7"),
		clients("10.0.0.5", 443, 180, 72, 52, 10*time.Second, "198.51.100.8")...)
	h.run(2*time.Minute, s)
	n := 0
	for _, o := range h.rec.Got {
		if o.Time.UnixNano() == h.now {
			n++
			if got := detecttest.Field(o.Condition, "PORT"); got != "443" {
				t.Errorf("PORT %s, want 443", got)
			}
		}
	}
	if n != 1 {
		t.Fatalf("%d conditions at the last tick, want 1", n)
	}
}

// TestBounds: the caps hold and what does not fit is counted.
func TestBounds(t *testing.T) {
	h := newHarness(t, slowPolicy(nil))
	h.det.maxConns, h.det.maxPerServer = 300, 100
	s := append(clients("10.0.0.5", 80, 150, 72, 52, 10*time.Second, "198.51.100.7"),
		clients("10.0.0.6", 80, 150, 72, 52, 10*time.Second, "198.51.100.7")...)
	s = append(s, clients("10.0.0.7", 80, 150, 72, 52, 10*time.Second, "198.51.100.7")...)
	h.run(10*time.Second, s) // one record per connection
	if st := h.det.Stats(); st.Conns != 300 || st.Servers != 3 || st.Dropped != 150 {
		t.Errorf("stats %+v, want 300 connections, 3 servers, 150 dropped records", st)
	}
}

// TestSpoofedSYNs: records without ACK (a SYN flood) leave no state.
func TestSpoofedSYNs(t *testing.T) {
	h := newHarness(t, slowPolicy(nil))
	for i := range 1000 {
		h.add(flow.Record{Start: t0, End: t0, Src: netip.AddrFrom4([4]byte{203, 0, byte(i >> 8), byte(i)}), Dst: netip.MustParseAddr("10.0.0.5"),
			SrcPort: 40000, DstPort: 80, Proto: flow.ProtoTCP, TCPFlags: flow.TCPSyn, Packets: 1, Bytes: 40})
	}
	if st := h.det.Stats(); st.Conns != 0 {
		t.Errorf("stats %+v", st)
	}
}

// TestMemoryPerConnection measures the bytes a tracked connection costs.
func TestMemoryPerConnection(t *testing.T) {
	const n = 100_000
	h := newHarness(t, slowPolicy(nil))
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range n {
		h.add(flow.Record{Start: t0, End: t0, Src: netip.AddrFrom4([4]byte{198, 51, byte(i >> 16), byte(i >> 8)}),
			Dst: netip.AddrFrom4([4]byte{10, 0, 0, byte(i % 50)}), SrcPort: uint16(30000 + i%256), DstPort: 80,
			Proto: flow.ProtoTCP, TCPFlags: flow.TCPAck, Packets: 1, Bytes: 60})
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if st := h.det.Stats(); st.Conns != n {
		t.Fatalf("tracked %d", st.Conns)
	}
	per := float64(after.HeapAlloc-before.HeapAlloc) / n
	t.Logf("%.0f bytes per tracked connection", per)
	if per > 300 {
		t.Errorf("%.0f bytes per tracked connection, over the 300 budget", per)
	}
	runtime.KeepAlive(h)
}

func TestValidate(t *testing.T) {
	cases := []struct {
		name   string
		change func(p *Params)
		want   string
	}{
		{"defaults", func(*Params) {}, ""},
		{"no threshold", func(p *Params) { p.Threshold = 0 }, "threshold: must be a number of connections above 0"},
		{"negative duration", func(p *Params) { p.MinDuration = -1 }, "min_duration: must be a number of seconds"},
		{"no rate", func(p *Params) { p.MaxRate = 0 }, "max_rate: must be bytes per second"},
		{"no clients", func(p *Params) { p.MinPerClient = 0 }, "min_per_client: must be 1 or more"},
		{"no reply ratio", func(p *Params) { p.MaxReplyRatio = 0 }, "max_reply_ratio: must be above 0"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := slowPolicy(func(p *policy.Policy) { tc.change(Of(p)) })
			detecttest.CheckError(t, p.Validate(), tc.want)
		})
	}
}

// BenchmarkSlow measures a record of the hot path: updates of tracked
// slow connections, replies, and short connections that close at once.
//
// Recipe: go test ./detect/slow -run '^$' -bench Slow -benchmem -count=6 -cpu 1,2 | tee new.txt; benchstat old.txt new.txt
func BenchmarkSlow(b *testing.B) {
	m := testModel()
	det := New(detect.Deps{Family: Family, Policies: detecttest.NewManager(b, slowPolicy(nil)).Set, Observer: &detecttest.Recorder{}})
	det.SetModel(m)
	const conns = 50_000
	recs := make([]flow.Record, 0, 4*conns)
	for i := range conns {
		client := netip.AddrFrom4([4]byte{198, 51, byte(i >> 8), byte(i)})
		server := netip.AddrFrom4([4]byte{10, 0, 0, byte(i % 64)})
		recs = append(recs,
			flow.Record{Start: t0, End: t0, Src: client, Dst: server, SrcPort: 40000, DstPort: 80, Proto: flow.ProtoTCP,
				TCPFlags: flow.TCPAck | flow.TCPPsh, Packets: 1, Bytes: 72},
			flow.Record{Start: t0, End: t0, Src: server, Dst: client, SrcPort: 80, DstPort: 40000, Proto: flow.ProtoTCP,
				TCPFlags: flow.TCPAck, Packets: 1, Bytes: 52},
			// A short connection: opened and closed within one record.
			flow.Record{Start: t0, End: t0, Src: client, Dst: server, SrcPort: 50000, DstPort: 443, Proto: flow.ProtoTCP,
				TCPFlags: flow.TCPSyn | flow.TCPAck | flow.TCPFin, Packets: 6, Bytes: 900},
			// A UDP record, left at once.
			flow.Record{Start: t0, End: t0, Src: client, Dst: server, SrcPort: 50000, DstPort: 53, Proto: flow.ProtoUDP, Packets: 1, Bytes: 80},
		)
	}
	classes := make([]model.Class, len(recs))
	for i := range recs {
		m.Classify(&recs[i], &classes[i])
	}
	for i := range recs {
		det.AddClass(&recs[i], &classes[i])
	}
	i := 0
	for b.Loop() {
		det.AddClass(&recs[i], &classes[i])
		if i++; i == len(recs) {
			i = 0
		}
	}
}

// BenchmarkScan measures an evaluation (every ScanInterval) over 50,000
// slow connections to 50 server ports, 1,000 each from 100 clients: every
// port is over the threshold and fires.
//
// Recipe: go test ./detect/slow -run '^$' -bench Scan -benchmem -count=6 | tee new.txt; benchstat old.txt new.txt
func BenchmarkScan(b *testing.B) {
	m := testModel()
	det := New(detect.Deps{Family: Family, Policies: detecttest.NewManager(b, slowPolicy(nil)).Set, Observer: &detecttest.Recorder{}})
	det.SetModel(m)
	var class model.Class
	for i := range 50_000 {
		r := flow.Record{Start: t0, End: t0 + int64(90*time.Second), Src: netip.AddrFrom4([4]byte{198, 51, byte(i % 100), 1}),
			Dst: netip.AddrFrom4([4]byte{10, 0, 0, byte(i % 50)}), SrcPort: uint16(20000 + i/100), DstPort: 80,
			Proto: flow.ProtoTCP, TCPFlags: flow.TCPAck, Packets: 9, Bytes: 600}
		m.Classify(&r, &class)
		det.AddClass(&r, &class)
	}
	now := t0 + int64(100*time.Second)
	for b.Loop() {
		det.scan(now)
	}
	if len(det.current) != 50 {
		b.Fatalf("%d conditions, want 50", len(det.current))
	}
}
