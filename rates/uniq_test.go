package rates

import (
	"fmt"
	"math"
	"testing"

	"github.com/flowsentry/flowsentry/flow"
	"github.com/google/go-cmp/cmp"
)

// uniqCounts are a host's unique-count estimates of the last window
// (Cur × Window), rounded.
type uniqCounts struct{ Local, Remote int }

func uniqOf(t *testing.T, e *Engine, k Key) uniqCounts {
	t.Helper()
	s, ok := allStats(e.Snapshot())[k]
	if !ok {
		t.Fatalf("no object %+v", k)
	}
	w := float64(e.window)
	return uniqCounts{int(math.Round(s.Cur.UniqLocalEndpoint * w)), int(math.Round(s.Cur.UniqRemoteCIDR * w))}
}

// TestUniqDefinition checks what counts as a local endpoint and a remote
// CIDR, on small sets that the estimator counts exactly.
func TestUniqDefinition(t *testing.T) {
	cases := []struct {
		name string
		recs []*flow.Record
		want map[Key]uniqCounts
	}{
		{
			name: "local is the same group or the partition's INT; remote is per /24",
			recs: []*flow.Record{
				rec("10.1.0.10", "10.1.0.20"),    // same group
				rec("10.1.0.10", "10.1.0.20"),    // again
				rec("10.1.0.10", "10.1.2.3"),     // same group (and another)
				rec("10.1.0.10", "10.5.5.5"),     // INT, no group
				rec("10.1.0.10", "10.1.0.10"),    // itself
				rec("10.1.0.10", "203.0.113.5"),  // remote block 1
				rec("10.1.0.10", "203.0.113.77"), // remote block 1
				rec("10.1.0.10", "198.51.100.1"), // remote block 2
				rec("10.1.0.10", "192.168.1.1"),  // other partition's group
			},
			want: map[Key]uniqCounts{
				kHost(1, "10.1.0.10"):   {Local: 3, Remote: 3},
				kHost(1, "10.1.0.20"):   {}, // received only
				kHost(1, "10.1.2.3"):    {},
				kHost(2, "10.1.2.3"):    {},
				kHost(7, "192.168.1.1"): {},
			},
		},
		{
			name: "a host in two groups has local peers per group",
			recs: []*flow.Record{
				rec("10.1.2.3", "10.1.0.20"), // TGRP 1: same group; TGRP 2: INT
				rec("10.1.2.3", "10.1.2.4"),  // both groups
				rec("10.1.2.3", "203.0.113.5"),
			},
			want: map[Key]uniqCounts{
				kHost(1, "10.1.2.3"):  {Local: 2, Remote: 1},
				kHost(2, "10.1.2.3"):  {Local: 2, Remote: 1},
				kHost(1, "10.1.0.20"): {},
				kHost(1, "10.1.2.4"):  {},
				kHost(2, "10.1.2.4"):  {},
			},
		},
		{
			name: "partition without INT blocks: only the group is local",
			recs: []*flow.Record{
				rec("192.168.1.1", "192.168.1.2"),
				rec("192.168.1.1", "10.1.0.1"),
				rec("192.168.1.1", "10.1.0.2"),
			},
			want: map[Key]uniqCounts{
				kHost(7, "192.168.1.1"): {Local: 1, Remote: 1},
				kHost(7, "192.168.1.2"): {},
				kHost(1, "10.1.0.1"):    {},
				kHost(1, "10.1.0.2"):    {},
			},
		},
		{
			name: "IPv6 remote blocks are /64",
			recs: []*flow.Record{
				rec("2001:db8:1::5", "2001:db8:1::6"),
				rec("2001:db8:1::5", "2001:db8:2::1"),
				rec("2001:db8:1::5", "2001:db8:2::2"),
				rec("2001:db8:1::5", "2001:db8:2:1::1"),
				rec("2001:db8:1::5", "::"),
			},
			want: map[Key]uniqCounts{
				kHost(3, "2001:db8:1::5"): {Local: 1, Remote: 3},
				kHost(3, "2001:db8:1::6"): {},
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e, _ := newTestEngine(t, DefaultConfig())
			for _, r := range tc.recs {
				e.Add(r)
			}
			e.Tick(at(10)) // closes the window [0 s, 10 s)
			got := map[Key]uniqCounts{}
			for _, s := range e.Snapshot().Hosts {
				got[s.Key] = uniqOf(t, e, s.Key)
			}
			if diff := cmp.Diff(got, tc.want); diff != "" {
				t.Errorf("unique counts (-got +want):\n%s", diff)
			}
		})
	}
}

