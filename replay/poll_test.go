package replay

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/gopacket/gopacket/layers"
)

// TestRunPolls: with a poll interval, the sink is polled every interval of
// capture time between the seconds it advances to (through the quiet
// seconds after the traffic, not over the rest of a gap), and the records
// handed over before a poll or an advance hold the packets since the one
// before it, no others; the packets add up whatever the interval.
func TestRunPolls(t *testing.T) {
	// One flow, a packet every 100 ms from 0.05 s to 1.45 s, then
	// another flow's packet after a gap, at 30.5 s.
	var pkts []stamped
	for k := range 15 {
		at := 50*time.Millisecond + time.Duration(k)*100*time.Millisecond
		pkts = append(pkts, stamped{at, synPacket(t, "192.0.2.1", "198.51.100.1", 1000)})
	}
	pkts = append(pkts, stamped{30500 * time.Millisecond, synPacket(t, "192.0.2.2", "198.51.100.1", 1000)})
	path := filepath.Join(t.TempDir(), "polls.pcap")
	if err := os.WriteFile(path, writePcap(t, layers.LinkTypeRaw, pkts), 0o600); err != nil {
		t.Fatal(err)
	}
	base := tBase.UnixNano()
	// The seconds advanced to: 0 to 12 (the last packet's second, the
	// rates window and one more), 30 to 41, then the end, 16 s after the
	// last packet.
	var seconds []int64
	for s := range int64(13) {
		seconds = append(seconds, base+s*1e9)
	}
	for s := int64(30); s <= 41; s++ {
		seconds = append(seconds, base+s*1e9)
	}
	end := base + 46500*int64(time.Millisecond)
	for _, tc := range []struct {
		name     string
		interval time.Duration
		records  int
	}{
		{"none", 0, 3},
		{"100ms", 100 * time.Millisecond, 16},
		{"300ms", 300 * time.Millisecond, 7},
		{"a second is none", time.Second, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.PollInterval = tc.interval
			got, sink, err := replayFile(t, cfg, path)
			if err != nil {
				t.Fatal(err)
			}
			if got.Packets != 16 || got.Flows != 2 || len(sink.records) != tc.records {
				t.Errorf("%d records of %d flows, %d packets; want %d records of 2 flows, 16 packets",
					len(sink.records), got.Flows, got.Packets, tc.records)
			}
			if diff := cmp.Diff(sink.advances, append(seconds[:len(seconds):len(seconds)], end)); diff != "" {
				t.Errorf("Advance calls (-got +want):\n%s", diff)
			}
			var polls []int64
			if tc.interval > 0 && tc.interval < time.Second {
				for _, s := range seconds {
					for at := s + int64(tc.interval); at < s+1e9; at += int64(tc.interval) {
						polls = append(polls, at)
					}
				}
			}
			if diff := cmp.Diff(sink.polls, polls); diff != "" {
				t.Errorf("Poll calls (-got +want):\n%s", diff)
			}
			// The records handed over before each Poll or Advance hold the
			// packets since the previous one.
			from, prev := 0, int64(0)
			for j, cut := range sink.cuts {
				for _, r := range sink.records[from:cut] {
					if r.Start < prev || r.End >= sink.times[j] {
						t.Errorf("record of packets %v to %v handed over before %v, after %v",
							time.Unix(0, r.Start).Sub(tBase), time.Unix(0, r.End).Sub(tBase),
							time.Unix(0, sink.times[j]).Sub(tBase), time.Unix(0, prev).Sub(tBase))
					}
				}
				from, prev = cut, sink.times[j]
			}
		})
	}
}
