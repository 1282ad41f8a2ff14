package rates

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/flowsentry/flowsentry/flow"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// step is a tick (when r is nil) or a record to add.
type step struct {
	tick float64
	r    *flow.Record
}

func tick(sec float64) step   { return step{tick: sec} }
func add(r *flow.Record) step { return step{r: r} }
func in(n uint64, start, end float64) *flow.Record {
	return rec("203.0.113.5", "10.1.0.10", counts(n, 100*n), proto(flow.ProtoUDP, 0), span(start, end))
}

// observed is what a case checks on TGRP 1 after its steps.
type observed struct {
	Cur, Avg, Peak float64 // packets in
	Total          uint64
	Late, Future   float64
}

// TestWindow checks spreading, the late shift, the future clamp and the
// exact current, average and peak values over a sequence of ticks.
func TestWindow(t *testing.T) {
	cases := []struct {
		name  string
		steps []step
		want  observed
	}{
		{
			// 100,000 packets over exactly 100 s: 1,000 per second; the 90
			// seconds before the window reach only the total.
			name:  "100-second flow spreads over its seconds",
			steps: []step{tick(200), add(in(100_000, 100, 200)), tick(201)},
			want:  observed{Cur: 1000, Avg: 1000, Peak: 1000, Total: 100_000},
		},
		{
			name:  "the same flow without spreading would be a one-second burst",
			steps: []step{tick(200), add(in(100_000, 200, 200)), tick(201)},
			want:  observed{Cur: 10_000, Avg: 10_000, Peak: 10_000, Total: 100_000},
		},
		{
			// 10 packets over 3.5 s cover seconds 97..100 as 4,2,2,2. The
			// window at open second s holds seconds s-10..s-1.
			name: "remainder goes to the first second",
			steps: []step{
				tick(100), add(in(10, 96.9, 100.4)),
				tick(107), // 97..100 in: 10
				tick(108), // 98..100: 6
				tick(109), // 99..100: 4
				tick(110), // 100: 2
			},
			want: observed{Cur: 0.2, Avg: 10.0 / 13, Peak: 1, Total: 10},
		},
		{
			// The same when second 97, with its remainder, has left the
			// window: 6 packets remain (7 if the remainder went one each
			// to the first seconds).
			name:  "the first second's remainder leaves the window with it",
			steps: []step{tick(100), add(in(10, 96.9, 100.4)), tick(107), tick(108)},
			want:  observed{Cur: 0.6, Avg: 10.0 / 11, Peak: 1, Total: 10},
		},
		{
			name: "peak, average and current over ticks",
			steps: []step{
				tick(1), add(in(100, 1.5, 1.5)),
				tick(2), add(in(100, 2.5, 2.5)), // cur 10
				tick(3), add(in(100, 3.5, 3.5)), // cur 20
				tick(4),  // cur 30
				tick(12), // window 2..11: 20
				tick(13), // 3..12: 10
				tick(15), // 5..14: 0
			},
			want: observed{Cur: 0, Avg: 300.0 / 14, Peak: 30, Total: 300},
		},
		{
			name: "late data fills a closed second of the window",
			steps: []step{
				tick(50), add(in(40, 45.5, 45.5)), // second 45 is closed: counts now
				tick(50.5), tick(51), tick(55), // no double count when closing seconds
			},
			want: observed{Cur: 4, Avg: 40.0 / 10, Peak: 4, Total: 40},
		},
		{
			// Ended at 500 s, 2 s long, seen at 1000 s: moved to 999..1000.
			name:  "record that ended before the window is shifted to now",
			steps: []step{tick(1000), add(in(20, 498.5, 500.5)), tick(1001)},
			want:  observed{Cur: 2, Avg: 2, Peak: 2, Total: 20, Late: 1},
		},
		{
			name:  "record ending in the oldest second of the window is not shifted",
			steps: []step{tick(1000), add(in(20, 990.5, 990.5)), tick(1000.5)},
			want:  observed{Cur: 2, Avg: 2, Peak: 2, Total: 20},
		},
		{
			name:  "record from the future is clamped to the open second",
			steps: []step{tick(100), add(in(30, 148, 150)), tick(101)},
			want:  observed{Cur: 3, Avg: 3, Peak: 3, Total: 30, Future: 1},
		},
		{
			name:  "record ending later in the open second is not future",
			steps: []step{tick(100.1), add(in(30, 100.9, 100.9)), tick(101)},
			want:  observed{Cur: 3, Avg: 3, Peak: 3, Total: 30},
		},
		{
			name:  "end before start counts as one second",
			steps: []step{tick(100), add(in(7, 100.5, 99)), tick(101)},
			want:  observed{Cur: 0.7, Avg: 0.7, Peak: 0.7, Total: 7},
		},
		{
			name:  "time going back is ignored",
			steps: []step{tick(100), add(in(10, 99.5, 99.5)), tick(50), tick(100.9)},
			want:  observed{Cur: 1, Avg: 1, Peak: 1, Total: 10},
		},
		{
			// Ticks 20..40 skip the idle object; late data for second 33
			// after it wakes up still lands in the window.
			name: "idle object wakes up",
			steps: []step{
				tick(10), add(in(50, 10.5, 10.5)),
				tick(11), tick(20), tick(21), tick(30), tick(40), // 5, 5, 0, 0, 0
				add(in(30, 40.5, 40.5)), tick(41), // 3
				add(in(20, 33.5, 33.5)), tick(42), // 5
				tick(43), // 33..42: 5
				tick(44), // 34..43: 3
			},
			want: observed{Cur: 3, Avg: 100.0 / 34, Peak: 5, Total: 100},
		},
		{
			// No tick saw second 99 in the window; the peak is then the
			// average, below which it never is.
			name:  "jump beyond the window clears it",
			steps: []step{tick(100), add(in(10, 99.5, 99.5)), tick(111), tick(112)},
			want:  observed{Cur: 0, Avg: 10.0 / 13, Peak: 10.0 / 13, Total: 10},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e, _ := newTestEngine(t, DefaultConfig())
			for _, s := range tc.steps {
				if s.r != nil {
					e.Add(s.r)
				} else {
					e.Tick(at(s.tick))
				}
			}
			st := allStats(e.Snapshot())[kGroup(1)]
			got := observed{
				Cur: st.Cur.PacketsIn, Avg: st.Avg.PacketsIn, Peak: st.Peak.PacketsIn,
				Total:  st.Totals.PacketsIn,
				Late:   testutil.ToFloat64(e.metrics.shifted.WithLabelValues("late")),
				Future: testutil.ToFloat64(e.metrics.shifted.WithLabelValues("future")),
			}
			if diff := cmp.Diff(got, tc.want); diff != "" {
				t.Errorf("TGRP 1 packets in (-got +want):\n%s", diff)
			}
			// Bytes follow packets (100 each) exactly.
			if st.Totals.BytesIn != 100*st.Totals.PacketsIn {
				t.Errorf("bytes in = %d, want %d", st.Totals.BytesIn, 100*st.Totals.PacketsIn)
			}
		})
	}
}

