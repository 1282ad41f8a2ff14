// Package pipeline runs the stages that follow the collector — today the
// rate engine, later the detectors and the alert engine — over batches of
// flow records, in one goroutine, with the same code for serve (real clock,
// batches from the collector through a bounded queue) and replay (virtual
// clock, batches handed over synchronously).
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

// Stage is one step of the pipeline. Every method is called from the
// pipeline goroutine only, so a stage needs no locking for its own state.
type Stage interface {
	// SetModel hands the stage a new model snapshot (at start and after
	// each reload), before any record that was classified with it.
	SetModel(m *model.Model)
	// Add processes one record. The record is only valid during the call.
	Add(r *flow.Record)
	// AddCounters processes one interface counter sample.
	AddCounters(c *flow.IfCounters)
	// Tick tells the stage that time is now (Unix ns): windows close,
	// rates and detectors are evaluated.
	Tick(now int64)
}

// Pipeline feeds batches to its stages. Submit is safe for concurrent use;
// Process and Advance are for a single caller that drives the pipeline
// synchronously (replay) and must not be mixed with Start.
type Pipeline struct {
	cfg    Config
	model  *model.Holder
	stages []Stage
	log    *slog.Logger
	m      *metrics
	now    func() int64

	queue   chan *flow.Batch
	current *model.Model

	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

// New builds a pipeline over stages, which are called in order. now is the
// clock used by Start (nil means the wall clock); replay does not use it.
func New(cfg Config, holder *model.Holder, stages []Stage, now func() int64, reg prometheus.Registerer, log *slog.Logger) (*Pipeline, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if now == nil {
		now = func() int64 { return time.Now().UnixNano() }
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	return &Pipeline{
		cfg:    cfg,
		model:  holder,
		stages: stages,
		log:    log,
		m:      m,
		now:    now,
		queue:  make(chan *flow.Batch, cfg.QueueLength),
	}, nil
}

// Submit queues a batch without blocking. It returns false when the queue
// is full; the caller then still owns the batch.
func (p *Pipeline) Submit(b *flow.Batch) bool {
	select {
	case p.queue <- b:
		p.m.queued.Inc()
		return true
	default:
		return false
	}
}

// Start runs the pipeline goroutine: it drains the queue and ticks the
// stages every Config.TickInterval on the clock given to New.
func (p *Pipeline) Start() error {
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	p.done = make(chan struct{})
	go p.run(ctx)
	return nil
}

// Stop stops the goroutine after processing every batch already queued and
// ticking once more. It is idempotent and safe when Start never ran. The
// producers (the collector) must be stopped first.
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
	p.Advance(p.now())
	t := time.NewTicker(p.cfg.TickInterval)
	defer t.Stop()
	for {
		select {
		case b := <-p.queue:
			p.m.queued.Dec()
			p.Process(b)
		case <-t.C:
			p.Advance(p.now())
		case <-ctx.Done():
			for {
				select {
				case b := <-p.queue:
					p.m.queued.Dec()
					p.Process(b)
				default:
					p.Advance(p.now())
					return
				}
			}
		}
	}
}

// Process runs every record and counter sample of b through the stages and
// releases b.
func (p *Pipeline) Process(b *flow.Batch) {
	p.refreshModel()
	start := time.Now()
	for i := range b.Records {
		for _, s := range p.stages {
			s.Add(&b.Records[i])
		}
	}
	for i := range b.Counters {
		for _, s := range p.stages {
			s.AddCounters(&b.Counters[i])
		}
	}
	p.m.records.Add(float64(len(b.Records)))
	p.m.batchSeconds.Observe(time.Since(start).Seconds())
	b.Release()
}

// Advance ticks every stage at now (Unix ns).
func (p *Pipeline) Advance(now int64) {
	p.refreshModel()
	for _, s := range p.stages {
		s.Tick(now)
	}
}

// refreshModel hands a reloaded model to the stages; one atomic load per
// batch when nothing changed.
func (p *Pipeline) refreshModel() {
	m := p.model.Load()
	if m == p.current {
		return
	}
	p.current = m
	for _, s := range p.stages {
		s.SetModel(m)
	}
}
