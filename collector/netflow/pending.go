package netflow

import (
	"encoding/binary"
	"math"

	"github.com/flowsentry/flowsentry/flow"
)

// heldDatagram is the template-less part of one datagram, waiting for its
// templates.
type heldDatagram struct {
	ctx      msgContext
	received int64
	// sets are copies of the data sets, back to back, headers included; a
	// set decoded since is marked by zeroing its set ID.
	sets []byte
	// left is how many sets still wait.
	left int
}

// pendingStore is the bounded store of held datagrams, oldest first. Its
// buffers are reused, so holding costs no allocation once warm.
type pendingStore struct {
	held  []heldDatagram
	spare [][]byte
}

// remove drops held datagram i, keeping its buffer for reuse.
func (p *pendingStore) remove(i int) {
	p.spare = append(p.spare, p.held[i].sets[:0])
	copy(p.held[i:], p.held[i+1:])
	p.held[len(p.held)-1] = heldDatagram{}
	p.held = p.held[:len(p.held)-1]
}

// hold keeps a copy of sets, n data sets of the message c, received at now.
// The caller holds the write lock.
func (t *Templates) hold(c *msgContext, sets []byte, n int, now int64, st *Stats) {
	if t.pendingMax == 0 {
		st.HeldDropped++
		return
	}
	p := &t.held
	if len(p.held) >= t.pendingMax {
		p.remove(0)
		st.HeldDropped++
	}
	var buf []byte
	if k := len(p.spare); k > 0 {
		buf, p.spare = p.spare[k-1], p.spare[:k-1]
	}
	p.held = append(p.held, heldDatagram{ctx: *c, received: now, sets: append(buf, sets...), left: n})
	st.Held++
	t.noteOldest()
}

// expireHeld drops the held datagrams older than the pending age. It takes
// the lock only when the oldest one has expired.
func (t *Templates) expireHeld(now int64, st *Stats) {
	if now-t.oldestHeld.Load() <= t.pendingAge {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	p := &t.held
	for i := 0; i < len(p.held); {
		if now-p.held[i].received > t.pendingAge {
			p.remove(i)
			st.HeldDropped++
			continue
		}
		i++
	}
	t.noteOldest()
}

// noteOldest publishes the receive time of the oldest held datagram. The
// caller holds the write lock.
func (t *Templates) noteOldest() {
	oldest := int64(math.MaxInt64)
	for i := range t.held.held {
		oldest = min(oldest, t.held.held[i].received)
	}
	t.oldestHeld.Store(oldest)
}

// replay decodes the held data of key whose templates are now known,
// appending to out. The caller holds the write lock.
func (d *Decoder) replay(key domainKey, now int64, out []flow.Record, st *Stats) []flow.Record {
	t := d.t
	p := &t.held
	start := len(out)
	for i := 0; i < len(p.held); {
		h := &p.held[i]
		if h.ctx.key != key || now-h.received > t.pendingAge {
			i++
			continue
		}
		for sets := h.sets; len(sets) >= 4; {
			set := sets[:binary.BigEndian.Uint16(sets[2:])]
			sets = sets[len(set):]
			id := binary.BigEndian.Uint16(set)
			if id < 256 {
				continue
			}
			dm, tpl := t.lookup(key, id, now)
			if tpl == nil {
				continue
			}
			var err error
			out, err = d.decodeData(tpl, dm, &h.ctx, set[4:], out, st)
			if err != nil && d.replayErr == nil {
				d.replayErr = err
			}
			binary.BigEndian.PutUint16(set, 0)
			h.left--
		}
		if h.left == 0 {
			p.remove(i)
			continue
		}
		i++
	}
	st.Replayed += len(out) - start
	t.noteOldest()
	return out
}
