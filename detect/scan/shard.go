package scan

import (
	"github.com/prometheus/client_golang/prometheus"

	"encoding/binary"
	"net/netip"

	"github.com/flowsentry/flowsentry/detect"
	"github.com/flowsentry/flowsentry/detect/target"
	"github.com/flowsentry/flowsentry/flow"
	"github.com/flowsentry/flowsentry/model"
	"github.com/flowsentry/flowsentry/policy"
)

// Directions of a tally.
const (
	dirOut uint8 = iota // a host of the group probing anything
	dirIn               // a remote block probing the group
)

// Kinds of the pairs of pairSet.
const (
	kindEndpoint uint8 = iota
	kindHost
	kindPort
)

// topSlots is how many ports a tally keeps (the Space-Saving summary of
// target.Sources, on ports).
const topSlots = 4

// Limits of a shard, per second.
const (
	// maxTallies bounds the scanners one shard counts in one second;
	// records of further scanners are dropped (and counted).
	maxTallies = 1 << 15
	// maxInTallies bounds the remote blocks among them: the last quarter
	// of the table is kept for the local hosts, so that a remote flood
	// of many blocks probing twice or more (a botnet) cannot starve them.
	maxInTallies = maxTallies - maxTallies/4
	// maxSingles bounds the first attempts of remote blocks kept until
	// their second (singleSet): 1<<16 slots of 80 bytes, 5 MiB a shard.
	maxSingles = 1 << 16
	// maxPairSlots bounds the pair set: 1<<20 slots of 8 bytes hold
	// 512 Ki distinct (scanner, endpoint) pairs a second.
	maxPairSlots = 1 << 20
	// maxAnswerSlots bounds each of the two sets of UDP answers (this
	// second's and the previous one's): 1<<18 slots of 8 bytes hold
	// 128 Ki distinct UDP socket pairs a second.
	maxAnswerSlots = 1 << 18
	// maxPending bounds the UDP endpoints a shard can settle (tell
	// answered from unanswered) in one second; further ones count as
	// unanswered.
	maxPending = 1 << 16
)

// Kinds of probe (see classify).
const (
	notProbe  uint8 = iota
	connProbe       // a connection attempt: counts everywhere
	ackProbe        // a lone bare ACK: counts toward distinct endpoints only
)

// Largest layer-3 size of a lone bare ACK: a 20-byte IPv4 (40-byte IPv6)
// header, a 20-byte TCP header and up to 20 bytes of TCP options.
const (
	maxACKBytes4 = 60
	maxACKBytes6 = 80
)

// scanKey identifies a scanner under one policy and traffic group: a local
// host (dirOut) or the first address of a remote /24 or /64 (dirIn).
type scanKey struct {
	policy  uint64
	scanner netip.Addr
	group   uint32
	dir     uint8
}

// portCount is a probed port and how many attempts it got.
type portCount struct {
	n     uint64
	port  uint16
	proto uint8
}

// tally is what one shard saw of one scanner in one second.
type tally struct {
	key   scanKey
	pol   *policy.Policy
	tg    *model.TrafficGroup
	addr  netip.Addr // the lowest address of the scanner seen
	conns uint64     // attempts, scaled by the sampling rate
	recs  uint64     // attempt records, not scaled
	pkts  uint64
	bytes uint64
	uniq  uint32 // distinct (address, protocol, port) probed
	hosts uint32 // distinct addresses probed
	ports uint32 // distinct (protocol, port) probed
	// protos has bit 0 for TCP, 1 for UDP, 2 for ICMP; proto is the last.
	protos uint8
	proto  uint8
	ntop   uint8
	top    [topSlots]portCount
}

// addPort counts n attempts on a port into a Space-Saving summary.
func addPort(top []portCount, used *uint8, port uint16, proto uint8, n uint64) {
	low := 0
	for i := range int(*used) {
		e := &top[i]
		if e.port == port && e.proto == proto {
			e.n += n
			return
		}
		if e.n < top[low].n {
			low = i
		}
	}
	if int(*used) < len(top) {
		top[*used] = portCount{n, port, proto}
		*used++
		return
	}
	top[low] = portCount{top[low].n + n, port, proto}
}

