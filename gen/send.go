package gen

import (
	"context"
	"io"
	"time"
)

// SendConfig says how much Send sends and how fast.
type SendConfig struct {
	// Rate is the pace in records per second, kept by a token bucket that
	// sleeps; after a late wake-up it catches up with at most 50 ms of
	// traffic at once. 0 sends as fast as the writer takes datagrams.
	Rate float64
	// Records stops Send once this many records are sent; the last
	// datagram is whole, so up to Records+datagram size-1 go out. 0 means
	// no limit.
	Records int64
	// Duration stops Send after this long; 0 means no limit.
	Duration time.Duration
}

// Summary is what Send did.
type Summary struct {
	// Records and Datagrams were written without error; Bytes is the
	// sum of their sizes.
	Records   int64 `json:"records"`
	Datagrams int64 `json:"datagrams"`
	Bytes     int64 `json:"bytes"`
	// SendErrors counts failed writes (for UDP, typically "connection
	// refused" while nothing listens).
	SendErrors int64 `json:"send_errors"`
	// Seconds is how long Send ran and Rate the records per second
	// achieved.
	Seconds float64 `json:"seconds"`
	Rate    float64 `json:"rate"`
}

// Send writes datagrams of g to w, one per Write, until the record or
// time limit of cfg or the end of ctx. Write errors are counted, not
// returned: a load generator goes on when a datagram is refused.
func Send(ctx context.Context, w io.Writer, g *Generator, cfg SendConfig) Summary {
	return send(ctx, w, g, cfg, wallClock{})
}

// clock is the time source of send, replaced in tests.
type clock interface {
	Now() time.Time
	// Sleep waits d or until ctx ends.
	Sleep(ctx context.Context, d time.Duration)
}

type wallClock struct{}

func (wallClock) Now() time.Time { return time.Now() }

func (wallClock) Sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

func send(ctx context.Context, w io.Writer, g *Generator, cfg SendConfig, clk clock) Summary {
	start := clk.Now()
	var end time.Time
	if cfg.Duration > 0 {
		end = start.Add(cfg.Duration)
	}
	perDatagram := float64(g.cfg.Records)
	b := bucket{rate: cfg.Rate, burst: max(perDatagram, cfg.Rate*0.05), last: start, tokens: perDatagram}
	buf := make([]byte, 0, maxDatagram)
	var s Summary
	for ctx.Err() == nil && (cfg.Records == 0 || s.Records < cfg.Records) {
		now := clk.Now()
		if !end.IsZero() && !now.Before(end) {
			break
		}
		if cfg.Rate > 0 {
			if wait := b.take(perDatagram, now); wait > 0 {
				clk.Sleep(ctx, wait)
				continue
			}
		}
		buf = g.Append(buf[:0], now.UnixNano())
		if _, err := w.Write(buf); err != nil {
			s.SendErrors++
			continue
		}
		s.Datagrams++
		s.Records += int64(len(g.records))
		s.Bytes += int64(len(buf))
	}
	s.Seconds = clk.Now().Sub(start).Seconds()
	if s.Seconds > 0 {
		s.Rate = float64(s.Records) / s.Seconds
	}
	return s
}

// bucket is a token bucket of records.
type bucket struct {
	rate, burst, tokens float64
	last                time.Time
}

// take takes n tokens at now and returns 0, or returns how long to wait
// until there are n, taking nothing.
func (b *bucket) take(n float64, now time.Time) time.Duration {
	b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	b.last = now
	if b.tokens >= n {
		b.tokens -= n
		return 0
	}
	return max(time.Duration((n-b.tokens)/b.rate*1e9), 1)
}
