package gen

import (
	"context"
	"errors"
	"testing"
	"time"
)

// fakeClock advances by step on every Now and by the slept time on Sleep.
type fakeClock struct {
	now    time.Time
	step   time.Duration
	sleeps int
}

func (c *fakeClock) Now() time.Time {
	c.now = c.now.Add(c.step)
	return c.now
}

func (c *fakeClock) Sleep(_ context.Context, d time.Duration) {
	c.sleeps++
	c.now = c.now.Add(d)
}

// countingWriter fails every failEvery-th write (0: never).
type countingWriter struct {
	writes, failEvery int
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.writes++
	if w.failEvery > 0 && w.writes%w.failEvery == 0 {
		return 0, errors.New("connection refused")
	}
	return len(p), nil
}

func TestSend(t *testing.T) {
	tests := []struct {
		name      string
		cfg       SendConfig
		failEvery int
		records   [2]int64 // inclusive bounds
		errors    int64
		seconds   [2]float64
		mustSleep bool
	}{
		{"record limit, no pacing", SendConfig{Records: 95}, 0, [2]int64{120, 120}, 0, [2]float64{0, 0.001}, false},
		{"paced for a second", SendConfig{Rate: 3000, Duration: time.Second}, 0, [2]int64{3000, 3030}, 0, [2]float64{1, 1.001}, true},
		{"paced record limit", SendConfig{Rate: 600, Records: 600}, 0, [2]int64{600, 600}, 0, [2]float64{0.95, 1.001}, true},
		{"high rate bursts", SendConfig{Rate: 2e6, Duration: 100 * time.Millisecond}, 0, [2]int64{199_000, 210_000}, 0, [2]float64{0.1, 0.1001}, true},
		{"write errors counted", SendConfig{Records: 300}, 2, [2]int64{300, 300}, 9, [2]float64{0, 0.001}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, err := New(Config{Protocol: NetFlowV5})
			if err != nil {
				t.Fatal(err)
			}
			clk := &fakeClock{now: time.Unix(1_764_000_000, 0), step: time.Microsecond}
			w := &countingWriter{failEvery: tt.failEvery}
			s := send(context.Background(), w, g, tt.cfg, clk)
			if s.Records < tt.records[0] || s.Records > tt.records[1] {
				t.Errorf("records = %d, want %d to %d", s.Records, tt.records[0], tt.records[1])
			}
			if s.Datagrams*30 != s.Records || s.Bytes != s.Datagrams*(24+30*48) {
				t.Errorf("datagrams, bytes = %d, %d for %d records", s.Datagrams, s.Bytes, s.Records)
			}
			if s.SendErrors != tt.errors {
				t.Errorf("send errors = %d, want %d", s.SendErrors, tt.errors)
			}
			if s.Seconds < tt.seconds[0] || s.Seconds > tt.seconds[1] {
				t.Errorf("seconds = %v, want %v to %v", s.Seconds, tt.seconds[0], tt.seconds[1])
			}
			if tt.mustSleep != (clk.sleeps > 0) {
				t.Errorf("slept %d times", clk.sleeps)
			}
			if s.Seconds > 0 && s.Rate != float64(s.Records)/s.Seconds {
				t.Errorf("rate = %v, want records/seconds", s.Rate)
			}
		})
	}
}

// TestSendStops checks that Send returns when its context ends.
func TestSendStops(t *testing.T) {
	g, err := New(Config{Protocol: SFlow})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if s := Send(ctx, &countingWriter{}, g, SendConfig{Rate: 1}); s.Datagrams != 0 {
		t.Errorf("sent %d datagrams after the context ended", s.Datagrams)
	}
}