// Shard is the family's stage of one shard: it counts, per scanner, the
// connection attempts of the records the shard owns and their distinct
// endpoints during the current second, and hands the second over at its
// tick to the stage of the whole (Whole), which sums the shards. Its
// methods are called from the shard's goroutine; Whole reads the closed
// second at the tick, while the shard waits.
type Shard struct {
	policies func() *policy.Set
	gp       *detect.GroupPolicies
	model    *model.Model

	cur, closed []tally
	index       map[scanKey]int32
	pairs       pairSet

	// answers holds the UDP socket pairs (querier address and port,
	// server address and port) answered this second and the previous
	// one, as hashes; pending the UDP endpoints counted this second,
	// settled at the tick against answers.
	answers, prevAnswers pairSet
	pending              []pendingUDP

	// singles holds the first attempt of each remote block not yet
	// counted this second or the previous one; nIn is how many remote
	// blocks have a tally this second.
	singles singleSet
	nIn     int

	stats Stats
	drops prometheus.Counter // flowsentry_detect_dropped_total
}

// Stats count what a shard could not count.
type Stats struct {
	// DroppedRecords are attempts not counted because the shard already
	// counted maxTallies scanners that second (maxInTallies remote
	// blocks, for an attempt of a remote block).
	DroppedRecords uint64
	// EvictedSingles are first attempts of remote blocks dropped from
	// the full table of singles before the block's second attempt.
	EvictedSingles uint64
	// FullPairs are (scanner, endpoint) pairs not deduplicated because
	// the pair set was full: the distinct counts were low by that much.
	FullPairs uint64
	// AnsweredUDP are distinct UDP endpoints not counted because the
	// probed endpoint answered (a client, not a scanner).
	AnsweredUDP uint64
	// AnsweredAttempts are UDP attempts taken back from new_conn because
	// they were answered, weighted by their sampling rate.
	AnsweredAttempts uint64
	// UnsettledUDP are UDP attempts counted without looking for an
	// answer because maxPending were already pending that second or the
	// answer set was full.
	UnsettledUDP uint64
}

// pendingUDP is a UDP attempt a tally counted this second: the hash of its
// socket pair, which an answer would carry, its weight (sampling rate) and
// whether it was a new endpoint of the tally.
type pendingUDP struct {
	h    uint64
	idx  int32
	w    uint32
	uniq bool
}

// NewShard returns the stage of one shard of family d.Family.
func NewShard(d detect.Deps) *Shard {
	return &Shard{
		policies:    d.Policies,
		gp:          detect.NewGroupPolicies(d.Family),
		index:       make(map[scanKey]int32, 1024),
		pairs:       newPairSet(maxPairSlots),
		answers:     newPairSet(maxAnswerSlots),
		prevAnswers: newPairSet(maxAnswerSlots),
		pending:     make([]pendingUDP, 0, 1024),
		singles:     newSingleSet(maxSingles),
		drops:       d.Metrics.Dropped(d.Family, "max_scanners_per_second"),
	}
}

// Stats returns the shard's counts of what it dropped.
func (s *Shard) Stats() Stats {
	st := s.stats
	st.FullPairs = s.pairs.full
	st.UnsettledUDP += s.answers.full + s.prevAnswers.full
	st.EvictedSingles = s.singles.evicted
	return st
}

// SetModel takes a new model snapshot.
func (s *Shard) SetModel(m *model.Model) {
	s.model = m
	s.gp.Update(s.policies(), m)
}

// AddCounters does nothing.
func (s *Shard) AddCounters(*flow.IfCounters) {}

// Tick closes the second: Whole reads it until the next Tick.
func (s *Shard) Tick(int64) {
	s.settle()
	s.gp.Update(s.policies(), s.model)
	s.cur, s.closed = s.closed[:0], s.cur
	clear(s.index)
	s.pairs.reset()
	s.nIn = 0
	s.singles.next()
}

