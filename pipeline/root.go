// Package pipeline runs the stages that follow the collector over flow
// records, on every core: records are classified once, routed to shards
// that own their state, and at each tick the shards stop while the stages
// of the whole (the merge of the shards' rates, the detectors, the alert
// engine) run. Serve and replay run the same code: serve with goroutines,
// a bounded queue per shard and the wall clock; replay synchronously, on
// the capture's clock.
//
// # Classification
//
// Submit (or Process) classifies each record once with the current model
// (model.Class: the traffic groups, partitions' INT blocks and blacklists
// of each side); every stage reads the class and none repeats a prefix
// look-up. A batch of a shard carries the model it was classified with,
// and a shard hands a stage a new model before the first record
// classified with it.
//
// # Routing
//
// State is owned by one shard, chosen by a hash of an address:
//
//   - A side of a record (source or destination) that is in a traffic
//     group belongs to the shard of its address: that shard counts the
//     side's traffic groups, group ports and host. So every record of an
//     internal host reaches the shard holding the host's state, in both
//     directions.
//   - The record as a whole (its exporter and interfaces, and state kept
//     per session) belongs to one shard: the shard of the side in a
//     traffic group when one side is, else the shard of the lower of the
//     two addresses. Both directions of a session between an internal and
//     an external address, or between two addresses of the same kind,
//     reach the same shard.
//   - An interface counter sample belongs to the shard of its exporter.
//
// A record therefore goes to one shard, or to two when its two sides
// belong to different shards; each gets it with model.Class.Own saying
// which parts it counts. Traffic groups, ports, exporters and interfaces
// are counted in part by several shards and merged at the tick (see
// rates.Shards), exactly.
//
// # Stages
//
// A shard hands its part of a batch to each stage in turn, the whole part
// to one stage before the next (the stages are independent): a stage's
// code and state stay in the processor's caches for the part's records.
// A BatchStage takes the part in one call, so that it can ask for the
// memory of records ahead while it works on one; the others get one
// AddClass a record.
//
// # Ticks
//
// Every TickInterval the coordinator hands each shard the time; a shard
// first takes the batches queued before it, ticks its stages, and waits
// while the Tickers run over the state of every shard; then all resume. A
// full shard queue drops the batch and counts its records
// (flowsentry_pipeline_dropped_total); Submit refuses a batch, before
// classifying it, when any shard's queue is full: the collector then holds
// back (the socket buffers, the kernel drops what it cannot hold) rather
// than feed the other shards while the slow one drops its part.
package pipeline

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flowsentry/flowsentry/flow"
	"github.com/flowsentry/flowsentry/model"
)

// Stage is a step of a shard. Every method is called from the shard's
// goroutine only (or replay's), so a stage needs no locking for its own
// state.
type Stage interface {
	// SetModel hands the stage a new model snapshot (at start and after
	// each reload), before any record classified with it.
	SetModel(m *model.Model)
	// AddClass processes one record, classified as c with the last model
	// handed to SetModel. Both are only valid during the call.
	AddClass(r *flow.Record, c *model.Class)
	// AddCounters processes one interface counter sample.
	AddCounters(c *flow.IfCounters)
	// Tick tells the stage that time is now (Unix ns): windows close.
	Tick(now int64)
}

// BatchStage is a Stage that takes a shard's batch of records at once,
// so that it can ask for the memory of the records ahead while it works
// on one. AddBatch(rs, cs) must do what AddClass does for each record of
// rs in order, cs[i] classifying rs[i]; both are only valid during the
// call.
type BatchStage interface {
	Stage
	AddBatch(rs []flow.Record, cs []model.Class)
}

// Poller is a Stage that also wants the time between ticks: in serve a
// shard calls Poll every Config.PollInterval, between batches, without
// stopping the other shards; replay calls Pipeline.Poll every poll interval
// of capture time, after handing over the records of the interval. A
// detector uses it to report an attack as soon as it crosses its threshold
// rather than at the next tick.
type Poller interface {
	Stage
	// Poll tells the stage that time is now (Unix ns).
	Poll(now int64)
}

// Ticker is a step of the whole: it runs at each tick, after every shard
// ticked and while no shard runs, so it may read the shards' state.
type Ticker interface {
	// SetModel hands the ticker a new model snapshot.
	SetModel(m *model.Model)
	// Tick evaluates at now (Unix ns).
	Tick(now int64)
}

