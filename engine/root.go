// Package engine builds the detection engine — the rate engine, the stage
// of every registered detector family, the alert engine and the pipeline
// that runs them — with the same code for serve and replay. The caller
// picks only the stores and where alert events go: serve hands it the
// database and the action dispatcher, replay an in-memory store and a
// printer.
package engine

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flowsentry/flowsentry/alert"
	"github.com/flowsentry/flowsentry/detect"
	_ "github.com/flowsentry/flowsentry/detect/all" // every detector family
	"github.com/flowsentry/flowsentry/model"
	"github.com/flowsentry/flowsentry/pipeline"
	"github.com/flowsentry/flowsentry/policy"
	"github.com/flowsentry/flowsentry/rates"
)

// Config is the part of the configuration the engine runs on.
type Config struct {
	// Rates configures the rate engine.
	Rates rates.Config
	// Pipeline configures the pipeline.
	Pipeline pipeline.Config
	// Alerts configures the alert lifecycle.
	Alerts alert.Config
	// Baselines configures baseline learning.
	Baselines detect.BaselineConfig
}

// Deps are the engine's dependencies: the stores and outputs that differ
// between serve and replay.
type Deps struct {
	// Model is the partitions, traffic groups and blacklists.
	Model *model.Holder
	// Policies returns the policies in force.
	Policies func() *policy.Set
	// AlertStore persists alerts.
	AlertStore alert.Store
	// Sink hears every alert transition after it is stored.
	Sink alert.Sink
	// BaselineStore persists baselines; nil keeps them in memory.
	BaselineStore detect.BaselineStore
	// LearnedStore persists what the families learn; nil keeps it in
	// memory.
	LearnedStore any
	// Samples keeps the sampled headers of attacked addresses; nil keeps
	// none.
	Samples detect.Watcher
	// Clock is the pipeline's clock in serve (nil: the wall clock).
	Clock func() int64
	// Record, when set, hears every tick right after the rates' merge,
	// while no shard runs (history.Recorder.Record); it must not block.
	Record func(now int64, objs *rates.Shards)
	// Registerer takes the metrics.
	Registerer prometheus.Registerer
	// Log is the logger.
	Log *slog.Logger
}

// Engine is the built detection engine.
type Engine struct {
	// Rates is the rate engine, one per shard and their merge (snapshots
	// for the API, replay's totals).
	Rates *rates.Shards
	// Alerts is the alert engine (the API reads alerts through it).
	Alerts *alert.Engine
	// Pipeline runs the stages; serve starts it, replay drives it.
	Pipeline *pipeline.Pipeline

	detectors []detect.Stage
}

// New builds every part and opens nothing.
func New(cfg Config, d Deps) (*Engine, error) {
	if err := cfg.Pipeline.Validate(); err != nil {
		return nil, fmt.Errorf("pipeline: %w", err)
	}
	n := cfg.Pipeline.ShardCount()
	re, err := rates.NewShards(cfg.Rates, n, d.Registerer)
	if err != nil {
		return nil, fmt.Errorf("rates: %w", err)
	}
	al, err := alert.New(cfg.Alerts, d.AlertStore, d.Sink, d.Log)
	if err != nil {
		return nil, err
	}
	if err := d.Registerer.Register(al); err != nil {
		return nil, err
	}
	dm, err := detect.NewMetrics(d.Registerer)
	if err != nil {
		return nil, err
	}
	deps := detect.Deps{
		Metrics:  dm,
		Policies: d.Policies, Objects: re, Observer: al,
		Baselines: cfg.Baselines, BaselineStore: d.BaselineStore, Log: d.Log,
		Samples: d.Samples, LearnedStore: d.LearnedStore,
	}
	// Each shard runs its rates, then the families' stages of a shard
	// over them.
	dets, stages, err := detect.Build(deps, n, func(i int) detect.Deps {
		sd := deps
		sd.Objects, sd.BaselineStore, sd.LearnedStore = re.Shard(i), nil, nil
		return sd
	})
	if err != nil {
		return nil, err
	}
	shards := make([][]pipeline.Stage, n)
	for i := range shards {
		shards[i] = []pipeline.Stage{re.Shard(i)}
		for _, s := range stages[i] {
			shards[i] = append(shards[i], s)
		}
	}
	tickers := []pipeline.Ticker{merger{re, d.Record}}
	for _, s := range dets {
		tickers = append(tickers, s)
	}
	// The alert engine's Tick reads no shard state: the shards resume
	// before it.
	pl, err := pipeline.New(cfg.Pipeline, d.Model, shards, tickers, []pipeline.Ticker{alertTicker{al}}, d.Clock, d.Registerer, d.Log)
	if err != nil {
		return nil, fmt.Errorf("pipeline: %w", err)
	}
	return &Engine{Rates: re, Alerts: al, Pipeline: pl, detectors: dets}, nil
}

// Start loads the open alerts and the detectors' saved state; the store
// must be open. The pipeline is started separately, after the consumers
// of alert events.
func (e *Engine) Start(ctx context.Context) error {
	if err := e.Alerts.Start(ctx); err != nil {
		return err
	}
	for _, s := range e.detectors {
		if err := s.Start(ctx); err != nil {
			return err
		}
	}
	return nil
}

// Stop saves the detectors' state and stops the alert engine; the
// pipeline must have stopped.
func (e *Engine) Stop() {
	for _, s := range e.detectors {
		s.Stop()
	}
	e.Alerts.Stop()
}

// Baselines returns the baselines every family has learned, as of their
// last save.
func (e *Engine) Baselines() []detect.Baseline {
	var out []detect.Baseline
	for _, s := range e.detectors {
		if b, ok := s.(interface{ Baselines() []detect.Baseline }); ok {
			out = append(out, b.Baselines()...)
		}
	}
	return out
}

// merger sums the shards' rates at each tick, before the detectors, and
// hands the sums to record when set.
type merger struct {
	s      *rates.Shards
	record func(int64, *rates.Shards)
}

func (m merger) SetModel(md *model.Model) { m.s.SetModel(md) }

func (m merger) Tick(now int64) {
	m.s.Merge(now)
	if m.record != nil {
		m.record(now, m.s)
	}
}

// alertTicker runs the alert engine's Tick after the detectors of a tick.
type alertTicker struct{ e *alert.Engine }

func (alertTicker) SetModel(*model.Model) {}
func (t alertTicker) Tick(now int64)      { t.e.Tick(time.Unix(0, now)) }