// settle takes back from the second's attempts and distinct endpoints
// the UDP ones answered to their prober this second or the previous one,
// whichever record came first, and starts a new second of answers.
func (s *Shard) settle() {
	for _, p := range s.pending {
		if s.answers.has(p.h) || s.prevAnswers.has(p.h) {
			t := &s.cur[p.idx]
			t.conns -= uint64(p.w)
			s.stats.AnsweredAttempts += uint64(p.w)
			if p.uniq {
				t.uniq--
				s.stats.AnsweredUDP++
			}
		}
	}
	s.pending = s.pending[:0]
	s.answers, s.prevAnswers = s.prevAnswers, s.answers
	s.answers.reset()
}

// classify tells whether r is a probe from its source, and which kind:
// see the package documentation.
func classify(r *flow.Record) uint8 {
	switch r.Proto {
	case flow.ProtoTCP:
		f := r.TCPFlags
		switch {
		case f&flow.TCPSyn != 0 && f&flow.TCPAck == 0:
			return connProbe // SYN probes (nmap adds its RST)
		case f&(flow.TCPSyn|flow.TCPAck|flow.TCPRst) == 0:
			return connProbe // NULL, FIN and Xmas probes; exporters without flags
		case f&flow.TCPSyn != 0:
			// A whole connection; its server's side (SYN-ACK from
			// the service port, backscatter included) is not.
			if r.SrcPort > r.DstPort {
				return connProbe
			}
		case f&^(flow.TCPEce|flow.TCPCwr) == flow.TCPAck && ackPing(r):
			return ackProbe
		}
		return notProbe // ACK, RST: replies and sessions under way
	case flow.ProtoUDP:
		// Toward a service: not from reflectors, nor from any port to a
		// higher one above 1023 (a service answering its client).
		if !target.IsReflector(r.SrcPort) && (r.DstPort <= r.SrcPort || r.DstPort < 1024) {
			return connProbe
		}
	case flow.ProtoICMP:
		if r.ICMPType == 8 || r.ICMPType == 13 || r.ICMPType == 17 { // echo, timestamp, mask requests
			return connProbe
		}
	case flow.ProtoICMPv6:
		if r.ICMPType == 128 {
			return connProbe
		}
	}
	return notProbe
}

// ackPing reports whether r, a TCP record of bare ACKs, is one ACK probe
// (nmap -PA): a single unsampled packet without payload, toward a service
// port (below 1024, or not above the source port), so that the lone ACKs
// a server sends its clients' ephemeral ports do not count.
func ackPing(r *flow.Record) bool {
	if r.Packets != 1 || r.SamplingRate > 1 || (r.DstPort >= 1024 && r.DstPort > r.SrcPort) {
		return false
	}
	if r.Src.Is4() || r.Src.Is4In6() {
		return r.Bytes <= maxACKBytes4
	}
	return r.Bytes <= maxACKBytes6
}

// AddClass counts r when it is a connection attempt: toward its source
// when the shard owns a source in a traffic group (outbound), toward the
// source's remote block when the shard owns a destination in a traffic
// group and the source is in none (inbound).
func (s *Shard) AddClass(r *flow.Record, c *model.Class) {
	if !s.gp.Any() {
		return
	}
	if r.Proto == flow.ProtoUDP {
		// Any UDP record may answer a probe counted in this shard: the
		// shard owning the prober's side also owns the answer's
		// destination, the same address.
		s.answers.add(sockHash(r.Dst, r.DstPort, r.Src, r.SrcPort))
	}
	if r.Continued {
		return
	}
	kind := classify(r)
	if kind == notProbe {
		return
	}
	var sock uint64 // the UDP socket pair, as its answer would carry it
	if r.Proto == flow.ProtoUDP {
		sock = sockHash(r.Src, r.SrcPort, r.Dst, r.DstPort)
	}
	switch {
	case c.Own&model.OwnSrc != 0 && len(c.Src.Groups) > 0:
		for _, g := range c.Src.Groups {
			for _, p := range s.gp.Of(g) {
				if t := Of(p); t != nil && t.watches(dirOut) && !s.gp.Allowed(p, r.Src) && !s.gp.Allowed(p, r.Dst) {
					s.count(r, p, g, dirOut, r.Src.Unmap(), kind, sock)
				}
			}
		}
	case c.Own&model.OwnDst != 0 && len(c.Src.Groups) == 0 && len(c.Dst.Groups) > 0:
		var block netip.Addr
		for _, g := range c.Dst.Groups {
			for _, p := range s.gp.Of(g) {
				if t := Of(p); t != nil && t.watches(dirIn) && !s.gp.Allowed(p, r.Src) {
					if !block.IsValid() {
						block = target.Block(r.Src).Addr()
					}
					s.count(r, p, g, dirIn, block, kind, sock)
				}
			}
		}
	}
}