// TestCurEach checks that Each sees the same values as the snapshot, for
// every counter, including updates and new connections placed at the
// flow's first second.
func TestCurEach(t *testing.T) {
	e, _ := newTestEngine(t, DefaultConfig())
	e.Tick(at(100))
	// One new connection spread over 20 s lands in second 81, before the
	// window; the update lands in second 100.
	e.Add(rec("10.1.0.10", "203.0.113.5", counts(200, 20_000), span(80.5, 100.5)))
	e.Tick(at(101))
	want := map[Counter]float64{
		PacketsOut: 10, BytesOut: 1000, NewConnOut: 0, Updates: 0.1,
		PacketsIn: 0, BytesIn: 0, NewConn: 0, UniqLocalEndpoint: 0, UniqRemoteCIDR: 0,
	}
	var got map[Counter]float64
	e.Each(KindGroup, func(o *Object) {
		got = map[Counter]float64{}
		for c := range numCounters {
			got[c] = o.Cur(c)
		}
		if diff := cmp.Diff(o.Stats(), allStats(e.Snapshot())[o.Key()], cmpAddr); diff != "" {
			t.Errorf("Stats differs from the snapshot (-each +snapshot):\n%s", diff)
		}
	})
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("Cur (-got +want):\n%s", diff)
	}
}

// naiveWindow is the package documentation's window semantics for one
// object counting records "in", kept the obvious way: every second's
// counts in a map.
type naiveWindow struct {
	window       int64
	now, nowSec  int64
	seen         bool
	firstSec     int64
	secs         map[int64][numFlow]uint64
	total        [numFlow]uint64
	peak         [numFlow]float64
	late, future int
}

func (w *naiveWindow) tick(now int64) {
	w.now = max(w.now, now)
	w.nowSec = floorDiv(w.now, nsPerSec)
	if !w.seen {
		return
	}
	cur := w.cur()
	for c := range numFlow {
		w.peak[c] = max(w.peak[c], cur[c])
	}
}

func (w *naiveWindow) cur() [numFlow]float64 {
	var sum [numFlow]uint64
	for s := w.nowSec - w.window; s < w.nowSec; s++ {
		for c, n := range w.secs[s] {
			sum[c] += n
		}
	}
	var cur [numFlow]float64
	for c, n := range sum {
		cur[c] = float64(n) / float64(w.window)
	}
	return cur
}

