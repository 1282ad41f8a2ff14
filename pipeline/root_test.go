package pipeline

import (
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/flowsentry/flowsentry/flow"
	"github.com/flowsentry/flowsentry/model"
)

// recorder is a stage (and a ticker) that logs what it is given.
type recorder struct {
	mu      sync.Mutex
	events  []string
	models  []*model.Model
	records []routed
}

// routed is a record as a shard got it.
type routed struct {
	src, dst netip.Addr
	id       uint16 // the record's source port
	own      model.Own
}

func (r *recorder) log(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, s)
}

func (r *recorder) SetModel(m *model.Model) {
	r.mu.Lock()
	r.models = append(r.models, m)
	r.mu.Unlock()
	r.log("model")
}
func (r *recorder) AddClass(rec *flow.Record, c *model.Class) {
	r.mu.Lock()
	r.records = append(r.records, routed{rec.Src, rec.Dst, rec.SrcPort, c.Own})
	r.mu.Unlock()
	r.log("record " + rec.Dst.String())
}
func (r *recorder) AddCounters(c *flow.IfCounters) { r.log("counters") }
func (r *recorder) Tick(now int64)                 { r.log("tick") }

func (r *recorder) snapshot() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.events...)
}

func batch(dsts ...string) *flow.Batch {
	b := flow.NewBatch()
	for _, d := range dsts {
		b.Records = append(b.Records, flow.Record{Dst: netip.MustParseAddr(d)})
	}
	return b
}

