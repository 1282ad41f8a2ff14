package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowsentry/flowsentry/internal/replaytest"
	"github.com/flowsentry/flowsentry/internal/testcaptures"
)

// pollConfig is a DDoS flood policy of 1000 pps on the default internal
// group, with the pipeline's shards and poll interval set.
func pollConfig(shards int, poll time.Duration) string {
	return fmt.Sprintf(`pipeline:
  shards: %d
  poll_interval: %s
policies:
  - {id: 1, name: flood, cid: 0, family: ddos_flood, target: traffic_groups, object_type: TGRP, threshold: 1000, severity: 5, actions: []}
`, shards, poll)
}

// shortFlood writes a capture of background traffic and a UDP flood of
// packets packets from 256 sources to 10.1.1.1, spread evenly over
// 0.8 s from 0.6 s to 1.4 s after a whole second: half of it in each
// capture second. It returns the path and the flood's start and end.
func shortFlood(t *testing.T, packets int) (path string, from, to time.Time) {
	t.Helper()
	base := time.Unix(1_700_000_000, 0)
	from, to = base.Add(600*time.Millisecond), base.Add(1400*time.Millisecond)
	var c replaytest.Capture
	// Background: a DNS query and answer every 100 ms for 4 s.
	for i := range 40 {
		at := base.Add(time.Duration(i) * 100 * time.Millisecond)
		c.Add(replaytest.Packet{Time: at, Src: netip.MustParseAddr("10.1.1.20"), Dst: netip.MustParseAddr("192.0.2.53"),
			Proto: 17, SrcPort: 40000, DstPort: 53, Payload: 40},
			replaytest.Packet{Time: at.Add(5 * time.Millisecond), Src: netip.MustParseAddr("192.0.2.53"), Dst: netip.MustParseAddr("10.1.1.20"),
				Proto: 17, SrcPort: 53, DstPort: 40000, Payload: 120})
	}
	step := to.Sub(from) / time.Duration(packets)
	for i := range packets {
		c.Add(replaytest.Packet{
			Time: from.Add(time.Duration(i) * step),
			Src:  netip.AddrFrom4([4]byte{198, 18, byte(i % 16), byte(i / 16 % 16)}), Dst: netip.MustParseAddr("10.1.1.1"),
			Proto: 17, SrcPort: uint16(20000 + i%16), DstPort: 9999, Payload: 200,
		})
	}
	// Packets may interleave: the capture is written in time order.
	pkts := c.Packets
	for i := 1; i < len(pkts); i++ {
		for j := i; j > 0 && pkts[j].Time.Before(pkts[j-1].Time); j-- {
			pkts[j], pkts[j-1] = pkts[j-1], pkts[j]
		}
	}
	return c.Write(t), from, to
}

// replayLines replays files in-process under config and returns the alert
// lines it printed.
func replayLines(t testing.TB, config string, files ...string) []string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "flowsentry.yaml")
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := loadConfig(path, overrides{})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := runReplay(cfg, files, &out, io.Discard, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		if strings.HasPrefix(l, `{"type":"alert"`) {
			lines = append(lines, l)
		}
	}
	return lines
}

// TestReplayPollsShortFlood: a flood shorter than a second that straddles
// a capture-second boundary, above the threshold over the trailing second
// but below it within either capture second, is found in replay as serve
// finds it, at a poll within 300 ms of its end, whatever the number of
// shards; the same flood below the threshold raises nothing, and without
// polls (poll_interval 0) replay sees only the capture seconds and misses
// it.
func TestReplayPollsShortFlood(t *testing.T) {
	const poll = 100 * time.Millisecond
	for _, tc := range []struct {
		name    string
		packets int // over 0.8 s: the trailing second's count
		poll    time.Duration
		alert   bool
	}{
		{"1.25x threshold", 1250, poll, true},
		{"0.9x threshold", 900, poll, false},
		{"1.25x threshold without polls", 1250, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path, _, to := shortFlood(t, tc.packets)
			var first []string
			for _, shards := range []int{1, 3} {
				lines := replayLines(t, pollConfig(shards, tc.poll), path)
				if first == nil {
					first = lines
				} else if strings.Join(lines, "\n") != strings.Join(first, "\n") {
					t.Errorf("%d shards printed\n%s\n1 shard printed\n%s", shards, strings.Join(lines, "\n"), strings.Join(first, "\n"))
				}
			}
			var creates []map[string]any
			for _, l := range first {
				var v struct {
					Op    string         `json:"op"`
					Alert map[string]any `json:"alert"`
				}
				if err := json.Unmarshal([]byte(l), &v); err != nil {
					t.Fatalf("not a JSON line: %q", l)
				}
				if v.Op == "CREATE" {
					creates = append(creates, v.Alert)
				}
			}
			if !tc.alert {
				if len(creates) != 0 {
					t.Errorf("alerts raised:\n%s", strings.Join(first, "\n"))
				}
				return
			}
			if len(creates) != 1 {
				t.Fatalf("%d CREATEs, want 1:\n%s", len(creates), strings.Join(first, "\n"))
			}
			a := creates[0]
			if typ, _ := a["alert_type"].(string); !strings.HasPrefix(typ, "ddos") || a["target_ip"] != "10.1.1.1" {
				t.Errorf("CREATE %v, want a ddos alert on 10.1.1.1", a)
			}
			at, _ := a["earliest_utc"].(float64)
			if end := float64(to.UnixNano()) / 1e9; at > end+0.3 {
				t.Errorf("alert created at %.3f, %.3f s after the flood ended; serve polls every 100 ms", at, at-end)
			}
		})
	}
}

