package ddos

import (
	"net/netip"
	"testing"
	"time"

	"github.com/flowsentry/flowsentry/detect"
	"github.com/flowsentry/flowsentry/detect/detecttest"
	"github.com/flowsentry/flowsentry/flow"
	"github.com/flowsentry/flowsentry/model"
	"github.com/flowsentry/flowsentry/policy"
)

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC).UnixNano()

// harness drives one stage as a shard does in serve: records, a Poll
// every 100 ms, a Tick every second.
type harness struct {
	t     testing.TB
	m     *model.Model
	st    *Stage
	rec   *detecttest.Recorder
	now   int64
	class model.Class
}

func testModel() *model.Model {
	return model.New(
		[]model.Partition{{CID: 0, Name: "default"}},
		[]model.TrafficGroup{
			{ID: 1, Name: "internal", CID: 0, CIDRs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fc00::/7")}},
			{ID: 2, Name: "servers", CID: 0, CIDRs: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}},
		}, nil)
}

func pol(id uint64, f policy.Family, thr float64) policy.Policy {
	p := policy.Policy{ID: id, Name: string(f), CID: 0, Family: f, Target: policy.TargetGroups, Object: policy.ObjectGroup,
		Severity: 5, Actions: []policy.Attachment{}, Params: &Params{Threshold: thr}}
	if f == Amp {
		p.Params = &AmpParams{Threshold: thr}
	}
	return p
}

func ampPol(id uint64, port uint16, thr float64) policy.Policy {
	p := pol(id, Amp, thr)
	p.Params = &AmpParams{Threshold: thr, Port: port}
	return p
}

func newHarness(t testing.TB, policies ...policy.Policy) *harness {
	t.Helper()
	h := &harness{t: t, m: testModel(), rec: &detecttest.Recorder{}, now: t0}
	h.st = newStage(detect.Deps{Family: Flood, Policies: detecttest.NewManager(t, policies...).Set, Observer: h.rec})
	h.st.SetModel(h.m)
	h.st.Tick(h.now)
	return h
}

func (h *harness) add(r *flow.Record) {
	if r.Start == 0 {
		r.Start, r.End = h.now, h.now
	}
	if r.Packets == 0 {
		r.Packets = 1
	}
	if r.Bytes == 0 {
		r.Bytes = 60 * r.Packets
	}
	h.m.Classify(r, &h.class)
	h.st.AddClass(r, &h.class)
}

// step moves 100 ms on, polling (and ticking on whole seconds).
func (h *harness) step() {
	h.now += bucketNS
	if (h.now-t0)%int64(time.Second) == 0 {
		h.st.Tick(h.now)
	} else {
		h.st.Poll(h.now)
	}
}

// run sends, for d, rate records per second made by gen (i counts them),
// 100 ms at a time.
func (h *harness) run(d time.Duration, rate int, gen func(i int) flow.Record) {
	per := rate / 10
	n := 0
	for range int(d / time.Duration(bucketNS)) {
		for range per {
			r := gen(n)
			n++
			h.add(&r)
		}
		h.step()
	}
}

// spoofed returns the i-th of many distinct sources.
func spoofed(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(100 + i%50), byte(i >> 8), byte(i), 1})
}

func spoofed6(i int) netip.Addr {
	return netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, byte(i >> 8), byte(i), 0, 0, 0, 0, 0, 0, 0, 0, 0, 1})
}

var victim = netip.MustParseAddr("10.10.10.10")
