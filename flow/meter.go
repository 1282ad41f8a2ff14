package flow

import (
	"math"
	"time"
)

// MeterConfig configures a Meter. Zero or negative values take the
// defaults of DefaultMeterConfig.
type MeterConfig struct {
	// ActiveTimeout is the longest a flow is kept before it is emitted,
	// even while packets still arrive; the next packet starts a new flow.
	ActiveTimeout time.Duration
	// InactiveTimeout is how long a flow may go without a packet before it
	// is emitted.
	InactiveTimeout time.Duration
	// MaxFlows bounds the number of flows held at once (at most
	// math.MaxInt32). When a packet needs a new flow and the table is full,
	// the least recently seen flow is emitted early.
	MaxFlows int
}

// DefaultMeterConfig returns the usual probe settings: 60 s active and 15 s
// inactive timeouts, up to 1,048,576 flows.
func DefaultMeterConfig() MeterConfig {
	return MeterConfig{
		ActiveTimeout:   60 * time.Second,
		InactiveTimeout: 15 * time.Second,
		MaxFlows:        1 << 20,
	}
}

// MeterStats are the counters of a Meter since it was created.
type MeterStats struct {
	// Packets is the number of IP packets counted into flows.
	Packets uint64
	// Skipped is the number of packets Packet rejected (not IP, or too
	// short to parse).
	Skipped uint64
	// Evicted is the number of flows emitted early because MaxFlows was
	// reached.
	Evicted uint64
	// Flows is the number of flows held now.
	Flows int
}

// meterKey identifies a unidirectional flow. ICMP type and code are part of
// it, so an echo request and an unreachable between the same hosts are
// separate flows, as probes such as softflowd keep them. The addresses are
// plain bytes, not netip.Addr (which holds a pointer): the map then hashes
// and compares the key as memory, and the GC does not scan it.
type meterKey struct {
	src, dst         [16]byte
	srcPort, dstPort uint16
	proto            uint8
	icmpType         uint8
	icmpCode         uint8
	// v4 tells IPv4 from IPv4-mapped IPv6 addresses.
	v4 bool
}

func keyOf(r *Record) meterKey {
	return meterKey{
		src: r.Src.As16(), dst: r.Dst.As16(),
		srcPort: r.SrcPort, dstPort: r.DstPort,
		proto: r.Proto, icmpType: r.ICMPType, icmpCode: r.ICMPCode,
		v4: r.Src.Is4(),
	}
}

// none marks the end of an intrusive list.
const none int32 = -1

// The two intrusive queues every flow is in. Both are appended at the back
// and taken from the front.
const (
	// byRecency orders flows by last packet, least recently seen in front:
	// the inactive timeout and the MaxFlows bound take from its front.
	byRecency = iota
	// byAge orders flows by creation, oldest start in front: the active
	// timeout takes from its front.
	byAge
)

// links are a slot's neighbours in one queue.
type links struct{ prev, next int32 }

// queue is the front and back of an intrusive queue over the arena.
type queue struct{ front, back int32 }

// slot is one flow of the arena with its links in both queues. A free slot
// is chained to the next free one through link[byRecency].next.
//
// rec holds what is not reported yet: Packets and Bytes since the last
// Report, Start the first of those packets (Packets 0: nothing to
// report); End is always the flow's last packet, TCPFlags and Fragment
// cover the whole flow, and Continued says that a Report came before.
type slot struct {
	rec Record
	// born is the flow's first packet time, from which the active timeout
	// runs.
	born int64
	link [2]links
}

// Meter turns captured packets into unidirectional flows the way a probe
// (softflowd, nprobe) does: one flow per 5-tuple (plus ICMP type and code),
// packets and layer-3 bytes counted, TCP flags OR-ed, emitted on the active
// and inactive timeouts measured on the capture clock.
//
// Report makes the meter prompt, like a probe with a short export
// interval: it emits, for every flow that got packets since the last
// Report, the packets and bytes since then, so that rates see traffic
// within one Report interval instead of at the timeouts. A flow's first
// record is a new flow; its later ones (interim reports, and what is left
// at its timeout) have Continued set. The records of a flow add up to its
// exact packets and bytes; a flow whose packets were all reported emits
// nothing more at its timeout.
//
// A Meter is not safe for concurrent use. Flows live in an arena that grows
// up to MaxFlows and is then reused, so Packet does not allocate in steady
// state. Flows are emitted by Report, Expire and Flush, which append to a
// slice the caller owns; flows evicted by the MaxFlows bound are kept
// until the next Report, Expire or Flush call.
type Meter struct {
	cfg              MeterConfig
	active, inactive int64

	index map[meterKey]int32
	// The arena: slots in chunks of 1<<chunkBits, so that it grows
	// without copying; used slots are below used.
	chunks [][]slot
	used   int32
	free   int32 // first free slot
	queues [2]queue

	evicted []Record
	scratch Record
	stats   MeterStats
}