// newPipeline builds a pipeline with one shard per stage list.
func newPipeline(t *testing.T, cfg Config, m *model.Model, shards [][]Stage, tickers ...Ticker) (*Pipeline, *model.Holder, *prometheus.Registry) {
	t.Helper()
	holder := model.NewHolder(m)
	reg := prometheus.NewRegistry()
	p, err := New(cfg, holder, shards, tickers, nil, func() int64 { return 42 }, reg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return p, holder, reg
}

// TestAfterTickers: the Tickers that read no shard state tick after those
// that do, with the same model.
func TestAfterTickers(t *testing.T) {
	var order []string
	logTo := func(name string) *namedTicker { return &namedTicker{name: name, log: &order} }
	holder := model.NewHolder(model.New(nil, nil, nil))
	p, err := New(DefaultConfig(), holder, [][]Stage{{}}, []Ticker{logTo("merge"), logTo("detect")}, []Ticker{logTo("alerts")},
		nil, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	p.Advance(1)
	if got, want := fmtList(order), "[merge model detect model alerts model merge tick detect tick alerts tick]"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

type namedTicker struct {
	name string
	log  *[]string
}

func (n *namedTicker) SetModel(*model.Model) { *n.log = append(*n.log, n.name+" model") }
func (n *namedTicker) Tick(int64)            { *n.log = append(*n.log, n.name+" tick") }

func TestSynchronous(t *testing.T) {
	a, b, whole := &recorder{}, &recorder{}, &recorder{}
	p, holder, _ := newPipeline(t, DefaultConfig(), model.New(nil, nil, nil), [][]Stage{{a, b}}, whole)
	p.Advance(1)
	bt := batch("10.0.0.1", "10.0.0.2")
	bt.Counters = append(bt.Counters, flow.IfCounters{IfIndex: 3})
	p.Process(bt)
	holder.Store(model.New(nil, nil, nil)) // a reload
	p.Process(batch("10.0.0.3"))
	p.Advance(2)
	want := "[model tick record 10.0.0.1 record 10.0.0.2 counters model record 10.0.0.3 tick]"
	for _, r := range []*recorder{a, b} {
		if got := fmtList(r.snapshot()); got != want {
			t.Errorf("stage saw %s, want %s", got, want)
		}
	}
	if len(a.models) != 2 || a.models[1] != holder.Load() {
		t.Errorf("the reloaded model did not reach the stage")
	}
	if got, want := fmtList(whole.snapshot()), "[model tick model tick]"; got != want {
		t.Errorf("ticker saw %s, want %s", got, want)
	}
	if got := testutil.ToFloat64(p.m.records.WithLabelValues("0")); got != 3 {
		t.Errorf("records metric %v, want 3", got)
	}
}

// batchRecorder is a recorder that takes batches.
type batchRecorder struct{ recorder }

func (r *batchRecorder) AddBatch(rs []flow.Record, cs []model.Class) {
	e := "batch"
	for i := range rs {
		if cs[i].Own == 0 {
			e += " unowned"
		}
		e += " " + rs[i].Dst.String()
	}
	r.log(e)
}

// TestBatchStage: a BatchStage gets a shard's records in one AddBatch,
// in order and classified, and no AddClass; the other stages one
// AddClass a record.
func TestBatchStage(t *testing.T) {
	a, b := &recorder{}, &batchRecorder{}
	p, _, _ := newPipeline(t, DefaultConfig(), model.New(nil, nil, nil), [][]Stage{{a, b}})
	p.Advance(1)
	bt := batch("10.0.0.1", "10.0.0.2", "10.0.0.3")
	bt.Counters = append(bt.Counters, flow.IfCounters{IfIndex: 3})
	p.Process(bt)
	if got, want := fmtList(a.snapshot()), "[model tick record 10.0.0.1 record 10.0.0.2 record 10.0.0.3 counters]"; got != want {
		t.Errorf("stage saw %s, want %s", got, want)
	}
	if got, want := fmtList(b.snapshot()), "[model tick batch 10.0.0.1 10.0.0.2 10.0.0.3 counters]"; got != want {
		t.Errorf("batch stage saw %s, want %s", got, want)
	}
}

func fmtList(l []string) string {
	s := "["
	for i, e := range l {
		if i > 0 {
			s += " "
		}
		s += e
	}
	return s + "]"
}

// TestRouting sends records in both directions between internal hosts
// (traffic group 10.0.0.0/8) and outside addresses to 5 shards: every
// side in a traffic group reaches exactly one shard, the same for every
// record of that address; the record's own part reaches exactly one shard,
// the same for both directions of a session.
func TestRouting(t *testing.T) {
	m := model.New([]model.Partition{{CID: 0, Name: "default"}},
		[]model.TrafficGroup{{ID: 1, Name: "inside", CIDRs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}}}, nil)
	const n = 5
	recs := make([]*recorder, n)
	shards := make([][]Stage, n)
	for i := range recs {
		recs[i] = &recorder{}
		shards[i] = []Stage{recs[i]}
	}
	p, _, _ := newPipeline(t, DefaultConfig(), m, shards)
	addrs := []string{"10.0.0.1", "10.0.0.2", "10.9.8.7", "203.0.113.1", "198.51.100.9", "192.0.2.200", "::ffff:10.0.0.1"}
	b := flow.NewBatch()
	type pair struct{ src, dst netip.Addr }
	var sent []pair
	for _, s := range addrs {
		for _, d := range addrs {
			src, dst := netip.MustParseAddr(s), netip.MustParseAddr(d)
			b.Records = append(b.Records, flow.Record{Src: src, Dst: dst, SrcPort: uint16(len(sent))})
			sent = append(sent, pair{src.Unmap(), dst.Unmap()})
		}
	}
	p.Process(b)
	inside := func(a netip.Addr) bool { return len(m.GroupsOf(a)) > 0 }
	hostShard := map[netip.Addr]int{}
	sessionShard := map[[2]netip.Addr]int{}
	for id, pr := range sent {
		var srcOwners, dstOwners, recOwners []int
		for i, r := range recs {
			for _, got := range r.records {
				if got.id != uint16(id) {
					continue
				}
				if got.own&model.OwnSrc != 0 {
					srcOwners = append(srcOwners, i)
				}
				if got.own&model.OwnDst != 0 {
					dstOwners = append(dstOwners, i)
				}
				if got.own&model.OwnRecord != 0 {
					recOwners = append(recOwners, i)
				}
				if got.own == 0 {
					t.Errorf("%v→%v reached shard %d owning nothing", pr.src, pr.dst, i)
				}
			}
		}
		for _, side := range []struct {
			addr   netip.Addr
			owners []int
		}{{pr.src, srcOwners}, {pr.dst, dstOwners}} {
			want := 0
			if inside(side.addr) {
				want = 1
			}
			if len(side.owners) != want {
				t.Errorf("%v→%v: side %v owned by shards %v, want %d", pr.src, pr.dst, side.addr, side.owners, want)
				continue
			}
			if want == 1 {
				if s, ok := hostShard[side.addr]; ok && s != side.owners[0] {
					t.Errorf("host %v owned by shard %d and shard %d", side.addr, s, side.owners[0])
				}
				hostShard[side.addr] = side.owners[0]
			}
		}
		if len(recOwners) != 1 {
			t.Errorf("%v→%v: record owned by shards %v, want one", pr.src, pr.dst, recOwners)
			continue
		}
		key := [2]netip.Addr{pr.src, pr.dst}
		if pr.dst.Less(pr.src) {
			key = [2]netip.Addr{pr.dst, pr.src}
		}
		if s, ok := sessionShard[key]; ok && s != recOwners[0] {
			t.Errorf("the two directions of %v↔%v reach shards %d and %d", pr.src, pr.dst, s, recOwners[0])
		}
		sessionShard[key] = recOwners[0]
	}
	used := map[int]bool{}
	for _, s := range hostShard {
		used[s] = true
	}
	if len(used) < 2 {
		t.Errorf("every internal host went to one shard (%v): the hash does not spread", hostShard)
	}
}

func TestQueueFullAndStop(t *testing.T) {
	r := &recorder{}
	p, _, _ := newPipeline(t, Config{QueueLength: 2, TickInterval: time.Minute}, model.New(nil, nil, nil), [][]Stage{{r}})
	// Not started: the queue fills and refuses the third batch.
	if !p.Submit(batch("10.0.0.1")) || !p.Submit(batch("10.0.0.2")) {
		t.Fatal("the queue refused batches while it had room")
	}
	extra := batch("10.0.0.3")
	if p.Submit(extra) {
		t.Fatal("a full queue accepted a batch")
	}
	extra.Release()
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	p.Stop()
	p.Stop() // idempotent
	got := fmtList(r.snapshot())
	// Start ticks first (the queued batches count in it); Stop ticks once
	// more.
	if want := "[model record 10.0.0.1 record 10.0.0.2 tick tick]"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

// TestShardQueueFull fills one shard's queue: Submit refuses every batch
// (the collector holds back), and a part that still meets a full queue
// (a batch routed as the queue filled) is dropped and counted.
func TestShardQueueFull(t *testing.T) {
	m := model.New(nil, []model.TrafficGroup{{ID: 1, Name: "inside", CIDRs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}}, nil)
	a, b := &recorder{}, &recorder{}
	p, _, _ := newPipeline(t, Config{Shards: 2, QueueLength: 1, TickInterval: time.Minute}, m, [][]Stage{{a}, {b}})
	// Find one internal address per shard.
	var addr [2]string
	for i := 1; addr[0] == "" || addr[1] == ""; i++ {
		s := fmt.Sprintf("10.0.0.%d", i)
		addr[shardOf(netip.MustParseAddr(s), 2)] = s
	}
	if !p.Submit(batch(addr[0])) {
		t.Fatal("Submit refused the first batch")
	}
	if !p.Full() {
		t.Fatal("Full is false with shard 0's queue full")
	}
	refused := batch(addr[1])
	if p.Submit(refused) {
		t.Fatal("Submit took a batch while shard 0's queue was full")
	}
	refused.Release() // still the caller's
	racing := batch(addr[0], addr[0], addr[1])
	p.route(racing, (*shard).submit)
	racing.Release()
	if got := testutil.ToFloat64(p.m.dropped.WithLabelValues("0", "queue_full")); got != 2 {
		t.Errorf("dropped on shard 0 = %v, want 2", got)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	p.Stop()
	if len(a.records) != 1 || len(b.records) != 1 {
		t.Errorf("shards processed %d and %d records, want 1 and 1", len(a.records), len(b.records))
	}
}

func TestStopWithoutStart(t *testing.T) {
	p, _, _ := newPipeline(t, DefaultConfig(), nil, [][]Stage{{}})
	p.Stop()
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []Config{
		{QueueLength: 0, TickInterval: time.Second},
		{QueueLength: 1, TickInterval: time.Millisecond},
		{Shards: -1, QueueLength: 1, TickInterval: time.Second},
		{Shards: 65, QueueLength: 1, TickInterval: time.Second},
	} {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v validated", c)
		}
	}
}
