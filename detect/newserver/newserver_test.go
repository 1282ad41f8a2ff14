package newserver

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/flowsentry/flowsentry/alert"
	"github.com/flowsentry/flowsentry/detect"
	"github.com/flowsentry/flowsentry/detect/detecttest"
	"github.com/flowsentry/flowsentry/flow"
	"github.com/flowsentry/flowsentry/model"
	"github.com/flowsentry/flowsentry/policy"
)

// typeKeys is "TYPE KEY" of each condition r observed; it forgets them.
func typeKeys(r *detecttest.Recorder) []string {
	var out []string
	for _, c := range r.Got {
		out = append(out, c.Type+" "+c.Key)
	}
	r.Reset()
	return out
}

var t0 = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC).UnixNano()

// harness runs the family's stages over n shards as the pipeline does.
type harness struct {
	t      testing.TB
	m      *model.Model
	whole  *Detector
	shards []*Shard
	rec    *detecttest.Recorder
	now    int64
	class  model.Class
	// batch makes step hand each shard its records in one AddBatch, as
	// the pipeline does, instead of one AddClass each.
	batch bool
}

func testModel() *model.Model {
	return model.New(
		[]model.Partition{{CID: 0, Name: "default", Allow: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}}},
		[]model.TrafficGroup{
			{ID: 1, Name: "internal", CID: 0, CIDRs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}},
			{ID: 2, Name: "dmz", CID: 0, CIDRs: []netip.Prefix{netip.MustParsePrefix("10.9.0.0/16")}},
		}, nil)
}

// testPolicies are templates of both families on partition 0.
func testPolicies(learning time.Duration, maxLearned int) []policy.Policy {
	mk := func(id uint64, f policy.Family) policy.Policy {
		return policy.Policy{ID: id, Name: string(f), Family: f, Target: policy.TargetGroups, Object: policy.ObjectGroup,
			Severity: 4, Actions: []policy.Attachment{},
			Params: &Params{LearningPeriod: Duration(learning), MaxLearned: maxLearned}}
	}
	return []policy.Policy{mk(1, ServerFamily), mk(2, ClientFamily)}
}

func newHarness(t testing.TB, n int, st Store, policies []policy.Policy) *harness {
	t.Helper()
	h := &harness{t: t, m: testModel(), rec: &detecttest.Recorder{}, now: t0}
	d := detect.Deps{Policies: detecttest.NewManager(t, policies...).Set, Observer: h.rec}
	var shards []detect.ShardStage
	for range n {
		s := NewShard(d)
		s.SetModel(h.m)
		shards = append(shards, s)
		h.shards = append(h.shards, s)
	}
	d.Shards = shards
	w, err := New(d, st)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	w.SetModel(h.m)
	h.whole = w
	h.tick()
	return h
}

// owner returns the shard owning the record as a whole, as the pipeline
// routes it (the side in a group, else the lower address), and its
// class.
func (h *harness) owner(r *flow.Record) (*Shard, model.Class) {
	var c model.Class
	h.m.Classify(r, &c)
	owner := r.Src
	switch {
	case len(c.Dst.Groups) > 0 && len(c.Src.Groups) == 0:
		owner = r.Dst
	case (len(c.Dst.Groups) > 0) == (len(c.Src.Groups) > 0) && r.Dst.Less(r.Src):
		owner = r.Dst
	}
	b := owner.As16()
	c.Own = model.OwnRecord
	return h.shards[int(b[15])%len(h.shards)], c
}

// add hands r to the shard owning it.
func (h *harness) add(r flow.Record) {
	s, c := h.owner(&r)
	h.class = c
	s.AddClass(&r, &h.class)
}

// tick ticks the shards then the whole at h.now.
func (h *harness) tick() {
	for _, s := range h.shards {
		s.Tick(h.now)
	}
	h.whole.Tick(h.now)
}

// step adds records and moves one second on.
func (h *harness) step(recs ...flow.Record) {
	if h.batch {
		rs, cs := map[*Shard][]flow.Record{}, map[*Shard][]model.Class{}
		for _, r := range recs {
			s, c := h.owner(&r)
			rs[s], cs[s] = append(rs[s], r), append(cs[s], c)
		}
		for s := range rs {
			s.AddBatch(rs[s], cs[s])
		}
	} else {
		for _, r := range recs {
			h.add(r)
		}
	}
	h.now += int64(time.Second)
	h.tick()
}

