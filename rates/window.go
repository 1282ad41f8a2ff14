package rates

import (
	"github.com/flowsentry/flowsentry/flow"
)

const nsPerSec = int64(1e9)

// maxDuration caps a record's duration so that start times stay far from
// int64 overflow; 2^62 ns is about 146 years.
const maxDuration = uint64(1) << 62

// floorDiv divides rounding toward minus infinity, so that times before
// 1970 still map to the second (or window) that holds them.
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// diff is a record's change to one ring slot of every object it touches:
// the packets, bytes and new connections added to the slot's difference
// (a subtraction wraps around).
type diff struct {
	off int // slot × slotLen
	n   [3]uint64
}

// placement is where the record being added goes, computed once for the
// several objects it touches.
type placement struct {
	// n are the record's exact packets, bytes and new connections.
	n [3]uint64
	// continued is the record's Continued: it counts no update.
	continued bool
	// simple is the common case: one second, the open one.
	simple bool
	// endNs is the record's end after the late shift or future clamp;
	// firstSec is the first second of its span.
	endNs    int64
	firstSec int64
	// endOpen says whether the record ends in the open second; if not, its
	// update adds one to ring offset endOff and takes it back at nextOff.
	endOpen         bool
	endOff, nextOff int

	// The rest is set only when simple is false. total are the counts of
	// the seconds before the open one, which reach the totals now (those
	// of the open second reach them when it closes); closed the part of
	// them inside the window; open those of the open second.
	total, closed, open [3]uint64
	// diffs are the changes to the ring's differences: where the
	// record's closed seconds inside the window start, where they stop,
	// and where the first second's remainder stops.
	diffs [3]diff
	nd    int
}

// place spreads r over the seconds it covered, as described in the package
// documentation, and leaves the result in e.rec.
func (e *Engine) place(r *flow.Record) {
	p := &e.rec
	p.n = [3]uint64{r.Packets, r.Bytes, 0}
	p.continued = r.Continued
	if !r.Continued && (r.Proto != flow.ProtoTCP || r.TCPFlags&flow.TCPSyn != 0) {
		p.n[2] = uint64(max(1, r.SamplingRate))
	}

	var dur uint64
	if r.End > r.Start {
		dur = min(uint64(r.End)-uint64(r.Start), maxDuration)
	}
	horizon := e.nowSec - e.window
	p.endNs = r.End
	endSec := floorDiv(r.End, nsPerSec)
	if endSec > e.nowSec || endSec < horizon {
		if endSec > e.nowSec {
			e.pending.future++
		} else {
			e.pending.late++
		}
		p.endNs, endSec = e.now, e.nowSec
	}

	secs := dur / uint64(nsPerSec)
	if dur%uint64(nsPerSec) != 0 || secs == 0 {
		secs++
	}
	p.firstSec = endSec - int64(secs) + 1
	p.endOpen = endSec == e.nowSec
	if p.simple = secs == 1 && p.endOpen; p.simple {
		// Most records: no division needed.
		return
	}
	if !p.endOpen {
		p.endOff, p.nextOff = e.slotOff(endSec), e.slotOff(endSec+1)
	}

	// Every second of the span gets count/secs, and the first one the
	// remainder too (count%secs), so a single new connection lands where
	// the flow started and the ring needs one more difference at most:
	// where the first second's remainder stops, shared by the three
	// counts.
	lo := max(p.firstSec, horizon)
	last := min(endSec, e.nowSec-1) // the last closed second, at least lo
	k := uint64(lo - p.firstSec)    // seconds before the window
	m := uint64(last - lo + 1)      // closed seconds in the window
	// The closed seconds start at lo and stop before last+1; a first
	// second inside the window stops its remainder before firstSec+1.
	p.diffs[0].off, p.diffs[1].off = e.slotOff(lo), e.slotOff(last+1)
	p.nd = 2
	remStop := -1 // the diff where the remainder stops; none when before the window
	if k == 0 {
		remStop = 1 // firstSec == last: it stops with the closed seconds
		if m > 1 {
			p.diffs[2].off = e.slotOff(p.firstSec + 1)
			remStop, p.nd = 2, 3
		}
	}
	p.diffs[2].n = [3]uint64{}
	for c, n := range p.n {
		q, rem := uint64(0), n
		if n >= secs {
			q, rem = n/secs, n%secs
		}
		early, closed := q*k, q*m
		p.diffs[0].n[c], p.diffs[1].n[c] = q, -q
		if remStop < 0 { // the first second is before the window
			early += rem
		} else {
			closed += rem
			p.diffs[0].n[c] += rem
			p.diffs[remStop].n[c] -= rem
		}
		p.total[c], p.closed[c], p.open[c] = early+closed, closed, n-early-closed
	}
}

