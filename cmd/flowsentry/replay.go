package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/term"

	"github.com/flowsentry/flowsentry/alert"
	"github.com/flowsentry/flowsentry/annotate"
	"github.com/flowsentry/flowsentry/api"
	"github.com/flowsentry/flowsentry/config"
	"github.com/flowsentry/flowsentry/engine"
	"github.com/flowsentry/flowsentry/model"
	"github.com/flowsentry/flowsentry/pipeline"
	"github.com/flowsentry/flowsentry/plugin"
	"github.com/flowsentry/flowsentry/replay"
)

// groupSummary is the JSON line replay prints per traffic group.
type groupSummary struct {
	Type       string `json:"type"`
	TGrp       uint32 `json:"tgrp"`
	TGrpName   string `json:"tgrp_name"`
	CID        uint32 `json:"cid"`
	Flows      uint64 `json:"flows"`
	PacketsIn  uint64 `json:"packets_in"`
	PacketsOut uint64 `json:"packets_out"`
	BytesIn    uint64 `json:"bytes_in"`
	BytesOut   uint64 `json:"bytes_out"`
}

// alertLine is the JSON line replay prints per alert event: the operation a
// plugin would be called with, and the alert in the FlowTraq JSON format.
type alertLine struct {
	Type  string         `json:"type"`
	Op    alert.Op       `json:"op"`
	Alert annotate.Alert `json:"alert"`
}

// clockSink remembers the capture clock replay advances the pipeline to,
// and commits the alert transitions of the ticks and polls it ran, so that
// replay's alert lines come in the pipeline's goroutine, in order, as they
// happen.
type clockSink struct {
	*pipeline.Pipeline
	alerts *alert.Engine
	last   int64
	// pollAt is the time of the Poll running; pollFn polls the pipeline
	// at it (made once: a closure per poll would allocate).
	pollAt int64
	pollFn func()
}

// Advance moves the pipeline's clock.
func (c *clockSink) Advance(now int64) {
	c.last = max(c.last, now)
	c.Pipeline.Advance(now)
	_ = c.alerts.Flush(context.Background()) // the memory store does not fail
}

// Poll polls the pipeline's detectors between two seconds, as serve's
// shards do every pipeline.poll_interval, and prints the alerts they found
// at once. The shards' detectors commit what they find as they poll, shard
// after shard; committed as one lot, the alerts of a poll come in the same
// order whatever the number of shards.
func (c *clockSink) Poll(now int64) {
	c.last = max(c.last, now)
	if c.pollFn == nil {
		c.pollFn = func() { c.Pipeline.Poll(c.pollAt) }
	}
	c.pollAt = now
	c.alerts.CommitAfter(c.pollFn)
	_ = c.alerts.Flush(context.Background()) // the memory store does not fail
}

// replayStats is the JSON line replay prints per file.
type replayStats struct {
	Type         string            `json:"type"`
	File         string            `json:"file"`
	Packets      uint64            `json:"packets"`
	Metered      uint64            `json:"metered"`
	Records      uint64            `json:"records"`
	Datagrams    map[string]uint64 `json:"datagrams"`
	DecodeErrors map[string]uint64 `json:"decode_errors"`
	Skipped      map[string]uint64 `json:"skipped"`
}

func replayCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: flowsentry replay [flags] FILE.pcap|FILE.pcapng ...")
		fs.PrintDefaults()
	}
	configPath := fs.String("config", "", "YAML configuration `file` (default: the embedded default)")
	logLevel := fs.String("log-level", "warn", "log `level`: debug, info, warn, error")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return 2
	}
	log, err := newLogger(stderr, *logLevel)
	if err != nil {
		fmt.Fprintf(stderr, "flowsentry replay: %v\n", err)
		return 2
	}
	f, err := loadConfig(*configPath, overrides{})
	if err == nil {
		err = runReplay(f, fs.Args(), stdout, stderr, log)
	}
	if err != nil {
		fmt.Fprintf(stderr, "flowsentry replay: %v\n", err)
		return 1
	}
	return 0
}

