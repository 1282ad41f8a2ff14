package rates

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/flowsentry/flowsentry/flow"
	"github.com/flowsentry/flowsentry/model"
)

// shardedPair runs the same records through one engine and through
// Shards, assigning each address to a shard (as the pipeline does, by
// address) and each record's own part to any shard.
type shardedPair struct {
	single *Engine
	shards *Shards
	m      *model.Model
	rng    *rand.Rand
}

func newShardedPair(t testing.TB, cfg Config, n int, seed uint64) *shardedPair {
	t.Helper()
	single, _ := newTestEngine(t, cfg)
	sh, err := NewShards(cfg, n, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	m := testModel()
	sh.SetModel(m)
	for i := range sh.Len() {
		sh.Shard(i).SetModel(m)
	}
	p := &shardedPair{single: single, shards: sh, m: m, rng: rand.New(rand.NewPCG(seed, 1))}
	p.tick(at(0))
	return p
}

func (p *shardedPair) owner(a netip.Addr) int {
	hi, lo := halves(a.Unmap())
	return int(hash2(hi, lo) % uint64(p.shards.Len()))
}

func (p *shardedPair) add(r *flow.Record) {
	p.single.Add(r)
	var c model.Class
	p.m.Classify(r, &c)
	recShard := p.rng.IntN(p.shards.Len())
	for s := range p.shards.Len() {
		own := model.Own(0)
		if len(c.Src.Groups) > 0 && p.owner(r.Src) == s {
			own |= model.OwnSrc
		}
		if len(c.Dst.Groups) > 0 && p.owner(r.Dst) == s {
			own |= model.OwnDst
		}
		if recShard == s {
			own |= model.OwnRecord
		}
		if own != 0 {
			c.Own = own
			p.shards.Shard(s).AddClass(r, &c)
		}
	}
}

func (p *shardedPair) tick(now int64) {
	p.single.Tick(now)
	for i := range p.shards.Len() {
		p.shards.Shard(i).Tick(now)
	}
	p.shards.Merge(now)
	p.shards.Publish()
}

// compare fails t unless the shards' snapshot equals the single
// engine's: the objects keep selects (every one when nil, and then the
// exporters too) and the traffic groups' totals.
func (p *shardedPair) compare(t *testing.T, when string, keep func(Key) bool) {
	t.Helper()
	want, got := p.single.Snapshot(), p.shards.Snapshot()
	objects := func(s *Snapshot) map[Key]Stats {
		m := allStats(s)
		if keep != nil {
			maps.DeleteFunc(m, func(k Key, _ Stats) bool { return !keep(k) })
		}
		return m
	}
	if diff := cmp.Diff(objects(got), objects(want), cmpAddr); diff != "" {
		t.Fatalf("%s: objects (-shards +single):\n%s", when, diff)
	}
	if keep == nil {
		if diff := cmp.Diff(got.Exporters, want.Exporters, cmpAddr, cmp.Comparer(func(a, b []Interface) bool {
			return len(a) == len(b)
		})); diff != "" {
			t.Fatalf("%s: exporters (-shards +single):\n%s", when, diff)
		}
	}
	for _, g := range []uint32{1, 2, 3, 7} {
		if g1, g2 := got.GroupTotals(g), want.GroupTotals(g); g1 != g2 {
			t.Fatalf("%s: GroupTotals(%d) = %+v, want %+v", when, g, g1, g2)
		}
	}
}

// addRandom adds 40 random records in each of the first secs seconds,
// ticking and comparing (see compare) at the end of each.
func (p *shardedPair) addRandom(t *testing.T, secs int, keep func(Key) bool) {
	t.Helper()
	for sec := range secs {
		for range 40 {
			p.add(randomRecord(p.rng, sec))
		}
		p.tick(at(float64(sec + 1)))
		p.compare(t, fmt.Sprintf("second %d", sec+1), keep)
	}
}

// randomRecord draws a record between addresses of the test model's
// traffic groups (nested and overlapping ones included) and outside ones,
// with ports, flags, exporters and durations of every kind.
func randomRecord(rng *rand.Rand, sec int) *flow.Record {
	addrs := []string{
		"10.1.0.1", "10.1.0.2", "10.1.7.9", "10.1.2.5", "10.1.2.6", // servers, dmz inside servers
		"10.9.0.1",                   // INT, no group
		"192.168.1.1", "192.168.1.2", // wifi (another partition)
		"2001:db8:1::1", "2001:db8:1::2", "2001:db8:9::1", // v6 group, outside v6
		"203.0.113.5", "203.0.113.77", "198.51.100.1", // outside
	}
	pick := func() string { return addrs[rng.IntN(len(addrs))] }
	src, dst := pick(), pick()
	if netip.MustParseAddr(src).Is4() != netip.MustParseAddr(dst).Is4() {
		dst = src // keep families apart; src = dst is the LAND case
	}
	opts := []func(*flow.Record){
		ports(uint16([]int{53, 443, 40000, 51000}[rng.IntN(4)]), uint16([]int{80, 443, 123, 33333}[rng.IntN(4)])),
		counts(uint64(1+rng.IntN(50)), uint64(40+rng.IntN(5000))),
	}
	start := float64(sec) + rng.Float64()
	end := start
	if rng.IntN(4) == 0 {
		start -= float64(rng.IntN(40)) // long flows, some before the window
	}
	opts = append(opts, span(start, end))
	switch rng.IntN(4) {
	case 0:
		opts = append(opts, via(1, 2))
	case 1:
		opts = append(opts, via(3, 3))
	case 2:
		opts = append(opts, via(0, 1))
	}
	switch rng.IntN(5) {
	case 0:
		opts = append(opts, proto(flow.ProtoUDP, 0))
	case 1:
		opts = append(opts, proto(flow.ProtoTCP, flow.TCPAck))
	case 2:
		opts = append(opts, continued)
	}
	return rec(src, dst, opts...)
}

// TestShardsMergeExactly checks that the merged view of any number of
// shards equals one engine fed the same records: every object's current,
// average and peak rates and totals, the hosts' unique counts, the
// exporters, and the traffic group totals after objects expired as idle.
func TestShardsMergeExactly(t *testing.T) {
	for _, idle := range []time.Duration{30 * time.Second, DefaultConfig().Window} {
		for _, n := range []int{1, 2, 3, 8} {
			t.Run(fmt.Sprintf("idle %v/%d shards", idle, n), func(t *testing.T) { testShardsMergeExactly(t, idle, n) })
		}
	}
}

// testShardsMergeExactly is TestShardsMergeExactly with n shards and an
// idle timeout idle (the window at least: an object dropped then may
// still hold its oldest second).
func testShardsMergeExactly(t *testing.T, idle time.Duration, n int) {
	cfg := DefaultConfig()
	cfg.IdleTimeout = idle
	cfg.ExporterTimeout = cfg.IdleTimeout
	p := newShardedPair(t, cfg, n, uint64(n))
	compare := func(when string) { p.compare(t, when, nil) }
	p.addRandom(t, 25, nil)
	// One port keeps a traffic group and two interfaces alive
	// while their other ports go idle and are dropped, handing
	// what they counted to the group and interfaces in a shard.
	for sec := 25; sec < 60; sec++ {
		// A tick inside the second too, as serve's come every 100 ms:
		// a port dropped then may still hold its oldest second.
		p.tick(at(float64(sec) + 0.5))
		compare(fmt.Sprintf("second %d.5, one port", sec))
		p.add(rec("203.0.113.5", "10.1.0.1", ports(40000, 8443), proto(flow.ProtoUDP, 0), span(float64(sec)-2.5, float64(sec)+0.5), via(1, 2)))
		p.tick(at(float64(sec + 1)))
		compare(fmt.Sprintf("second %d, one port", sec+1))
	}
	// Quiet until every object expired: the totals stay.
	for sec := 61; sec < 100; sec++ {
		p.tick(at(float64(sec)))
	}
	if len(p.shards.Snapshot().Groups) != 0 || len(p.single.Snapshot().Groups) != 0 {
		t.Fatalf("groups still live after the idle timeout")
	}
	compare("after the idle timeout")
	var hosts int
	p.shards.Each(KindHost, func(*Object) { hosts++ })
	if hosts != 0 {
		t.Errorf("Each(hosts) gives %d after the idle timeout", hosts)
	}
}

// TestShardsMergePortCaps checks the traffic groups and interfaces of
// shards whose port objects are refused by their caps: a shard then
// counts the record on the group or interface itself, so the merge still
// equals one engine (whose ports the caps refuse differently).
func TestShardsMergePortCaps(t *testing.T) {
	cfg := DefaultConfig()
	cfg.IdleTimeout = 30 * 1e9
	cfg.ExporterTimeout = cfg.IdleTimeout
	cfg.MaxGroupPorts, cfg.MaxInterfacePorts = 2, 3
	for _, n := range []int{1, 3} {
		t.Run(fmt.Sprintf("%d shards", n), func(t *testing.T) {
			p := newShardedPair(t, cfg, n, 10+uint64(n))
			parents := func(k Key) bool { return k.Kind == KindGroup || k.Kind == KindInterface }
			p.addRandom(t, 20, parents)
			for sec := 21; sec < 70; sec++ {
				p.tick(at(float64(sec)))
			}
			p.compare(t, "after the idle timeout", parents)
		})
	}
}

// TestShardsHostCap shares the host cap out between the shards.
func TestShardsHostCap(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxHosts = 10
	sh, err := NewShards(cfg, 4, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	for i := range sh.Len() {
		if got := sh.Shard(i).cfg.MaxHosts; got != 3 {
			t.Errorf("shard %d holds %d hosts, want 3 (10 over 4, rounded up)", i, got)
		}
	}
}

// TestShardsSnapshotOnDemand: Merge builds no snapshot nobody asked for; a
// reader waits for the next Merge and gets its state.
func TestShardsSnapshotOnDemand(t *testing.T) {
	p := newShardedPair(t, DefaultConfig(), 2, 1)
	p.add(rec("203.0.113.5", "10.1.0.10"))
	p.single.Tick(at(1))
	for i := range p.shards.Len() {
		p.shards.Shard(i).Tick(at(1))
	}
	p.shards.Merge(at(1))
	if got := p.shards.snap.Load().Time; got.UnixNano() >= at(1) {
		t.Fatalf("Merge built a snapshot of %v nobody asked for", got)
	}
	got := make(chan *Snapshot)
	go func() { got <- p.shards.Snapshot() }()
	for !p.shards.wanted.Load() {
		time.Sleep(time.Millisecond)
	}
	p.shards.Merge(at(2))
	snap := <-got
	if snap.Time.UnixNano() != at(2) {
		t.Errorf("snapshot of %v, want the Merge at 2 s", snap.Time)
	}
	if len(snap.Hosts) != 1 || len(snap.Groups) != 1 {
		t.Errorf("snapshot holds %d hosts and %d groups, want 1 and 1", len(snap.Hosts), len(snap.Groups))
	}
	if again := p.shards.Snapshot(); again != snap {
		t.Error("a second reader in the same tick did not get the same snapshot")
	}
}