// slot returns the ring slot of second s.
func (e *Engine) slot(s int64) int {
	return int(s - floorDiv(s, e.ringLen)*e.ringLen)
}

// slotOff returns the ring offset of second s, one of the window's or the
// open one.
func (e *Engine) slotOff(s int64) int {
	i := e.nowSlot - int(e.nowSec-s)
	if i < 0 {
		i += int(e.ringLen)
	}
	return i * slotLen
}

// slotLen is the length of a ring slot: the numFlow counters of one
// second, padded to 64 bytes so that a slot is one cache line (the ring
// is 64-byte aligned when its size is a multiple of 64, as the
// allocator's size classes then are).
const slotLen = 8

// Directions, as offsets from the "in" counters to their "out" twins.
const (
	dirIn  = Counter(0)
	dirOut = PacketsOut - PacketsIn
)

// count adds the placed record to o in direction dir.
func (o *Object) count(p *placement, dir Counter) {
	if p.simple {
		o.open[PacketsIn+dir] += p.n[0]
		o.open[BytesIn+dir] += p.n[1]
		o.open[NewConn+dir] += p.n[2]
		return
	}
	// Only a record reaching before the open second can start before the
	// object's first second.
	o.firstSec = min(o.firstSec, p.firstSec)
	o.total[PacketsIn+dir] += p.total[0]
	o.total[BytesIn+dir] += p.total[1]
	o.total[NewConn+dir] += p.total[2]
	o.win[PacketsIn+dir] += p.closed[0]
	o.win[BytesIn+dir] += p.closed[1]
	o.win[NewConn+dir] += p.closed[2]
	o.open[PacketsIn+dir] += p.open[0]
	o.open[BytesIn+dir] += p.open[1]
	o.open[NewConn+dir] += p.open[2]
	ring := o.ring
	for i := range p.diffs[:p.nd] {
		d := &p.diffs[i]
		slot := ring[d.off : d.off+numFlow : d.off+numFlow]
		slot[PacketsIn+dir] += d.n[0]
		slot[BytesIn+dir] += d.n[1]
		slot[NewConn+dir] += d.n[2]
	}
}

// update counts the record being added as one update of o, in the second
// the record ended, unless it continues a flow, and moves o's last seen
// time.
func (o *Object) update(p *placement) { o.addUpdates(p, 1) }

// addUpdates is update counting n updates (^uint64(0) takes one back).
func (o *Object) addUpdates(p *placement, n uint64) {
	switch {
	case p.continued:
	case p.endOpen:
		o.open[Updates] += n
	default:
		o.ring[p.endOff+int(Updates)] += n
		o.ring[p.nextOff+int(Updates)] -= n
		o.win[Updates] += n
		o.total[Updates] += n
	}
	o.last = max(o.last, p.endNs)
}

// align moves o's ring from second prev to the engine's open second: the
// open second closes into the window sums and the totals, every second
// that left the window leaves the sums, and its slot is cleared for reuse.
func (o *Object) align(e *Engine, prev int64) {
	adv := e.nowSec - prev
	if adv <= 0 {
		return
	}
	if adv > e.window {
		for c, n := range o.open {
			o.total[c] += n
		}
		o.open = [numFlow]uint64{}
		clear(o.ring)
		o.win = [numFlow]uint64{}
		return
	}
	// The second after the open one shares the slot of the oldest, so the
	// oldest leaves first; then the open second's counts go to its slot
	// and come off at the next.
	s := prev
	o.slide(e, s)
	cur := o.ring[e.slot(s)*slotLen:][:numFlow]
	next := o.ring[e.slot(s+1)*slotLen:][:numFlow]
	for c, n := range o.open {
		o.win[c] += n
		o.total[c] += n
		cur[c] += n
		next[c] -= n
	}
	o.open = [numFlow]uint64{}
	for s++; s < e.nowSec; s++ {
		o.slide(e, s)
	}
}

// slide takes the window's oldest second, s-Window, out of the window sums
// as second s closes: the next slot takes over its count, which makes it
// the oldest slot, holding its second's full count, and its own slot is
// cleared for second s+1.
func (o *Object) slide(e *Engine, s int64) {
	old := o.ring[e.slot(s-e.window)*slotLen:][:numFlow]
	next := o.ring[e.slot(s-e.window+1)*slotLen:][:numFlow]
	for c, n := range old {
		o.win[c] -= n
		next[c] += n
	}
	clear(old)
}