// NewMeter returns an empty meter.
func NewMeter(cfg MeterConfig) *Meter {
	def := DefaultMeterConfig()
	if cfg.ActiveTimeout <= 0 {
		cfg.ActiveTimeout = def.ActiveTimeout
	}
	if cfg.InactiveTimeout <= 0 {
		cfg.InactiveTimeout = def.InactiveTimeout
	}
	if cfg.MaxFlows <= 0 {
		cfg.MaxFlows = def.MaxFlows
	}
	cfg.MaxFlows = min(cfg.MaxFlows, math.MaxInt32)
	return &Meter{
		cfg:      cfg,
		active:   int64(cfg.ActiveTimeout),
		inactive: int64(cfg.InactiveTimeout),
		index:    make(map[meterKey]int32, min(cfg.MaxFlows, 1<<12)),
		free:     none,
		queues:   [2]queue{{none, none}, {none, none}},
	}
}

// Packet counts one captured packet; ts is its capture time in Unix
// nanoseconds and data starts with the link-layer header given by link.
// Packets that are not IP, or too short to parse, are counted as skipped
// and the parser's *DecodeError is returned; the meter is unchanged.
// data is not retained.
func (m *Meter) Packet(ts int64, data []byte, link LinkType) error {
	l3Len, err := ParseHeader(data, link, &m.scratch)
	if err != nil {
		m.stats.Skipped++
		return err
	}
	m.stats.Packets++
	k := keyOf(&m.scratch)
	if i, ok := m.index[k]; ok {
		s := m.at(i)
		// Capture files are not always in time order.
		if s.rec.Packets == 0 {
			s.rec.Start = ts
		} else {
			s.rec.Start = min(s.rec.Start, ts)
		}
		s.rec.Packets++
		s.rec.Bytes += uint64(l3Len)
		s.rec.TCPFlags |= m.scratch.TCPFlags
		s.rec.Fragment = s.rec.Fragment || m.scratch.Fragment
		s.rec.End = max(s.rec.End, ts)
		s.born = min(s.born, ts)
		if m.queues[byRecency].back != i {
			m.unlink(byRecency, i)
			m.pushBack(byRecency, i)
		}
		return nil
	}
	if len(m.index) >= m.cfg.MaxFlows {
		lru := m.queues[byRecency].front
		if m.at(lru).rec.Packets > 0 {
			m.evicted = append(m.evicted, m.at(lru).rec)
		}
		m.remove(lru)
		m.stats.Evicted++
	}
	i := m.alloc()
	s := m.at(i)
	s.rec = m.scratch
	s.rec.Start, s.rec.End, s.born = ts, ts, ts
	s.rec.Packets = 1
	s.rec.Bytes = uint64(l3Len)
	s.rec.SamplingRate = 1
	s.rec.Source = SourceMeter
	m.index[k] = i
	m.pushBack(byRecency, i)
	m.pushBack(byAge, i)
	return nil
}

// Expire appends to out the flows evicted since the last call, then every
// flow whose inactive timeout (now - last packet >= InactiveTimeout) has
// passed at now, a capture time in Unix nanoseconds, least recently seen
// first, then every flow whose active timeout (now - first packet >=
// ActiveTimeout) has passed, oldest first, and forgets them. Of a flow
// that Report emitted before, only the packets since are emitted, if any.
// Packets that arrive out of time order can delay a flow's expiry to a
// later call.
func (m *Meter) Expire(now int64, out []Record) []Record {
	out = m.drainEvicted(out)
	for i := m.queues[byRecency].front; i != none && now-m.at(i).rec.End >= m.inactive; i = m.queues[byRecency].front {
		out = m.take(i, out)
	}
	for i := m.queues[byAge].front; i != none && now-m.at(i).born >= m.active; i = m.queues[byAge].front {
		out = m.take(i, out)
	}
	return out
}

