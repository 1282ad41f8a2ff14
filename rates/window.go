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
	// startNs and endNs are the record's times after the late shift or
	// future clamp; firstSec is the first second of its span.
	startNs, endNs int64
	firstSec       int64
	cells          [maxWindow + 1]cell
	n              int
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
	p.startNs = p.endNs - int64(dur)

	secs := dur / uint64(nsPerSec)
	if dur%uint64(nsPerSec) != 0 || secs == 0 {
		secs++
	}
	endSec := floorDiv(p.endNs, nsPerSec)
	p.firstSec = endSec - int64(secs) + 1

	// Second firstSec+i gets count/secs, plus one while i < count%secs:
	// the remainder goes to the earliest seconds, so a single new
	// connection lands where the flow started.
	qp, rp := p.packets/secs, p.packets%secs
	qb, rb := p.bytes/secs, p.bytes%secs
	qc, rc := p.conns/secs, p.conns%secs
	p.n = 0
	for s := max(p.firstSec, horizon); s <= endSec; s++ {
		i := uint64(s - p.firstSec)
		p.cells[p.n] = cell{
			slot:    e.slot(s),
			closed:  s < e.nowSec,
			packets: qp + b2u(i < rp),
			bytes:   qb + b2u(i < rb),
			conns:   qc + b2u(i < rc),
		}
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

// count adds the placed record to o, in direction dir (0 in, 1 out).
func (o *Object) count(p *placement, dir Counter) {
	ring := o.ring
	for _, c := range p.cells[:p.n] {
		b := c.slot * numFlow
		ring[b+int(PacketsIn+dir)] += c.packets
		ring[b+int(BytesIn+dir)] += c.bytes
		ring[b+int(NewConn+dir)] += c.conns
		if c.closed {
			o.win[PacketsIn+dir] += c.packets
			o.win[BytesIn+dir] += c.bytes
			o.win[NewConn+dir] += c.conns
		}
	}
	o.total[PacketsIn+dir] += p.packets
	o.total[BytesIn+dir] += p.bytes
	o.total[NewConn+dir] += p.conns
}

// update counts the record being added once per object, in the second the
// record ended, and widens the object's first and last seen times.
func (o *Object) update(seq uint64, p *placement) {
	if o.seq == seq {
		return
	}
	o.seq = seq
	c := &p.cells[p.n-1]
	o.ring[c.slot*numFlow+int(Updates)]++
	if c.closed {
		o.win[Updates]++
	}
	o.total[Updates]++
	o.seen(p.startNs, p.firstSec, p.endNs)
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