// runReplay replays files through the pipeline serve runs — rates,
// detectors and the alert engine — on the capture's clock, with nothing
// persisted and no plugin called: alert events are printed instead.
func runReplay(f *config.File, files []string, stdout, stderr io.Writer, log *slog.Logger) error {
	cfg := f.Config
	m, err := model.Build(cfg.Model)
	if err != nil {
		return err
	}
	holder := model.NewHolder(m)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	enc := json.NewEncoder(stdout)
	// The policies serve would run, checked as serve checks them.
	plugins, _ := plugin.Load(cfg.PluginDir)
	pm, err := preflight(ctx, f, holder, plugins, log)
	if err != nil {
		return err
	}
	// The engine serve runs, with nothing persisted: alert events are
	// printed instead of calling plugins. Replay runs its shards one after
	// the other in this goroutine, and any number of shards gives the same
	// output, so one per CPU would only add routing: unless the
	// configuration says how many, it takes one.
	ecfg := engineConfig(cfg)
	if ecfg.Pipeline.Shards == 0 {
		ecfg.Pipeline.Shards = 1
	}
	eng, err := engine.New(ecfg, engine.Deps{
		Model: holder, Policies: pm.Set, AlertStore: alert.NewMemStore(0),
		Sink: alert.SinkFunc(func(ev alert.Event) {
			_ = enc.Encode(alertLine{Type: "alert", Op: ev.Op, Alert: annotate.Alert(ev.Alert)})
		}),
		Registerer: prometheus.NewRegistry(), Log: log,
	})
	if err != nil {
		return err
	}
	if err := eng.Start(ctx); err != nil {
		return err
	}
	defer eng.Stop()
	re, pl := eng.Rates, eng.Pipeline
	clock := &clockSink{Pipeline: pl, alerts: eng.Alerts}
	rcfg := cfg.Replay
	rcfg.RatesWindow = cfg.Rates.Window
	rcfg.PollInterval = cfg.Pipeline.PollInterval
	rp, err := replay.New(rcfg, clock, log)
	if err != nil {
		return err
	}
	var progress io.Writer
	if f, ok := stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		progress = stderr
	}
	for _, file := range files {
		st, err := rp.Run(ctx, file, progress)
		if err != nil {
			return err
		}
		if err := enc.Encode(statsLine(file, st)); err != nil {
			return err
		}
	}
	// The totals are those at the end of the captures, counting the rate
	// objects dropped as idle on the way (files apart in time, long gaps);
	// then the clock moves past the quiet period so that every alert still
	// open ends with its DELETE.
	re.Publish() // replay drives the merges: take the last one's state
	snap := re.Snapshot()
	if clock.last != 0 {
		// An UPDATE may be due first; the quiet period runs from it.
		clock.Advance(clock.last + int64(cfg.Alerts.UpdateInterval))
		clock.Advance(clock.last + int64(cfg.Alerts.QuietPeriod+time.Second))
	}
	for _, g := range api.TrafficGroups(holder.Load(), snap) {
		t := snap.GroupTotals(g.ID)
		line := groupSummary{
			Type: "summary", TGrp: g.ID, TGrpName: g.Name, CID: g.CID,
			Flows:     t.Updates,
			PacketsIn: t.PacketsIn, PacketsOut: t.PacketsOut,
			BytesIn: t.BytesIn, BytesOut: t.BytesOut,
		}
		if err := enc.Encode(line); err != nil {
			return err
		}
	}
	return nil
}

func statsLine(file string, st replay.Stats) replayStats {
	dg := make(map[string]uint64, len(st.Datagrams))
	for src, n := range st.Datagrams {
		dg[src.String()] = n
	}
	return replayStats{
		Type: "replay", File: file, Packets: st.Packets, Metered: st.Metered, Records: st.Records,
		Datagrams: dg, DecodeErrors: orEmpty(st.DecodeErrors), Skipped: orEmpty(st.Skipped),
	}
}

func orEmpty(m map[string]uint64) map[string]uint64 {
	if m == nil {
		return map[string]uint64{}
	}
	return m
}