// TestUniqWindows checks current, peak and average of the unique counts
// over tumbling windows, including windows skipped without a tick.
func TestUniqWindows(t *testing.T) {
	e, _ := newTestEngine(t, DefaultConfig())
	h := kHost(1, "10.1.0.10")
	send := func(n int, sec float64) {
		for i := range n {
			e.Add(rec("10.1.0.10", fmt.Sprintf("198.51.%d.1", i), span(sec, sec)))
		}
	}
	type uniqRates struct{ Cur, Peak, Avg float64 }
	check := func(when string, want uniqRates) {
		t.Helper()
		s := allStats(e.Snapshot())[h]
		got := uniqRates{s.Cur.UniqRemoteCIDR, s.Peak.UniqRemoteCIDR, s.Avg.UniqRemoteCIDR}
		if diff := cmp.Diff(got, want); diff != "" {
			t.Errorf("%s: uniq_remote_cidr (-got +want):\n%s", when, diff)
		}
	}
	send(5, 0.5)
	e.Tick(at(9.9))
	check("before the window closes", uniqRates{})
	e.Tick(at(10))
	check("window 1 closed", uniqRates{Cur: 0.5, Peak: 0.5, Avg: 5.0 / 10})
	send(2, 10.5)
	e.Tick(at(20))
	check("window 2 closed", uniqRates{Cur: 0.2, Peak: 0.5, Avg: 7.0 / 20})
	send(3, 20.5)
	e.Tick(at(45)) // closes [20,30); [30,40) passed empty
	check("after an empty window", uniqRates{Cur: 0, Peak: 0.5, Avg: 10.0 / 45})
}

// TestUniqEstimate checks the estimates for 10,000 distinct remote /24
// blocks and 1,000 local endpoints against the stated error: within three
// relative standard errors, 3×1.04/sqrt(2^precision).
func TestUniqEstimate(t *testing.T) {
	for _, precision := range []uint8{8, 12} {
		t.Run(fmt.Sprintf("precision %d", precision), func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.HLLPrecision = precision
			e, _ := newTestEngine(t, cfg)
			r := rec("10.1.0.10", "10.1.0.10")
			for i := range 10_000 {
				// Two addresses per block: blocks, not addresses, count.
				for _, last := range []byte{1, 200} {
					r.Dst = netipFrom4(11+byte(i>>16), byte(i>>8), byte(i), last)
					e.Add(r)
				}
			}
			for i := range 1000 {
				r.Dst = netipFrom4(10, 2, byte(i>>8), byte(i))
				e.Add(r)
			}
			e.Tick(at(10))
			got := uniqOf(t, e, kHost(1, "10.1.0.10"))
			bound := 3 * 1.04 / math.Sqrt(float64(uint(1)<<precision))
			for _, c := range []struct {
				name      string
				got, want int
			}{
				{"remote CIDRs", got.Remote, 10_000},
				{"local endpoints", got.Local, 1000},
			} {
				rel := math.Abs(float64(c.got-c.want)) / float64(c.want)
				t.Logf("%s: estimate %d for %d (%.2f%%, bound %.2f%%)", c.name, c.got, c.want, 100*rel, 100*bound)
				if rel > bound {
					t.Errorf("%s: estimate %d for %d is off by %.1f%%, more than %.1f%%", c.name, c.got, c.want, 100*rel, 100*bound)
				}
			}
		})
	}
}