// TestReplayPollsShardsAgree: floods on eight hosts cross the threshold at
// the same poll, on different shards; the alerts of the poll come in the
// same order, with the same IDs, whatever the number of shards (the alert
// engine commits the alerts of a poll as one lot).
func TestReplayPollsShardsAgree(t *testing.T) {
	base := time.Unix(1_700_000_000, 0)
	var c replaytest.Capture
	for i := range 2000 {
		at := base.Add(600*time.Millisecond + time.Duration(i)*400*time.Microsecond)
		for d := 1; d <= 8; d++ {
			c.Add(replaytest.Packet{Time: at, Src: netip.AddrFrom4([4]byte{198, 18, byte(i % 16), byte(i / 16 % 16)}),
				Dst: netip.AddrFrom4([4]byte{10, 1, 1, byte(d)}), Proto: 17, SrcPort: uint16(20000 + i%16), DstPort: 9999, Payload: 200})
		}
	}
	path := c.Write(t)
	one := replayLines(t, pollConfig(1, 100*time.Millisecond), path)
	if len(one) < 16 {
		t.Fatalf("%d alert lines, want a CREATE and a DELETE for each of the 8 hosts:\n%s", len(one), strings.Join(one, "\n"))
	}
	for _, n := range []int{2, 3, 5} {
		t.Run(fmt.Sprintf("%d shards", n), func(t *testing.T) {
			got := replayLines(t, pollConfig(n, 100*time.Millisecond), path)
			if strings.Join(got, "\n") != strings.Join(one, "\n") {
				t.Errorf("%d shards printed\n%s\n1 shard printed\n%s", n, strings.Join(got, "\n"), strings.Join(one, "\n"))
			}
		})
	}
}

// BenchmarkReplayPoll measures what polling every 100 ms of capture time
// costs against polling never (poll_interval 0: a tick per capture second
// only), on the SYN flood of BenchmarkReplay (one-packet flows) and on
// shared captures with long flows, whose meter reports up to ten times as
// many interim records.
//
//	go test -run '^$' -bench BenchmarkReplayPoll -benchmem -count=6 -cpu 1 ./cmd/flowsentry
func BenchmarkReplayPoll(b *testing.B) {
	start := time.Date(2024, 3, 1, 10, 0, 0, 250_000_000, time.UTC)
	captures := []struct{ name, path string }{
		{"synthetic-synflood", writeFloodCapture(b, start, []burst{
			{from: 0, to: 15 * time.Second, pps: 20000, flags: 0x02, sources: 65536},
			{from: 15 * time.Second, to: 23 * time.Second},
		})},
		{"pkt.TCP.synflood.spoofed", testcaptures.Path(b, "attacks/ddos/pkt.TCP.synflood.spoofed.pcap")},
		{"amp.UDP.bacnet.IOT.37810", testcaptures.Path(b, "attacks/ddos/amp.UDP.bacnet.IOT.37810.pcapng")},
	}
	log := slog.New(slog.DiscardHandler)
	for _, c := range captures {
		for _, poll := range []time.Duration{0, 100 * time.Millisecond} {
			b.Run(fmt.Sprintf("%s/poll=%s", c.name, poll), func(b *testing.B) {
				path := filepath.Join(b.TempDir(), "flowsentry.yaml")
				if err := os.WriteFile(path, []byte(pollConfig(1, poll)), 0o600); err != nil {
					b.Fatal(err)
				}
				cfg, err := loadConfig(path, overrides{})
				if err != nil {
					b.Fatal(err)
				}
				b.ReportAllocs()
				for b.Loop() {
					if err := runReplay(cfg, []string{c.path}, io.Discard, io.Discard, log); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
