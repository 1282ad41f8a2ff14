package pipeline

import (
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

// recorder is a stage that logs what it is given.
type recorder struct {
	mu     sync.Mutex
	events []string
	models []*model.Model
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
func (r *recorder) Add(rec *flow.Record)           { r.log("record " + rec.Dst.String()) }
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

func newPipeline(t *testing.T, cfg Config, stages ...Stage) (*Pipeline, *model.Holder, *prometheus.Registry) {
	t.Helper()
	holder := model.NewHolder(model.New(nil, nil, nil))
	reg := prometheus.NewRegistry()
	p, err := New(cfg, holder, stages, func() int64 { return 42 }, reg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return p, holder, reg
}

func TestSynchronous(t *testing.T) {
	a, b := &recorder{}, &recorder{}
	p, holder, reg := newPipeline(t, DefaultConfig(), a, b)
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
	if got := testutil.ToFloat64(p.m.records); got != 3 {
		t.Errorf("records metric %v, want 3", got)
	}
	_ = reg
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

func TestQueueFullAndStop(t *testing.T) {
	r := &recorder{}
	p, _, _ := newPipeline(t, Config{QueueLength: 2, TickInterval: time.Minute}, r)
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
	// Start ticks first, Stop drains the queue and ticks once more.
	if want := "[model tick record 10.0.0.1 record 10.0.0.2 tick]"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

func TestStopWithoutStart(t *testing.T) {
	p, _, _ := newPipeline(t, DefaultConfig())
	p.Stop()
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []Config{{QueueLength: 0, TickInterval: time.Second}, {QueueLength: 1, TickInterval: time.Millisecond}} {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v validated", c)
		}
	}
}
