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

// cell is one second of a placed record: the ring slot it lands in and the
// counts for that second.
type cell struct {
	slot                  int
	closed                bool // the second is before the open one
	packets, bytes, conns uint64
}

// placement is where the record being added goes: its exact counts (for
// totals) and one cell per second of its span inside the ring.
type placement struct {
	packets, bytes, conns uint64
	// early are the counts of the seconds before the window, which only
	// reach the totals; closed are those of the closed seconds inside the
	// window, which reach the window sums and the totals.
	early, closed struct{ packets, bytes, conns uint64 }
	// simple is the common case: one cell, the open second, nothing early.
	simple bool
	// endNs is the record's end after the late shift or future clamp;
	// firstSec is the first second of its span.
	endNs    int64
	firstSec int64
	cells    [maxWindow + 1]cell
	n        int
}

// place spreads r over the seconds it covered, as described in the package
// documentation, and leaves the result in e.rec.
func (e *Engine) place(r *flow.Record) {
	p := &e.rec
	p.packets, p.bytes = r.Packets, r.Bytes
	p.conns = 0
	if r.Proto != flow.ProtoTCP || r.TCPFlags&flow.TCPSyn != 0 {
		p.conns = uint64(max(1, r.SamplingRate))
	}

	var dur uint64
	if r.End > r.Start {
		dur = min(uint64(r.End)-uint64(r.Start), maxDuration)
	}
	horizon := e.nowSec - e.window
	p.endNs = r.End
	switch endSec := floorDiv(r.End, nsPerSec); {
	case endSec > e.nowSec:
		p.endNs = e.now
		e.pending.future++
	case endSec < horizon:
		p.endNs = e.now
		e.pending.late++
	}

	secs := dur / uint64(nsPerSec)
	if dur%uint64(nsPerSec) != 0 || secs == 0 {
		secs++
	}
	endSec := floorDiv(p.endNs, nsPerSec)
	p.firstSec = endSec - int64(secs) + 1
	p.early.packets, p.early.bytes, p.early.conns = 0, 0, 0
	if p.simple = secs == 1 && endSec == e.nowSec; p.simple {
		// Most records: no division needed.
		p.cells[0] = cell{slot: e.slot(endSec), packets: p.packets, bytes: p.bytes, conns: p.conns}
		p.n = 1
		return
	}

	// Second firstSec+i gets count/secs, plus one while i < count%secs:
	// the remainder goes to the earliest seconds, so a single new
	// connection lands where the flow started.
	qp, rp := p.packets/secs, p.packets%secs
	qb, rb := p.bytes/secs, p.bytes%secs
	qc, rc := p.conns/secs, p.conns%secs
	lo := max(p.firstSec, horizon)
	k := uint64(lo - p.firstSec) // seconds before the window
	p.early.packets = qp*k + min(rp, k)
	p.early.bytes = qb*k + min(rb, k)
	p.early.conns = qc*k + min(rc, k)
	p.n = 0
	p.closed.packets, p.closed.bytes, p.closed.conns = 0, 0, 0
	for s := lo; s <= endSec; s++ {
		i := uint64(s - p.firstSec)
		c := cell{
			slot:    e.slot(s),
			closed:  s < e.nowSec,
			packets: qp + b2u(i < rp),
			bytes:   qb + b2u(i < rb),
			conns:   qc + b2u(i < rc),
		}
		if c.closed {
			p.closed.packets += c.packets
			p.closed.bytes += c.bytes
			p.closed.conns += c.conns
		}
		p.cells[p.n] = c
		p.n++
	}
}

func b2u(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

// slot returns the ring slot of second s.
func (e *Engine) slot(s int64) int {
	return int(s - floorDiv(s, e.ringLen)*e.ringLen)
}

// Directions, as offsets from the "in" counters to their "out" twins.
const (
	dirIn  = Counter(0)
	dirOut = PacketsOut - PacketsIn
)

// count adds the placed record to o in direction dir.
func (o *Object) count(p *placement, dir Counter) {
	if p.simple {
		o.open[PacketsIn+dir] += p.packets
		o.open[BytesIn+dir] += p.bytes
		o.open[NewConn+dir] += p.conns
		return
	}
	// Only a record reaching before the open second can start before the
	// object's first second.
	o.firstSec = min(o.firstSec, p.firstSec)
	o.total[PacketsIn+dir] += p.early.packets + p.closed.packets
	o.total[BytesIn+dir] += p.early.bytes + p.closed.bytes
	o.total[NewConn+dir] += p.early.conns + p.closed.conns
	o.win[PacketsIn+dir] += p.closed.packets
	o.win[BytesIn+dir] += p.closed.bytes
	o.win[NewConn+dir] += p.closed.conns
	// The sums are done; each second only needs its ring slot.
	for _, c := range p.cells[:p.n] {
		if !c.closed {
			o.open[PacketsIn+dir] += c.packets
			o.open[BytesIn+dir] += c.bytes
			o.open[NewConn+dir] += c.conns
			continue
		}
		ring := o.ring[c.slot*numFlow:][:numFlow]
		ring[PacketsIn+dir] += c.packets
		ring[BytesIn+dir] += c.bytes
		ring[NewConn+dir] += c.conns
	}
}

// add counts n of counter c in the second of slot: a closed second goes
// straight to the ring, the window sum and the total; the open second to
// open.
func (o *Object) add(slot int, closed bool, c Counter, n uint64) {
	if !closed {
		o.open[c] += n
		return
	}
	o.ring[slot*numFlow+int(c)] += n
	o.win[c] += n
	o.total[c] += n
}

// update counts the record being added as one update of o, in the second
// the record ended, and moves o's last seen time.
func (o *Object) update(p *placement) {
	c := &p.cells[p.n-1]
	o.add(c.slot, c.closed, Updates, 1)
	o.last = max(o.last, p.endNs)
}

// align brings o's ring to the engine's open second: every second that
// closed since joins the window sums, every second that left the window
// leaves them, and its slot is cleared for reuse.
func (o *Object) align(e *Engine) {
	adv := e.nowSec - o.sec
	if adv <= 0 {
		return
	}
	if adv >= e.ringLen {
		clear(o.ring)
		o.win = [numFlow]uint64{}
		o.sec = e.nowSec
		return
	}
	for s := o.sec + 1; s <= e.nowSec; s++ {
		closing := o.ring[e.slot(s-1)*numFlow:][:numFlow]
		reused := o.ring[e.slot(s)*numFlow:][:numFlow]
		for c := range numFlow {
			o.win[c] += closing[c] - reused[c]
			reused[c] = 0
		}
	}
	o.sec = e.nowSec
}