// sess returns the records of one session: the client's direction first.
type sess struct {
	client, server         string
	cport, sport           uint16
	proto                  uint8
	cpk, spk               uint64
	cflags, sflags         uint8
	serverFirst, sameStart bool
	continued              bool // interim reports, the server's starting first
}

func (s sess) records(at int64) []flow.Record {
	c := flow.Record{Src: netip.MustParseAddr(s.client), Dst: netip.MustParseAddr(s.server), SrcPort: s.cport, DstPort: s.sport,
		Proto: s.proto, Packets: s.cpk, Bytes: 100 * s.cpk, TCPFlags: s.cflags, SamplingRate: 1, Start: at, End: at + int64(time.Second)}
	v := flow.Record{Src: c.Dst, Dst: c.Src, SrcPort: s.sport, DstPort: s.cport,
		Proto: s.proto, Packets: s.spk, Bytes: 1000 * s.spk, TCPFlags: s.sflags, SamplingRate: 1, Start: at + int64(time.Millisecond), End: at + int64(time.Second)}
	if s.sameStart {
		v.Start = c.Start
	}
	if s.continued {
		c.Continued, v.Continued, v.Start = true, true, c.Start-1
	}
	var out []flow.Record
	if s.cpk > 0 {
		out = append(out, c)
	}
	if s.spk > 0 {
		out = append(out, v)
	}
	if s.serverFirst {
		slices.Reverse(out)
	}
	return out
}

const full = flow.TCPSyn | flow.TCPAck | flow.TCPPsh | flow.TCPFin

func tcp(client string, cport uint16, server string, sport uint16) sess {
	return sess{client: client, server: server, cport: cport, sport: sport, proto: flow.ProtoTCP, cpk: 10, spk: 8, cflags: full, sflags: full}
}

func udp(client string, cport uint16, server string, sport uint16, cpk, spk uint64) sess {
	return sess{client: client, server: server, cport: cport, sport: sport, proto: flow.ProtoUDP, cpk: cpk, spk: spk}
}

func with(s sess, f func(*sess)) sess { f(&s); return s }

