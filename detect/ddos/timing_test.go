package ddos

import (
	"net/netip"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/flowsentry/flowsentry/detect/detecttest"
	"github.com/flowsentry/flowsentry/flow"
	"github.com/flowsentry/flowsentry/model"
	"github.com/flowsentry/flowsentry/policy"
)

// TestLatency measures, on virtual time with a poll every 100 ms, the
// time from the first packet of a SYN flood to its CREATE being observed
// and committed.
func TestLatency(t *testing.T) {
	cases := []struct {
		mult float64
		max  time.Duration
	}{{1.5, 900 * time.Millisecond}, {4, 400 * time.Millisecond}, {20, 200 * time.Millisecond}}
	for _, tc := range cases {
		t.Run(strconv.FormatFloat(tc.mult, 'f', -1, 64)+"x", func(t *testing.T) {
			h := newHarness(t, pol(1, Flood, 1000))
			start := h.now
			h.run(2*time.Second, int(1000*tc.mult), kinds["syn"])
			if len(h.rec.Got) == 0 || h.rec.Commits == 0 {
				t.Fatal("no alert")
			}
			lat := time.Duration(h.rec.Got[0].Time.UnixNano() - start)
			t.Logf("%.1f× threshold: CREATE after %v", tc.mult, lat)
			if lat > tc.max {
				t.Errorf("latency %v, want at most %v", lat, tc.max)
			}
		})
	}
}

// TestBurst: a burst of 0.8 × threshold packets within 200 ms is silent.
func TestBurst(t *testing.T) {
	h := newHarness(t, pol(1, Flood, 1000))
	h.run(200*time.Millisecond, 4000, kinds["syn"])
	h.run(3*time.Second, 0, nil)
	if len(h.rec.Got) != 0 {
		t.Fatalf("a short burst alerted: %+v", h.rec.Got[0].Condition)
	}
}

// TestLongRecords: NetFlow records of 60 s count their average rate; a
// sampled flood (1:1000, already scaled) still alerts with scaled rates.
func TestLongRecords(t *testing.T) {
	cases := []struct {
		name string
		gen  func(h *harness, i int) flow.Record
		rate int
		want bool
	}{
		{"60 s records of 500/s in all", func(h *harness, i int) flow.Record {
			r := kinds["udp"](i)
			r.Start, r.End, r.Packets = h.now-int64(60*time.Second), h.now, 3000
			return r
		}, 1, false},
		{"sampled 1:1000", func(h *harness, i int) flow.Record {
			r := kinds["syn"](i)
			r.Packets, r.SamplingRate = 1000, 1000
			return r
		}, 20, true},
		{"sampled 1:1000 below", func(h *harness, i int) flow.Record {
			r := kinds["syn"](i)
			r.Packets, r.SamplingRate = 1000, 1000
			return r
		}, 0, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, pol(1, Flood, 1000))
			n := 0
			for range 30 {
				for range tc.rate {
					r := tc.gen(h, n)
					n++
					h.add(&r)
				}
				h.step()
			}
			if got := len(h.rec.Got) > 0; got != tc.want {
				t.Fatalf("alerted %v, want %v", got, tc.want)
			}
			if tc.want {
				if v := h.rec.Got[len(h.rec.Got)-1].Values.PacketsIn; v < 150000 || v > 250000 {
					t.Errorf("packets_in %v, want the scaled 200000", v)
				}
			}
		})
	}
}

// TestLifecycle: the alert is observed at every tick while the flood
// lasts, carries the DDoS fields, and is no longer observed after.
func TestLifecycle(t *testing.T) {
	h := newHarness(t, pol(1, Flood, 1000), pol(2, Flood, 1000))
	h.run(5*time.Second, 3000, kinds["syn"])
	n := len(h.rec.Got)
	if n < 5*2 {
		t.Fatalf("%d observations over 5 s of flood, want one per tick and policy", n)
	}
	last := h.rec.Got[len(h.rec.Got)-1].Condition
	for _, want := range []struct{ name, value string }{
		{"TARGET_IP", "10.10.10.10"}, {"TARGET_MASK", "8"}, {"TARGET_TG", "1"}, {"TARGET_TG_NAME", "internal"},
		{"PROTO", "6"}, {"PORT", "80"}, {"THRESHOLD_VALUE", "1000.00"},
	} {
		if got := detecttest.Field(last, want.name); got != want.value {
			t.Errorf("%s = %q, want %q", want.name, got, want.value)
		}
	}
	if last.Key != "ddos_flood/10.10.10.10" || last.Type != "ddos_synflood" {
		t.Errorf("key %q type %q", last.Key, last.Type)
	}
	if v := last.Values.PacketsIn; v < 2900 || v > 3100 {
		t.Errorf("packets_in %v, want 3000", v)
	}
	var total string
	for _, f := range last.Fields {
		if f.Name == "TOTAL_SOURCES" {
			total = f.Value
		}
		if f.Name == "SOURCES" && len(f.List) != 10 {
			t.Errorf("SOURCES %v, want the top 10", f.List)
		}
	}
	if v, _ := strconv.Atoi(total); v < 40 {
		t.Errorf("TOTAL_SOURCES %s", total)
	}
	h.run(30*time.Second, 0, nil)
	if len(h.rec.Got) > n+2*2 {
		t.Errorf("still observed after the flood: %d → %d", n, len(h.rec.Got))
	}
	if h.st.hotN != 0 || len(h.st.index) != 0 {
		t.Errorf("%d hot and %d tracked targets left after 30 quiet seconds", h.st.hotN, len(h.st.index))
	}
}