// count adds probe r of kind kind toward scanner under policy p and group
// index g; sock is its UDP socket pair (sockHash), 0 for other protocols.
// A remote block gets a tally only at its second attempt in the shard
// within this second and the previous one; its first waits in s.singles
// and counts then.
func (s *Shard) count(r *flow.Record, p *policy.Policy, g uint16, dir uint8, scanner netip.Addr, kind uint8, sock uint64) {
	tg := s.gp.Group(g)
	k := scanKey{policy: p.ID, scanner: scanner, group: tg.ID, dir: dir}
	i, ok := s.index[k]
	if !ok {
		if len(s.cur) >= maxTallies || (dir == dirIn && s.nIn >= maxInTallies) {
			s.stats.DroppedRecords++
			s.drops.Inc()
			return
		}
		var first single
		if dir == dirIn {
			h := keyHash(k)
			var seen bool
			if first, seen = s.singles.take(h); !seen {
				if s.singles.put(h, r, kind, sock) {
					s.drops.Inc() // a live first attempt evicted
				}
				return
			}
			s.nIn++
		}
		i = int32(len(s.cur))
		s.index[k] = i
		s.cur = append(s.cur, tally{})
		s.cur[i] = tally{key: k, pol: p, tg: tg, addr: r.Src.Unmap()}
		if first.h != 0 {
			fr := first.record()
			s.add(i, &fr, first.kind, first.sock)
		}
	}
	s.add(i, r, kind, sock)
}

// add adds probe r of kind kind, of UDP socket pair sock, to tally i.
func (s *Shard) add(i int32, r *flow.Record, kind uint8, sock uint64) {
	t := &s.cur[i]
	if src := r.Src.Unmap(); src.Less(t.addr) {
		t.addr = src
	}
	w := uint64(max(r.SamplingRate, 1))
	if kind == connProbe {
		t.conns += w
	}
	t.recs++
	t.pkts += r.Packets
	t.bytes += r.Bytes
	t.proto = r.Proto
	switch r.Proto {
	case flow.ProtoTCP:
		t.protos |= 1
	case flow.ProtoUDP:
		t.protos |= 2
	default:
		t.protos |= 4
	}
	port := r.DstPort
	if r.Proto == flow.ProtoICMP || r.Proto == flow.ProtoICMPv6 {
		port = 0
	} else {
		addPort(t.top[:], &t.ntop, port, r.Proto, w)
	}
	a := r.Dst.As16()
	hi, lo := binary.BigEndian.Uint64(a[:8]), binary.BigEndian.Uint64(a[8:])
	uniq := s.pairs.add(pairHash(i, kindEndpoint, hi, lo, port, r.Proto))
	if uniq {
		t.uniq++
		if s.pairs.add(pairHash(i, kindHost, hi, lo, 0, 0)) {
			t.hosts++
		}
		if s.pairs.add(pairHash(i, kindPort, 0, 0, port, r.Proto)) {
			t.ports++
		}
	}
	if sock != 0 && kind == connProbe {
		if len(s.pending) < maxPending {
			s.pending = append(s.pending, pendingUDP{h: sock, idx: i, w: uint32(w), uniq: uniq})
		} else {
			s.stats.UnsettledUDP++
		}
	}
}