func TestDetector(t *testing.T) {
	web := tcp("198.51.100.7", 50000, "10.0.0.5", 443)
	type step struct {
		sessions []sess
		wait     time.Duration // before the step
	}
	cases := []struct {
		name     string
		learning time.Duration
		steps    []step
		want     []string
	}{
		{name: "tcp handshake", steps: []step{{sessions: []sess{web}}},
			want: []string{"new_server 10.0.0.5/6/443", "new_client 10.0.0.5/6/443/198.51.100.7"}},
		{name: "second client is only a new client", steps: []step{
			{sessions: []sess{web}},
			{sessions: []sess{with(web, func(s *sess) { s.cport = 50001 })}}, // same client, new session
			{sessions: []sess{with(web, func(s *sess) { s.client = "203.0.113.9" })}},
		}, want: []string{"new_server 10.0.0.5/6/443", "new_client 10.0.0.5/6/443/198.51.100.7", "new_client 10.0.0.5/6/443/203.0.113.9"}},
		{name: "response first", steps: []step{{sessions: []sess{with(web, func(s *sess) { s.serverFirst = true })}}},
			want: []string{"new_server 10.0.0.5/6/443", "new_client 10.0.0.5/6/443/198.51.100.7"}},
		{name: "half-open syn scan", steps: []step{{sessions: func() []sess {
			var out []sess
			for p := uint16(1); p <= 200; p++ {
				out = append(out, sess{client: "198.51.100.7", server: "10.0.0.5", cport: 36050, sport: p, proto: flow.ProtoTCP,
					cpk: 2, spk: 5, cflags: flow.TCPSyn, sflags: flow.TCPSyn | flow.TCPAck})
			}
			return out
		}()}}},
		{name: "syn answered by rst", steps: []step{{sessions: []sess{{client: "198.51.100.7", server: "10.0.0.5", cport: 36050, sport: 23,
			proto: flow.ProtoTCP, cpk: 1, spk: 1, cflags: flow.TCPSyn, sflags: flow.TCPRst | flow.TCPAck}}}}},
		{name: "connect scan reset with 3 packets", steps: []step{{sessions: []sess{with(web, func(s *sess) {
			s.cpk, s.spk, s.cflags, s.sflags = 3, 1, flow.TCPSyn|flow.TCPAck|flow.TCPRst, flow.TCPSyn|flow.TCPAck
		})}}}},
		{name: "reset with 4 packets each way counts", steps: []step{{sessions: []sess{with(web, func(s *sess) {
			s.cpk, s.spk, s.cflags = 4, 4, full|flow.TCPRst
		})}}}, want: []string{"new_server 10.0.0.5/6/443", "new_client 10.0.0.5/6/443/198.51.100.7"}},
		{name: "udp dns inside", steps: []step{{sessions: []sess{udp("198.51.100.7", 40000, "10.0.0.53", 53, 1, 1)}}},
			want: []string{"new_server 10.0.0.53/17/53", "new_client 10.0.0.53/17/53/198.51.100.7"}},
		{name: "one-way udp flood", steps: []step{{sessions: func() []sess {
			var out []sess
			for i := range 100 {
				out = append(out, udp(fmt.Sprintf("198.51.100.%d", i), 1024+uint16(i), "10.0.0.5", 53, 1000, 0))
			}
			return out
		}()}}},
		{name: "server outside the group", steps: []step{{sessions: []sess{tcp("10.0.0.5", 50000, "198.51.100.7", 443)}}}},
		{name: "allowed client", steps: []step{{sessions: []sess{tcp("192.0.2.10", 50000, "10.0.0.5", 443)}}}},
		{name: "between two internal hosts", steps: []step{{sessions: []sess{tcp("10.0.0.9", 50000, "10.0.0.2", 22)}}},
			want: []string{"new_server 10.0.0.2/6/22", "new_client 10.0.0.2/6/22/10.0.0.9"}},
		{name: "server in two groups alerts per group policy once", steps: []step{{sessions: []sess{tcp("198.51.100.7", 50000, "10.9.0.1", 80)}}},
			want: []string{"new_server 10.9.0.1/6/80", "new_client 10.9.0.1/6/80/198.51.100.7"}},
		{name: "no flags exported: ports decide", steps: []step{{sessions: []sess{with(web, func(s *sess) {
			s.cflags, s.sflags, s.sameStart, s.serverFirst = 0, 0, true, true
		})}}}, want: []string{"new_server 10.0.0.5/6/443", "new_client 10.0.0.5/6/443/198.51.100.7"}},
		{name: "interim reports: ports decide", steps: []step{{sessions: []sess{with(web, func(s *sess) { s.continued = true })}}},
			want: []string{"new_server 10.0.0.5/6/443", "new_client 10.0.0.5/6/443/198.51.100.7"}},
		{name: "ipv6", steps: []step{{sessions: []sess{tcp("2001:db8::7", 50000, "fd00::5", 22)}}},
			want: []string{"new_server fd00::5/6/22", "new_client fd00::5/6/22/2001:db8::7"}},
		{name: "learning period silences", learning: time.Hour, steps: []step{
			{sessions: []sess{web}},
			{wait: time.Hour, sessions: []sess{web, with(web, func(s *sess) { s.client = "203.0.113.9" })}},
		}, want: []string{"new_client 10.0.0.5/6/443/203.0.113.9"}},
		{name: "directions a minute apart are forgotten", steps: []step{
			{sessions: []sess{with(web, func(s *sess) { s.spk = 0 })}},
			{wait: 2 * time.Minute, sessions: []sess{with(web, func(s *sess) { s.cpk = 0 })}},
		}},
	}
	for _, tc := range cases {
		for _, n := range []int{1, 3} {
			for _, batch := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s/%d shards/batch=%v", tc.name, n, batch), func(t *testing.T) {
					h := newHarness(t, n, nil, testPolicies(tc.learning, DefaultMaxLearned))
					h.batch = batch
					var got []string
					for _, st := range tc.steps {
						if st.wait > 0 {
							h.now += int64(st.wait)
							h.tick()
						}
						var recs []flow.Record
						for _, s := range st.sessions {
							recs = append(recs, s.records(h.now)...)
						}
						h.step(recs...)
						got = append(got, typeKeys(h.rec)...)
					}
					if diff := cmp.Diff(got, tc.want); diff != "" {
						t.Errorf("alerts (-got +want):\n%s", diff)
					}
				})
			}
		}
	}
}