// Report appends to out the flows evicted since the last call, then, for
// every flow that got packets since the last Report, a record of those
// packets and bytes (Start and End the first and last of them, TCP flags
// those of the whole flow), most recently seen first; the flows stay.
// It costs one step per flow reported: the flows that got packets since
// the last Report are the back of the recency queue.
func (m *Meter) Report(out []Record) []Record {
	out = m.drainEvicted(out)
	for i := m.queues[byRecency].back; i != none && m.at(i).rec.Packets > 0; i = m.at(i).link[byRecency].prev {
		r := &m.at(i).rec
		out = append(out, *r)
		r.Packets, r.Bytes, r.Continued = 0, 0, true
	}
	return out
}

// Flush appends every flow still held to out, oldest start first, and
// empties the meter; it is called at the end of a capture. As with Expire,
// flows that Report emitted before add only their packets since.
func (m *Meter) Flush(out []Record) []Record {
	out = m.drainEvicted(out)
	for i := m.queues[byAge].front; i != none; i = m.at(i).link[byAge].next {
		if m.at(i).rec.Packets > 0 {
			out = append(out, m.at(i).rec)
		}
	}
	// Emptied whole rather than flow by flow: one delete per flow costs a
	// cache miss each. The arena keeps its chunks for the next capture.
	clear(m.index)
	for _, c := range m.chunks {
		clear(c)
	}
	m.used = 0
	m.free = none
	m.queues = [2]queue{{none, none}, {none, none}}
	return out
}

// take appends what slot i has not reported yet to out and removes it.
func (m *Meter) take(i int32, out []Record) []Record {
	if m.at(i).rec.Packets > 0 {
		out = append(out, m.at(i).rec)
	}
	m.remove(i)
	return out
}

// Config returns the configuration in effect, defaults filled in.
func (m *Meter) Config() MeterConfig { return m.cfg }

// Stats returns the meter's counters.
func (m *Meter) Stats() MeterStats {
	s := m.stats
	s.Flows = len(m.index)
	return s
}

func (m *Meter) drainEvicted(out []Record) []Record {
	out = append(out, m.evicted...)
	clear(m.evicted)
	m.evicted = m.evicted[:0]
	return out
}

// chunkBits is log2 of the slots per arena chunk.
const chunkBits = 12

// at returns slot i of the arena.
func (m *Meter) at(i int32) *slot {
	return &m.chunks[i>>chunkBits][i&(1<<chunkBits-1)]
}

// alloc returns a free slot, growing the arena while it is below MaxFlows.
func (m *Meter) alloc() int32 {
	if m.free != none {
		i := m.free
		m.free = m.at(i).link[byRecency].next
		return i
	}
	if m.used == int32(len(m.chunks))<<chunkBits {
		m.chunks = append(m.chunks, make([]slot, 1<<chunkBits))
	}
	m.used++
	return m.used - 1
}

// remove takes slot i out of the index and both queues and frees it.
func (m *Meter) remove(i int32) {
	delete(m.index, keyOf(&m.at(i).rec))
	m.unlink(byRecency, i)
	m.unlink(byAge, i)
	*m.at(i) = slot{}
	m.at(i).link[byRecency].next = m.free
	m.free = i
}

// pushBack appends slot i to queue q.
func (m *Meter) pushBack(q int, i int32) {
	back := m.queues[q].back
	m.at(i).link[q] = links{prev: back, next: none}
	if back != none {
		m.at(back).link[q].next = i
	} else {
		m.queues[q].front = i
	}
	m.queues[q].back = i
}

// unlink takes slot i out of queue q.
func (m *Meter) unlink(q int, i int32) {
	l := m.at(i).link[q]
	if l.prev != none {
		m.at(l.prev).link[q].next = l.next
	} else {
		m.queues[q].front = l.next
	}
	if l.next != none {
		m.at(l.next).link[q].prev = l.prev
	} else {
		m.queues[q].back = l.prev
	}
}
