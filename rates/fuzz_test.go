package rates

import (
	"testing"

	"github.com/flowsentry/flowsentry/flow"
)

// FuzzAdd feeds records with arbitrary times, counts and flags between
// arbitrary ticks, and checks that nothing panics and that the totals stay
// exact and bound the current and peak rates.
func FuzzAdd(f *testing.F) {
	sec := nsPerSec
	f.Add(int64(0), int64(0), uint64(1), uint64(60), uint8(flow.ProtoTCP), flow.TCPSyn, uint32(1), sec)
	f.Add(-100*sec, int64(0), uint64(100_000), uint64(1e8), uint8(flow.ProtoUDP), uint8(0), uint32(1), 2*sec) // long flow
	f.Add(-600*sec, -500*sec, uint64(20), uint64(2000), uint8(flow.ProtoTCP), uint8(0), uint32(100), sec)     // late
	f.Add(50*sec, 60*sec, uint64(3), uint64(300), uint8(flow.ProtoICMP), uint8(0), uint32(0), -sec)           // future, time back
	f.Add(int64(-1<<63), int64(1<<63-1), uint64(1<<64-1), uint64(7), uint8(flow.ProtoTCP), uint8(0xff), uint32(1<<32-1), int64(1<<62))
	f.Fuzz(func(t *testing.T, start, end int64, packets, bytes uint64, ipProto, flags uint8, sampling uint32, step int64) {
		step %= 60 * nsPerSec // within the idle timeout: the objects live on
		e, _ := newTestEngine(t, DefaultConfig())
		base := at(1000)
		e.Tick(base)
		r := rec("10.1.0.20", "10.1.0.10", via(1, 2), counts(packets, bytes), proto(ipProto, flags), func(r *flow.Record) {
			r.Start, r.End, r.SamplingRate = base+start, base+end, sampling
			r.ICMPType, r.ICMPCode = flags, ipProto
		})
		e.Add(r)
		e.Tick(base + step)
		e.Add(r)
		e.Tick(base + step + nsPerSec)

		conns := uint64(0)
		if ipProto != flow.ProtoTCP || flags&flow.TCPSyn != 0 {
			conns = uint64(max(1, sampling))
		}
		s := allStats(e.Snapshot())[kGroup(1)]
		want := Totals{PacketsIn: 2 * packets, PacketsOut: 2 * packets, BytesIn: 2 * bytes, BytesOut: 2 * bytes, NewConn: 2 * conns, NewConnOut: 2 * conns, Updates: 2}
		if s.Totals != want {
			t.Fatalf("totals %+v, want %+v", s.Totals, want)
		}
		w := float64(e.window)
		for _, c := range []struct {
			name           string
			cur, peak, tot float64
		}{
			{"packets", s.Cur.PacketsIn, s.Peak.PacketsIn, float64(packets)},
			{"bytes", s.Cur.BytesIn, s.Peak.BytesIn, float64(bytes)},
			{"updates", s.Cur.Updates, s.Peak.Updates, 1},
		} {
			// The window holds at most both records; float64 rounding aside.
			if c.cur*w > 2*c.tot*(1+1e-9) || c.peak < c.cur {
				t.Fatalf("%s: cur %v, peak %v, window %v s, total of both records %v", c.name, c.cur, c.peak, w, 2*c.tot)
			}
		}
	})
}
