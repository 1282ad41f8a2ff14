package replaytest

import (
	"net/netip"
	"strconv"
	"testing"
	"time"
)

// TestRunSyntheticFlood writes a one-second UDP flood to 10.1.1.1 and
// replays it under a host threshold below and above its rate: the capture
// and the replay round trip, and an event needs its policy.
func TestRunSyntheticFlood(t *testing.T) {
	var c Capture
	start := time.Unix(1_700_000_000, 0)
	for i := range 2000 {
		c.Add(Packet{
			Time: start.Add(time.Duration(i) * 500 * time.Microsecond),
			Src:  netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}), Dst: netip.MustParseAddr("10.1.1.1"),
			Proto: 17, SrcPort: uint16(1024 + i), DstPort: 53, Payload: 100,
		})
	}
	path := c.Write(t)
	config := func(threshold int) string {
		return `policies:
  - {id: 1, name: host, cid: 0, family: port_threshold, target: traffic_groups, object_type: TGRP+IP,
     threshold_type: packets_in, threshold: ` + itoa(threshold) + `, severity: 3, actions: []}
`
	}
	if got := Creates(Run(t, config(100), path), "threshold_exceeded"); len(got) != 1 || got[0].Str("ip") != "10.1.1.1" {
		t.Errorf("threshold 100 pps: CREATEs %v, want one for 10.1.1.1", got)
	}
	if got := Creates(Run(t, config(100000), path), ""); len(got) != 0 {
		t.Errorf("threshold 100000 pps: CREATEs %v, want none", got)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