func (w *naiveWindow) add(r *flow.Record) {
	n := map[Counter]uint64{PacketsIn: r.Packets, BytesIn: r.Bytes}
	if r.Proto != flow.ProtoTCP || r.TCPFlags&flow.TCPSyn != 0 {
		n[NewConn] = uint64(max(1, r.SamplingRate))
	}
	end := r.End
	switch endSec := floorDiv(end, nsPerSec); {
	case endSec > w.nowSec:
		end = w.now
		w.future++
	case endSec < w.nowSec-w.window:
		end = w.now
		w.late++
	}
	secs := int64(1)
	if r.End > r.Start {
		secs = (r.End - r.Start + nsPerSec - 1) / nsPerSec
	}
	endSec := floorDiv(end, nsPerSec)
	first := endSec - secs + 1
	if !w.seen {
		w.seen, w.firstSec = true, w.nowSec
	}
	w.firstSec = min(w.firstSec, first)
	for c, cnt := range n {
		w.total[c] += cnt
		q, rem := cnt/uint64(secs), cnt%uint64(secs)
		for i := range secs {
			if s := first + i; s >= w.nowSec-w.window {
				v := w.secs[s]
				v[c] += q
				if i == 0 {
					v[c] += rem // the first second takes the remainder
				}
				w.secs[s] = v
			}
		}
	}
	w.total[Updates]++
	v := w.secs[endSec]
	v[Updates]++
	w.secs[endSec] = v
}

// TestWindowReference compares the engine with naiveWindow over random
// records (spread, late, from the future, sampled) and ticks (within a
// second, by a few seconds, beyond the window), after every tick.
func TestWindowReference(t *testing.T) {
	for _, window := range []int64{1, 2, 10, 60} {
		t.Run(fmt.Sprintf("window=%ds", window), func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Window = time.Duration(window) * time.Second
			cfg.IdleTimeout, cfg.ExporterTimeout = 24*time.Hour, 24*time.Hour
			e, _ := newTestEngine(t, cfg)
			ref := &naiveWindow{window: window, secs: map[int64][numFlow]uint64{}}
			ref.tick(at(0))
			rng := rand.New(rand.NewPCG(uint64(window), 7))
			steps := []float64{0, 0.25, 0.5, 1, 1, 1, 2, 3, float64(window), float64(window + 1), float64(2 * window)}
			now := 0.0
			for i := range 3000 {
				if rng.IntN(4) == 0 {
					now += steps[rng.IntN(len(steps))]
					e.Tick(at(now))
					ref.tick(at(now))
					st := allStats(e.Snapshot())[kGroup(1)]
					cur := ref.cur()
					// The average is over at least one window, and the
					// peak never below it.
					active := float64(max(window, ref.nowSec-ref.firstSec))
					var want [][3]float64
					for _, c := range []Counter{PacketsIn, BytesIn, NewConn, Updates} {
						avg := float64(ref.total[c]) / active
						want = append(want, [3]float64{cur[c], avg, max(ref.peak[c], avg)})
					}
					got := [][3]float64{
						{st.Cur.PacketsIn, st.Avg.PacketsIn, st.Peak.PacketsIn},
						{st.Cur.BytesIn, st.Avg.BytesIn, st.Peak.BytesIn},
						{st.Cur.NewConn, st.Avg.NewConn, st.Peak.NewConn},
						{st.Cur.Updates, st.Avg.Updates, st.Peak.Updates},
					}
					for j, g := range got {
						if g[1] > g[2] {
							t.Fatalf("step %d: counter %d: average %g above peak %g", i, j, g[1], g[2])
						}
					}
					if diff := cmp.Diff(got, want); diff != "" {
						t.Fatalf("step %d at %gs: packets, bytes, conns, updates in as [cur avg peak] (-got +want):\n%s", i, now, diff)
					}
					wantTotals := Totals{PacketsIn: ref.total[PacketsIn], BytesIn: ref.total[BytesIn], NewConn: ref.total[NewConn], Updates: ref.total[Updates]}
					if diff := cmp.Diff(st.Totals, wantTotals); diff != "" {
						t.Fatalf("step %d at %gs: totals (-got +want):\n%s", i, now, diff)
					}
					continue
				}
				end := now + float64(rng.IntN(int(window)+20)) - float64(window) - 15 + rng.Float64()
				if rng.IntN(3) == 0 {
					end = now + rng.Float64() // in the open second, or just after
				}
				dur := 0.0
				if rng.IntN(2) == 0 {
					dur = float64(rng.IntN(3*int(window)+5)) + rng.Float64()
				}
				r := in(uint64(rng.IntN(2000)), end-dur, end)
				r.Bytes = uint64(rng.IntN(1_000_000))
				r.Proto, r.TCPFlags, r.SamplingRate = flow.ProtoTCP, flow.TCPAck, uint32(rng.IntN(4))
				if rng.IntN(3) == 0 {
					r.TCPFlags |= flow.TCPSyn
				}
				e.Add(r)
				ref.add(r)
			}
			e.Tick(at(now)) // hands the last records' metrics over
			shifted := func(reason string) int { return int(testutil.ToFloat64(e.metrics.shifted.WithLabelValues(reason))) }
			if got, want := [2]int{shifted("late"), shifted("future")}, [2]int{ref.late, ref.future}; got != want {
				t.Errorf("shifted late, future = %v, want %v", got, want)
			}
		})
	}
}