// Pipeline routes batches to its shards and ticks them with its Tickers.
// Submit is safe for concurrent use; Process, Poll and Advance are for a
// single caller that drives the pipeline synchronously (replay) and must
// not be mixed with Start.
type Pipeline struct {
	cfg     Config
	model   *model.Holder
	shards  []*shard
	tickers []Ticker
	after   []Ticker
	log     *slog.Logger
	m       *metrics
	now     func() int64
	current *model.Model // the Tickers'

	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

// New builds a pipeline of one shard per element of shards, each running
// its stages in order; tickers run in order at each tick while the shards
// wait, then after, which read no shard state (the alert engine), once
// they resumed. now is the clock used by Start (nil means the wall clock);
// replay does not use it.
func New(cfg Config, holder *model.Holder, shards [][]Stage, tickers, after []Ticker, now func() int64, reg prometheus.Registerer, log *slog.Logger) (*Pipeline, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if len(shards) == 0 || len(shards) > maxShards {
		return nil, errShardCount(len(shards))
	}
	if now == nil {
		now = func() int64 { return time.Now().UnixNano() }
	}
	m, err := newMetrics(reg, len(shards))
	if err != nil {
		return nil, err
	}
	p := &Pipeline{cfg: cfg, model: holder, tickers: tickers, after: after, log: log, m: m, now: now}
	for i, stages := range shards {
		p.shards = append(p.shards, newShard(i, stages, cfg.QueueLength, m))
	}
	return p, nil
}

// Start runs a goroutine per shard and the coordinator, which ticks them
// every Config.TickInterval on the clock given to New.
func (p *Pipeline) Start() error {
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	p.done = make(chan struct{})
	for _, s := range p.shards {
		go s.run(p.model, p.cfg.PollInterval, p.now)
	}
	go p.run(ctx)
	return nil
}

// Stop stops the goroutines after every shard processed the batches
// already queued and everything ticked once more. It is idempotent and
// safe when Start never ran. The producers (the collector) must be
// stopped first.
func (p *Pipeline) Stop() {
	p.once.Do(func() {
		if p.cancel == nil {
			return
		}
		p.cancel()
		<-p.done
	})
}

func (p *Pipeline) run(ctx context.Context) {
	defer close(p.done)
	// Stages learn the time before the first record arrives.
	p.tickAll(p.now(), false)
	t := time.NewTicker(p.cfg.TickInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			p.tickAll(p.now(), false)
		case <-ctx.Done():
			p.tickAll(p.now(), true)
			return
		}
	}
}

// tickAll ticks every shard at now, then the Tickers while the shards
// wait; last makes the shards take their whole queue first and exit.
func (p *Pipeline) tickAll(now int64, last bool) {
	for _, s := range p.shards {
		s.tick <- tickMsg{now: now, last: last}
	}
	for _, s := range p.shards {
		<-s.ack
	}
	p.tickWhole(now)
	for _, s := range p.shards {
		s.resume <- struct{}{}
	}
	p.tickAfter(now)
	if last {
		for _, s := range p.shards {
			<-s.exited
		}
	}
}

// Process routes every record and counter sample of b to the shards and
// runs them at once, in the caller's goroutine, and releases b.
func (p *Pipeline) Process(b *flow.Batch) {
	p.route(b, func(s *shard, pt *part) { s.process(pt) })
	b.Release()
}

// Advance ticks every shard at now (Unix ns), then the Tickers, in the
// caller's goroutine.
func (p *Pipeline) Advance(now int64) {
	for _, s := range p.shards {
		s.advance(now, p.model)
	}
	p.tickWhole(now)
	p.tickAfter(now)
}

// Poll polls every shard's Pollers at now (Unix ns), shard after shard,
// in the caller's goroutine: what serve's shards do every
// Config.PollInterval, without the Tickers. A shard that has seen neither
// a batch nor a tick yet is not polled, as in serve.
func (p *Pipeline) Poll(now int64) {
	for _, s := range p.shards {
		s.poll(now)
	}
}

// tickWhole runs the Tickers that read the shards, handing every Ticker a
// reloaded model first.
func (p *Pipeline) tickWhole(now int64) {
	if m := p.model.Load(); m != p.current {
		p.current = m
		for _, t := range p.tickers {
			t.SetModel(m)
		}
		for _, t := range p.after {
			t.SetModel(m)
		}
	}
	start := time.Now()
	for _, t := range p.tickers {
		t.Tick(now)
	}
	p.m.tickSeconds.Observe(time.Since(start).Seconds())
}

// tickAfter runs the Tickers that read no shard state.
func (p *Pipeline) tickAfter(now int64) {
	for _, t := range p.after {
		t.Tick(now)
	}
}
