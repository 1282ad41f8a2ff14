package main

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkReplay measures replay throughput, in captured packets per
// second, through the whole replay path: pcap reading, the packet meter
// with its reports each second, the rates, the threshold detectors and the
// alert engine, on the capture's clock. The capture is the SYN flood of
// TestReplayFloods: 300,000 one-packet flows at 20,000 pps from 65,536
// sources to one host, then 8 s of background, with the TGRP and TGRP+IP
// policies of floodConfig. The target is 1 M packets/s on one core.
//
//	go test -run '^$' -bench BenchmarkReplay -benchmem -count=6 -cpu 1 ./cmd/flowsentry | tee new.txt
//	benchstat old.txt new.txt
//
// Profile with -cpuprofile cpu.out, then go tool pprof -top cpu.out.
func BenchmarkReplay(b *testing.B) {
	start := time.Date(2024, 3, 1, 10, 0, 0, 250_000_000, time.UTC)
	const flood, pps = 15 * time.Second, 20000
	capture := writeFloodCapture(b, start, []burst{
		{from: 0, to: flood, pps: pps, flags: 0x02, sources: 65536},
		{from: flood, to: flood + 8*time.Second},
	})
	packets := int(flood/time.Second)*pps + 80
	path := filepath.Join(b.TempDir(), "flowsentry.yaml")
	if err := os.WriteFile(path, []byte(floodConfig), 0o600); err != nil {
		b.Fatal(err)
	}
	cfg, err := loadConfig(path, overrides{})
	if err != nil {
		b.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	b.ReportAllocs()
	for b.Loop() {
		if err := runReplay(cfg, []string{capture}, io.Discard, io.Discard, log); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(packets*b.N)/b.Elapsed().Seconds(), "packets/s")
}
