package blacklist

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
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

// testModel has group 1 "internal" (10/8, fd00::/8) and 2 "dmz"
// (172.16/12), and blacklists 2 "drop" (203.0.113.7, 198.51.100.0/24,
// 2001:db8:bad::/48, 100.64.0.0/10) and 5 "tor" (203.0.113.7, 10.9.9.9).
func testModel(t testing.TB) *model.Model {
	t.Helper()
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cfg := model.Config{
		Partitions: []model.PartitionConfig{{CID: 0, Name: "default", Internal: []string{"10.0.0.0/8", "172.16.0.0/12", "fd00::/8"},
			Allow: []string{"198.51.100.98"}}},
		TrafficGroups: []model.TrafficGroupConfig{
			{ID: 1, Name: "internal", Partition: 0, CIDRs: []string{"10.0.0.0/8", "fd00::/8"}},
			{ID: 2, Name: "dmz", Partition: 0, CIDRs: []string{"172.16.0.0/12"}},
		},
		Blacklists: []model.BlacklistConfig{
			{ID: 5, Name: "tor", File: write("tor.txt", "203.0.113.7\n10.9.9.9\n")},
			{ID: 2, Name: "drop", File: write("drop.txt", "# drop\n203.0.113.7\n198.51.100.0/24\n2001:db8:bad::/48\n100.64.0.0/10\n")},
		},
	}
	m, err := model.Build(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

type harness struct {
	m     *model.Model
	s     *Shard
	rec   *detecttest.Recorder
	now   int64
	class model.Class
}

func newHarness(t testing.TB) *harness {
	t.Helper()
	p := policy.Policy{ID: 1, Name: "blacklist", Family: Family, Target: policy.TargetGroups, Object: policy.ObjectGroup,
		Severity: 7, Allow: []netip.Prefix{netip.MustParsePrefix("198.51.100.99/32")}, Params: &Params{}}
	pm := detecttest.NewManager(t, p)
	h := &harness{m: testModel(t), rec: &detecttest.Recorder{}, now: t0}
	h.s = New(detect.Deps{Family: Family, Policies: pm.Set, Observer: h.rec})
	h.s.SetModel(h.m)
	h.s.Tick(h.now)
	return h
}

// add classifies and adds records as the only shard.
func (h *harness) add(recs ...flow.Record) {
	for i := range recs {
		r := &recs[i]
		r.Start, r.End = h.now-int64(time.Second), h.now
		h.m.Classify(r, &h.class)
		h.s.AddClass(r, &h.class)
	}
}

// tick moves the clock d and ticks.
func (h *harness) tick(d time.Duration) {
	h.now += int64(d)
	h.s.Tick(h.now)
}

func rec(src string, sport uint16, dst string, dport uint16, proto, flags uint8) flow.Record {
	return flow.Record{Src: netip.MustParseAddr(src), Dst: netip.MustParseAddr(dst), SrcPort: sport, DstPort: dport,
		Proto: proto, TCPFlags: flags, Packets: 10, Bytes: 1000, SamplingRate: 1}
}

const (
	full   = flow.TCPSyn | flow.TCPAck | flow.TCPPsh | flow.TCPFin // a whole connection's flags, either direction
	tcp    = flow.ProtoTCP
	udp    = flow.ProtoUDP
	synOny = flow.TCPSyn
)

func TestAlerts(t *testing.T) {
	tests := []struct {
		name string
		recs []flow.Record
		want map[string]map[string]string // by key: fields
	}{
		{
			name: "internal client, listed server; both directions, the reply first",
			recs: []flow.Record{rec("203.0.113.7", 443, "10.0.0.5", 40000, tcp, full), rec("10.0.0.5", 40000, "203.0.113.7", 443, tcp, full)},
			want: map[string]map[string]string{"10.0.0.5/203.0.113.7": {
				"CLIENT_IP": "10.0.0.5", "CLIENT_BLACKLIST": "0", "CLIENT_TG": "1", "CLIENT_TG_NAME": "internal",
				"SERVER_IP": "203.0.113.7", "SERVER_BLACKLIST": "2", "SERVER_BL_NAME": "drop", "SERVER_TG": "0",
				"PROTO": "6", "SERVER_PORT": "443", "CONNECTION_COUNT": "1", "TOTAL_PORTS": "0", "ADDITIONAL_PORTS": "",
			}},
		},
		{
			name: "listed client probes an internal server (SYN only)",
			recs: []flow.Record{rec("198.51.100.20", 51000, "10.0.0.6", 22, tcp, synOny)},
			want: map[string]map[string]string{"198.51.100.20/10.0.0.6": {
				"CLIENT_IP": "198.51.100.20", "CLIENT_BLACKLIST": "2", "CLIENT_BL_NAME": "drop", "CLIENT_TG": "0",
				"SERVER_IP": "10.0.0.6", "SERVER_BLACKLIST": "0", "SERVER_TG": "1", "SERVER_TG_NAME": "internal",
				"PROTO": "6", "SERVER_PORT": "22", "CONNECTION_COUNT": "1", "TOTAL_PORTS": "0", "ADDITIONAL_PORTS": "",
			}},
		},
		{
			name: "SYN flags win over the ports",
			recs: []flow.Record{rec("10.0.0.6", 80, "198.51.100.20", 50000, tcp, synOny)},
			want: map[string]map[string]string{"10.0.0.6/198.51.100.20": {"CLIENT_IP": "10.0.0.6", "SERVER_PORT": "50000"}},
		},
		{
			name: "several connections on several ports: one alert",
			recs: []flow.Record{
				rec("10.0.0.7", 40001, "203.0.113.7", 80, tcp, full), rec("203.0.113.7", 80, "10.0.0.7", 40001, tcp, full),
				rec("10.0.0.7", 40002, "203.0.113.7", 443, tcp, full), rec("203.0.113.7", 443, "10.0.0.7", 40002, tcp, full),
				rec("10.0.0.7", 40003, "203.0.113.7", 8080, tcp, full),
				rec("10.0.0.7", 40004, "203.0.113.7", 443, tcp, full),
				rec("10.0.0.7", 40004, "203.0.113.7", 443, tcp, flow.TCPAck), // an interim record of the same connection
				rec("10.0.0.7", 40005, "203.0.113.7", 53, udp, 0),
			},
			want: map[string]map[string]string{"10.0.0.7/203.0.113.7": {
				"CLIENT_IP": "10.0.0.7", "SERVER_IP": "203.0.113.7", "PROTO": "6", "SERVER_PORT": "80",
				"CONNECTION_COUNT": "5", "TOTAL_PORTS": "3", "ADDITIONAL_PORTS": "443 8080 53",
			}},
		},
		{
			name: "listed server connects back: same alert, the first client stays",
			recs: []flow.Record{
				rec("10.0.0.7", 40001, "203.0.113.7", 80, tcp, synOny),
				rec("203.0.113.7", 40001, "10.0.0.7", 3389, tcp, synOny),
			},
			want: map[string]map[string]string{"10.0.0.7/203.0.113.7": {
				"CLIENT_IP": "10.0.0.7", "SERVER_PORT": "80", "CONNECTION_COUNT": "2", "TOTAL_PORTS": "1", "ADDITIONAL_PORTS": "3389",
			}},
		},
		{
			name: "UDP by ports, the reply first",
			recs: []flow.Record{rec("203.0.113.7", 53, "10.0.0.8", 50000, udp, 0), rec("10.0.0.8", 50000, "203.0.113.7", 53, udp, 0)},
			want: map[string]map[string]string{"10.0.0.8/203.0.113.7": {
				"CLIENT_IP": "10.0.0.8", "SERVER_IP": "203.0.113.7", "PROTO": "17", "SERVER_PORT": "53", "CONNECTION_COUNT": "1",
			}},
		},
		{
			name: "ICMP echo reply from the listed host",
			recs: []flow.Record{{Src: netip.MustParseAddr("203.0.113.7"), Dst: netip.MustParseAddr("10.0.0.9"), Proto: flow.ProtoICMP, Packets: 1, Bytes: 84}},
			want: map[string]map[string]string{"10.0.0.9/203.0.113.7": {"CLIENT_IP": "10.0.0.9", "SERVER_PORT": "0", "PROTO": "1"}},
		},
		{
			name: "IPv6",
			recs: []flow.Record{rec("fd00::5", 50123, "2001:db8:bad::1", 443, tcp, full), rec("2001:db8:bad::1", 443, "fd00::5", 50123, tcp, full)},
			want: map[string]map[string]string{"fd00::5/2001:db8:bad::1": {
				"CLIENT_IP": "fd00::5", "SERVER_IP": "2001:db8:bad::1", "SERVER_BLACKLIST": "2", "SERVER_PORT": "443", "CONNECTION_COUNT": "1",
			}},
		},
		{
			name: "IPv4-mapped addresses",
			recs: []flow.Record{rec("::ffff:10.0.0.5", 50123, "::ffff:203.0.113.7", 443, tcp, synOny)},
			want: map[string]map[string]string{"10.0.0.5/203.0.113.7": {"CLIENT_IP": "10.0.0.5", "SERVER_IP": "203.0.113.7"}},
		},
		{
			name: "a listed internal host talking to a listed outside one",
			recs: []flow.Record{rec("10.9.9.9", 50123, "203.0.113.7", 443, tcp, synOny)},
			want: map[string]map[string]string{"10.9.9.9/203.0.113.7": {
				"CLIENT_BLACKLIST": "5", "CLIENT_BL_NAME": "tor", "SERVER_BLACKLIST": "2", "SERVER_BL_NAME": "drop"}},
		},
		{
			name: "two groups: each its own side",
			recs: []flow.Record{rec("172.16.0.1", 50123, "10.9.9.9", 22, tcp, synOny)},
			want: map[string]map[string]string{"172.16.0.1/10.9.9.9": {
				"CLIENT_TG": "2", "CLIENT_TG_NAME": "dmz", "CLIENT_BLACKLIST": "0", "SERVER_TG": "1", "SERVER_BLACKLIST": "5"}},
		},
		{name: "not listed", recs: []flow.Record{rec("10.0.0.5", 40000, "203.0.113.8", 443, tcp, full)}},
		{name: "allow-listed by the policy", recs: []flow.Record{rec("10.0.0.5", 40000, "198.51.100.99", 443, tcp, full)}},
		{name: "allow-listed by the partition", recs: []flow.Record{rec("198.51.100.98", 40000, "10.0.0.5", 22, tcp, synOny)}},
		{name: "no side in a group", recs: []flow.Record{rec("8.8.8.8", 40000, "203.0.113.7", 443, tcp, synOny)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.add(tt.recs...)
			h.tick(time.Second)
			got := map[string]map[string]string{}
			for k, c := range h.rec.Last() {
				if c.Type != AlertType || c.Policy != 1 || c.Severity != 7 || c.CIDName != "default" {
					t.Errorf("%s: condition %+v", k, c)
				}
				all := detecttest.Fields(c)
				f := map[string]string{}
				for name := range tt.want[k] {
					if v, ok := all[name]; ok {
						f[name] = v
					}
				}
				for _, absent := range []string{"CLIENT_BL_NAME", "SERVER_BL_NAME", "CLIENT_TG_NAME", "SERVER_TG_NAME"} {
					if _, ok := tt.want[k][absent]; !ok && all[absent] != "" && tt.want[k][strings.Replace(strings.Replace(absent, "BL_NAME", "BLACKLIST", 1), "TG_NAME", "TG", 1)] == "0" {
						t.Errorf("%s: %s present: %q", k, absent, all[absent])
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

func TestFieldOrder(t *testing.T) {
	h := newHarness(t)
	h.add(rec("10.0.0.5", 40000, "203.0.113.7", 443, tcp, synOny))
	h.tick(time.Second)
	if len(h.rec.Got) != 1 {
		t.Fatalf("got %d conditions, want 1", len(h.rec.Got))
	}
	var names []string
	for _, f := range h.rec.Got[0].Fields {
		names = append(names, f.Name)
	}
	want := []string{"CLIENT_IP", "CLIENT_BLACKLIST", "CLIENT_TG", "CLIENT_TG_NAME", "SERVER_IP", "SERVER_BLACKLIST", "SERVER_BL_NAME",
		"SERVER_TG", "PROTO", "SERVER_PORT", "CONNECTION_COUNT", "TOTAL_PORTS", "ADDITIONAL_PORTS"}
	if diff := cmp.Diff(names, want); diff != "" {
		t.Errorf("(-got, +want)\n%s", diff)
	}
}

// TestLifecycle: observed while connections continue, quiet when they
// stop, forgotten after PairIdle; Poll reports a new pair at once.
func TestLifecycle(t *testing.T) {
	h := newHarness(t)
	h.now += int64(100 * time.Millisecond)
	h.add(rec("10.0.0.5", 40000, "203.0.113.7", 443, tcp, synOny))
	h.s.Poll(h.now)
	if len(h.rec.Got) != 1 || h.rec.Commits != 1 {
		t.Fatalf("after Poll: %d conditions, %d commits; want 1, 1", len(h.rec.Got), h.rec.Commits)
	}
	h.s.Poll(h.now + int64(100*time.Millisecond))
	if len(h.rec.Got) != 1 || h.rec.Commits != 1 {
		t.Fatalf("after a second Poll: %d conditions, %d commits; want 1, 1", len(h.rec.Got), h.rec.Commits)
	}
	h.tick(time.Second)
	for i := range 5 {
		h.add(rec("10.0.0.5", uint16(40001+i), "203.0.113.7", 443, tcp, synOny))
		h.tick(time.Second)
	}
	if n := len(h.rec.Got); n != 7 {
		t.Fatalf("observed %d times, want 7", n)
	}
	if got := detecttest.Fields(h.rec.Got[6].Condition)["CONNECTION_COUNT"]; got != "6" {
		t.Errorf("CONNECTION_COUNT %s, want 6", got)
	}
	for range 60 {
		h.tick(time.Second)
	}
	if n := len(h.rec.Got); n != 7 {
		t.Errorf("observed %d times while quiet, want 7", n)
	}
	if h.s.Pairs() != 1 {
		t.Errorf("%d pairs, want 1", h.s.Pairs())
	}
	h.tick(PairIdle)
	h.tick(11 * time.Second)
	if h.s.Pairs() != 0 {
		t.Errorf("%d pairs after PairIdle, want 0", h.s.Pairs())
	}
	h.add(rec("10.0.0.5", 41000, "203.0.113.7", 8443, tcp, synOny))
	h.tick(time.Second)
	if f := detecttest.Fields(h.rec.Got[len(h.rec.Got)-1].Condition); f["CONNECTION_COUNT"] != "1" || f["SERVER_PORT"] != "8443" {
		t.Errorf("after a restart: %v", f)
	}
}

func TestBounds(t *testing.T) {
	h := newHarness(t)
	// 200 ports: 100 listed, TOTAL_PORTS counts them all.
	for i := range 201 {
		h.add(rec("10.0.0.5", uint16(40000+i), "203.0.113.7", uint16(1+i), tcp, synOny))
	}
	// MaxPairs+10 listed addresses of 100.64/10.
	for i := range MaxPairs + 10 {
		a := netip.AddrFrom4([4]byte{100, 64 + byte(i>>16), byte(i >> 8), byte(i)})
		r := rec("10.0.0.5", 40000, a.String(), 443, tcp, synOny)
		h.add(r)
	}
	h.tick(time.Second)
	f := detecttest.Fields(h.rec.Last()["10.0.0.5/203.0.113.7"])
	if f["TOTAL_PORTS"] != "200" || len(strings.Fields(f["ADDITIONAL_PORTS"])) != MaxListedPorts {
		t.Errorf("TOTAL_PORTS %s, %d ports listed; want 200, %d", f["TOTAL_PORTS"], len(strings.Fields(f["ADDITIONAL_PORTS"])), MaxListedPorts)
	}
	if h.s.Pairs() != MaxPairs || h.s.Dropped() != 11 {
		t.Errorf("%d pairs, %d dropped; want %d, 11", h.s.Pairs(), h.s.Dropped(), MaxPairs)
	}
}

func TestRole(t *testing.T) {
	tests := []struct {
		r    flow.Record
		want int
	}{
		{rec("1.1.1.1", 80, "2.2.2.2", 50000, tcp, synOny), 1},
		{rec("1.1.1.1", 80, "2.2.2.2", 50000, tcp, flow.TCPSyn|flow.TCPAck), -1},
		{rec("1.1.1.1", 50000, "2.2.2.2", 80, tcp, full), 1},
		{rec("1.1.1.1", 80, "2.2.2.2", 50000, tcp, full), -1},
		{rec("1.1.1.1", 3306, "2.2.2.2", 2000, tcp, full), -1},
		{rec("1.1.1.1", 5000, "2.2.2.2", 6000, udp, 0), -1},
		{rec("1.1.1.1", 123, "2.2.2.2", 123, udp, 0), 0},
		{rec("1.1.1.1", 40000, "2.2.2.2", 50000, udp, 0), 0},
		{rec("1.1.1.1", 0, "2.2.2.2", 0, 47, 0), 0},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d-%d-%d-%#x", tt.r.Proto, tt.r.SrcPort, tt.r.DstPort, tt.r.TCPFlags), func(t *testing.T) {
			if got := role(&tt.r); got != tt.want {
				t.Errorf("role %d, want %d", got, tt.want)
			}
		})
	}
}

// BenchmarkBlacklist adds records of known listed pairs and of unlisted
// traffic, classified beforehand, as the shard does in steady state.
//
//	go test ./detect/blacklist -run '^$' -bench Blacklist -benchmem -count=6 -cpu 1,2 | tee new.txt; benchstat new.txt
func BenchmarkBlacklist(b *testing.B) {
	h := newHarness(b)
	recs := []flow.Record{
		rec("10.0.0.5", 40000, "203.0.113.7", 443, tcp, full),
		rec("203.0.113.7", 443, "10.0.0.5", 40000, tcp, full),
		rec("10.0.0.6", 40000, "198.51.100.7", 53, udp, 0),
		rec("10.0.0.5", 40000, "93.184.216.34", 443, tcp, full),
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
