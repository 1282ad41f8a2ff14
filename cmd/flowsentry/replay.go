package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/term"

	"github.com/flowsentry/flowsentry/api"
	"github.com/flowsentry/flowsentry/model"
	"github.com/flowsentry/flowsentry/pipeline"
	"github.com/flowsentry/flowsentry/rates"
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
	cfg, err := loadConfig(*configPath, overrides{})
	if err != nil {
		fmt.Fprintf(stderr, "flowsentry replay: %v\n", err)
		return 1
	}
	m, err := model.Build(cfg.Model)
	if err != nil {
		fmt.Fprintf(stderr, "flowsentry replay: %v\n", err)
		return 1
	}
	reg := prometheus.NewRegistry()
	holder := model.NewHolder(m)
	re, err := rates.New(cfg.Rates, reg)
	if err != nil {
		fmt.Fprintf(stderr, "flowsentry replay: rates: %v\n", err)
		return 1
	}
	pl, err := pipeline.New(cfg.Pipeline, holder, []pipeline.Stage{re}, nil, reg, log)
	if err != nil {
		fmt.Fprintf(stderr, "flowsentry replay: pipeline: %v\n", err)
		return 1
	}
	rp, err := replay.New(cfg.Replay, pl, log)
	if err != nil {
		fmt.Fprintf(stderr, "flowsentry replay: %v\n", err)
		return 1
	}
	var progress io.Writer
	if f, ok := stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		progress = stderr
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	enc := json.NewEncoder(stdout)
	for _, file := range fs.Args() {
		st, err := rp.Run(ctx, file, progress)
		if err != nil {
			fmt.Fprintf(stderr, "flowsentry replay: %v\n", err)
			return 1
		}
		if err := enc.Encode(statsLine(file, st)); err != nil {
			return 1
		}
	}
	for _, g := range api.TrafficGroups(holder.Load(), re.Snapshot()) {
		line := groupSummary{
			Type: "summary", TGrp: g.ID, TGrpName: g.Name, CID: g.CID,
			Flows:     g.Totals.Updates,
			PacketsIn: g.Totals.PacketsIn, PacketsOut: g.Totals.PacketsOut,
			BytesIn: g.Totals.BytesIn, BytesOut: g.Totals.BytesOut,
		}
		if err := enc.Encode(line); err != nil {
			return 1
		}
	}
	log.Debug("replay done")
	return 0
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
