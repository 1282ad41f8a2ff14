package exfil

import (
	"github.com/flowsentry/flowsentry/detect/detecttest"
	"math/rand/v2"
	"testing"
	"time"
)

func TestTable(t *testing.T) {
	const now, idle = 1_000_000, 300
	tests := []struct {
		name string
		run  func(t *testing.T, tb *table)
	}{
		{"stitches within idle, restarts after", func(t *testing.T, tb *table) {
			tb.add(7, 100, now, idle)
			if b, a, _ := tb.add(7, 50, now+idle, idle); b != 100 || a != 150 {
				t.Errorf("within idle: %d, %d; want 100, 150", b, a)
			}
			if b, a, _ := tb.add(7, 50, now+2*idle+1, idle); b != 0 || a != 50 {
				t.Errorf("after idle: %d, %d; want 0, 50", b, a)
			}
			if b, a, _ := tb.add(7, 50, now+2*idle-5, idle); b != 50 || a != 100 {
				t.Errorf("clock back: %d, %d; want 50, 100", b, a)
			}
		}},
		{"saturates", func(t *testing.T, tb *table) {
			tb.add(7, maxBytes-1, now, idle)
			if b, a, _ := tb.add(7, 1<<62, now, idle); b != maxBytes-1 || a != maxBytes {
				t.Errorf("%d, %d; want %d, %d", b, a, uint64(maxBytes-1), uint64(maxBytes))
			}
		}},
		{"grows and keeps every session up to MaxSessions", func(t *testing.T, tb *table) {
			rng := rand.New(rand.NewPCG(3, 4))
			keys := make([]uint64, MaxSessions)
			for i := range keys {
				keys[i] = rng.Uint64() | 1
				if _, _, ev := tb.add(keys[i], uint64(i), now, idle); ev {
					t.Fatalf("session %d evicted one", i)
				}
			}
			if tb.n != MaxSessions || len(tb.slots) != maxSlots {
				t.Fatalf("%d sessions in %d slots, want %d in %d", tb.n, len(tb.slots), MaxSessions, maxSlots)
			}
			for i, k := range keys {
				if b, _, _ := tb.add(k, 1, now, idle); b != uint64(i) {
					t.Fatalf("session %d: %d bytes, want %d", i, b, i)
				}
			}
		}},
		{"a flood of small sessions keeps the large ones", func(t *testing.T, tb *table) {
			rng := rand.New(rand.NewPCG(5, 6))
			big := []uint64{11, 13, 17}
			for _, k := range big {
				tb.add(k, 500_000, now, idle)
			}
			evicted := 0
			for range 3 * maxSlots {
				if _, _, ev := tb.add(rng.Uint64()|1, 1000+rng.Uint64N(400), now, idle); ev {
					evicted++
				}
			}
			if tb.n < maxSlots*99/100 || evicted < maxSlots {
				t.Errorf("%d sessions, %d evicted; want a table of %d nearly full, and at least as many evicted", tb.n, evicted, maxSlots)
			}
			for _, k := range big {
				if b, _, _ := tb.add(k, 1, now, idle); b != 500_000 {
					t.Errorf("session %d: %d bytes, want 500000", k, b)
				}
			}
		}},
		{"ended sessions make room", func(t *testing.T, tb *table) {
			rng := rand.New(rand.NewPCG(7, 8))
			for range maxSlots {
				tb.add(rng.Uint64()|1, 1000, now, idle)
			}
			for i := range 100_000 {
				if _, _, ev := tb.add(rng.Uint64()|1, 10, now+idle+1, idle); ev {
					t.Fatalf("new session %d evicted a live one", i)
				}
			}
			tb.sweep(now+idle+1, idle)
			if tb.n != 100_000 {
				t.Errorf("%d sessions after the sweep, want 100000", tb.n)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tb := newTable()
			defer tb.mem.Free()
			tt.run(t, &tb)
		})
	}
}

// TestClockJump: a jump of the clock beyond what the table's seconds
// tell apart ends every session; a small step back ends none.
func TestClockJump(t *testing.T) {
	h := newHarness(t, 1_000_000)
	h.add(rec("10.0.0.5", 40000, "203.0.113.9", 443, 600_000))
	h.now -= int64(10 * time.Second)
	h.s.Tick(h.now)
	h.add(rec("10.0.0.5", 40000, "203.0.113.9", 443, 600_000))
	h.tick(time.Second)
	if len(h.rec.Got) != 1 || detecttest.Field(h.rec.Got[0].Condition, "BYTES_EXFILTRATED") != "1200000" {
		t.Fatalf("after a step back: %v, want one alert of 1200000 bytes", h.rec.Got)
	}
	h.add(rec("10.0.0.6", 40000, "203.0.113.9", 443, 600_000))
	h.tick(time.Duration(maxJump+1) * time.Second)
	if n := h.s.Sessions(); n != 0 {
		t.Errorf("%d sessions after a jump of %d s, want 0", n, maxJump+1)
	}
}

// BenchmarkTableGrow fills an empty table with MaxSessions new sessions,
// through every doubling: the work a shard does once, when a load of new
// sessions first reaches it (bench/peers.sh's first seconds).
func BenchmarkTableGrow(b *testing.B) {
	rng := rand.New(rand.NewPCG(7, 8))
	keys := make([]uint64, MaxSessions)
	for i := range keys {
		keys[i] = rng.Uint64() | 1
	}
	for b.Loop() {
		tb := newTable()
		for _, k := range keys {
			tb.add(k, 1000, 1_000_000, 300)
		}
		tb.mem.Free()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*MaxSessions), "ns/session")
}