// TestAllowList: an allowed remote never counts.
func TestAllowList(t *testing.T) {
	p := pol(1, Flood, 1000)
	p.Allow = []netip.Prefix{netip.MustParsePrefix("96.0.0.0/3"), netip.MustParsePrefix("128.0.0.0/2")}
	h := newHarness(t, p)
	h.run(3*time.Second, 5000, kinds["syn"])
	if len(h.rec.Got) != 0 {
		t.Fatal("allowed sources alerted")
	}
}

// TestMemoryPerTarget adds 1M targets and measures the heap they hold.
func TestMemoryPerTarget(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	h := newHarness(t, pol(1, Flood, 1e6))
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	const n = 1 << 20
	var c model.Class
	r := flow.Record{Src: netip.MustParseAddr("198.51.100.1"), Proto: flow.ProtoUDP, Packets: 1, Start: h.now, End: h.now}
	for i := range n {
		r.Dst = netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		h.m.Classify(&r, &c)
		h.st.AddClass(&r, &c)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if len(h.st.index) != n {
		t.Fatalf("%d targets", len(h.st.index))
	}
	per := float64(after.HeapAlloc-before.HeapAlloc) / n
	t.Logf("%.0f bytes per tracked target", per)
	if per > 300 {
		t.Errorf("%.0f bytes per target, want at most 300", per)
	}
	runtime.KeepAlive(h)
}

// BenchmarkDDoS measures AddClass over a mix of a spoofed SYN flood on
// one target (hot) and background traffic to 64k targets.
//
//	go test -run '^$' -bench BenchmarkDDoS -benchmem -count=6 -cpu 1,2 ./detect/ddos/ | tee new.txt
//	benchstat old.txt new.txt
func BenchmarkDDoS(b *testing.B) {
	h := newHarness(b, pol(1, Flood, 100000), pol(2, Amp, 10000), pol(3, SynFlood, 50000))
	recs := make([]flow.Record, 4096)
	classes := make([]model.Class, len(recs))
	for i := range recs {
		if i%2 == 0 {
			recs[i] = kinds["syn"](i)
		} else {
			recs[i] = flow.Record{Src: spoofed(i), Dst: netip.AddrFrom4([4]byte{10, 2, byte(i >> 8), byte(i)}), Proto: flow.ProtoUDP, SrcPort: 53, DstPort: 33000}
		}
		recs[i].Packets, recs[i].Bytes = 1, 60
		h.m.Classify(&recs[i], &classes[i])
	}
	for i := range recs { // warm up: every target known
		h.st.AddClass(&recs[i], &classes[i])
	}
	n := 0
	for b.Loop() {
		i := n % len(recs)
		recs[i].Start, recs[i].End = h.now, h.now
		h.st.AddClass(&recs[i], &classes[i])
		if n++; n%100000 == 0 {
			h.now += bucketNS
			h.st.Poll(h.now)
		}
	}
}

var _ = policy.ObjectGroup

// BenchmarkDDoSUDP measures AddClass for the worst case of the two-way
// rule: a UDP flood from ever new spoofed (address, port) pairs on one
// hot target, with a QUIC-like session answered by the target.
func BenchmarkDDoSUDP(b *testing.B) {
	h := newHarness(b, pol(1, Flood, 100000), pol(2, Amp, 10000))
	recs := make([]flow.Record, 4096)
	classes := make([]model.Class, len(recs))
	quic := kinds["quic"]
	for i := range recs {
		switch {
		case i%4 == 0:
			recs[i] = quic(i)
		case i%2 == 0:
			recs[i] = kinds["isakmp-amp"](i)
		default:
			recs[i] = kinds["udp443 spoofed"](i)
		}
		recs[i].Packets, recs[i].Bytes = 1, 60
		h.m.Classify(&recs[i], &classes[i])
	}
	for i := range recs {
		h.st.AddClass(&recs[i], &classes[i])
	}
	n := 0
	for b.Loop() {
		i := n % len(recs)
		recs[i].Start, recs[i].End = h.now, h.now
		h.st.AddClass(&recs[i], &classes[i])
		if n++; n%100000 == 0 {
			h.now += bucketNS
			h.st.Poll(h.now)
		}
	}
}