func TestAlertFields(t *testing.T) {
	h := newHarness(t, 1, nil, testPolicies(0, DefaultMaxLearned))
	h.step(tcp("198.51.100.7", 50000, "10.0.0.5", 443).records(h.now)...)
	if len(h.rec.Got) != 2 {
		t.Fatalf("got %d conditions, want 2", len(h.rec.Got))
	}
	c := h.rec.Got[1].Condition
	want := []alert.Field{
		{Name: "SERVER_IP", Value: "10.0.0.5"},
		{Name: "SERVER_TG", Value: "1", Number: true},
		{Name: "SERVER_TG_NAME", Value: "internal"},
		{Name: "PROTO", Value: "6", Number: true},
		{Name: "SERVER_PORT", Value: "443", Number: true},
		{Name: "CLIENT_IP", Value: "198.51.100.7"},
	}
	if diff := cmp.Diff(c.Fields, want); diff != "" {
		t.Errorf("fields (-got +want):\n%s", diff)
	}
	if c.Policy != 2 || c.Severity != 4 || c.CIDName != "default" || c.Type != ClientAlert {
		t.Errorf("condition %+v", c)
	}
	// 10 packets in, 8 out, over one second.
	if c.Values.PacketsIn != 10 || c.Values.PacketsOut != 8 || c.Values.BytesOut != 8000 {
		t.Errorf("values %+v", c.Values)
	}
}

// TestRestart learns, stops, starts over the same store: nothing known
// alerts again, and the learning period does not start again.
func TestRestart(t *testing.T) {
	st := &MemStore{}
	web := tcp("198.51.100.7", 50000, "10.0.0.5", 443)
	h := newHarness(t, 2, st, testPolicies(time.Hour, DefaultMaxLearned))
	h.step(web.records(h.now)...)
	h.step(udp("198.51.100.8", 40000, "fd00::53", 53, 1, 1).records(h.now)...)
	if got := typeKeys(h.rec); len(got) != 0 {
		t.Fatalf("learning period alerted: %v", got)
	}
	h.whole.Stop()
	saved, _ := st.LearnedServices(context.Background())
	if len(saved.Entries) != 4 || len(saved.Starts) != 4 {
		t.Fatalf("saved %+v", saved)
	}

	// An hour later, a new process.
	h2 := newHarness(t, 2, st, testPolicies(time.Hour, DefaultMaxLearned))
	h2.now = h.now + int64(time.Hour)
	h2.step(web.records(h2.now)...)
	h2.step(udp("198.51.100.8", 40001, "fd00::53", 53, 1, 1).records(h2.now)...)
	h2.step(with(web, func(s *sess) { s.sport = 8443 }).records(h2.now)...)
	want := []string{"new_server 10.0.0.5/6/8443", "new_client 10.0.0.5/6/8443/198.51.100.7"}
	if diff := cmp.Diff(typeKeys(h2.rec), want); diff != "" {
		t.Errorf("after restart (-got +want):\n%s", diff)
	}
	h2.whole.Stop()
	saved, _ = st.LearnedServices(context.Background())
	if len(saved.Entries) != 6 {
		t.Errorf("saved %d entries, want 6", len(saved.Entries))
	}
}

func TestMaxLearned(t *testing.T) {
	h := newHarness(t, 1, nil, testPolicies(0, 2))
	var recs []flow.Record
	for i := range 5 {
		recs = append(recs, tcp(fmt.Sprintf("198.51.100.%d", i+1), 50000, "10.0.0.5", 443).records(h.now)...)
	}
	h.step(recs...)
	got := typeKeys(h.rec)
	// The server policy learns one entry; the client policy two.
	if len(got) != 3 {
		t.Errorf("alerts %v, want 3", got)
	}
	if st := h.whole.Stats(); st.Dropped != 3 || st.Servers != 1 || st.Clients != 2 {
		t.Errorf("stats %+v", st)
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    Params
		want string
	}{
		{"defaults", DefaultParams(), ""},
		{"zero learning", Params{MaxLearned: 1}, ""},
		{"negative learning", Params{LearningPeriod: -1, MaxLearned: 1}, "learning_period: -1ns is negative"},
		{"no entries", Params{}, "max_learned: 0 is out of range"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			detecttest.CheckError(t, tc.p.Validate(nil), tc.want)
		})
	}
}

func TestDurationCodec(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		err  bool
	}{
		{`"1h"`, time.Hour, false},
		{`"0"`, 0, false},
		{`90`, 90 * time.Second, false},
		{`"soon"`, 0, true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			var d Duration
			err := json.Unmarshal([]byte(tc.in), &d)
			if (err != nil) != tc.err || (!tc.err && time.Duration(d) != tc.want) {
				t.Fatalf("Unmarshal(%s) = %v, %v; want %v", tc.in, time.Duration(d), err, tc.want)
			}
		})
	}
	b, err := json.Marshal(Params{LearningPeriod: Duration(time.Hour), MaxLearned: 3})
	if err != nil || string(b) != `{"learning_period":"1h0m0s","max_learned":3}` {
		t.Errorf("Marshal = %s, %v", b, err)
	}
}
