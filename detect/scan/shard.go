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
	// maxPairSlots bounds the pair set: 1<<20 slots of 8 bytes hold
	// 512 Ki distinct (scanner, endpoint) pairs a second.
	maxPairSlots = 1 << 20
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

	stats Stats
	drops prometheus.Counter // flowsentry_detect_dropped_total
}

// Stats count what a shard could not count.
type Stats struct {
	// DroppedRecords are attempts not counted because the shard already
	// counted maxTallies scanners that second.
	DroppedRecords uint64
	// FullPairs are (scanner, endpoint) pairs not deduplicated because
	// the pair set was full: the distinct counts were low by that much.
	FullPairs uint64
}

// NewShard returns the stage of one shard of family d.Family.
func NewShard(d detect.Deps) *Shard {
	return &Shard{
		policies: d.Policies,
		gp:       detect.NewGroupPolicies(d.Family),
		index:    make(map[scanKey]int32, 1024),
		pairs:    newPairSet(maxPairSlots),
		drops:    d.Metrics.Dropped(d.Family, "max_scanners_per_second"),
	}
}

// Stats returns the shard's counts of what it dropped.
func (s *Shard) Stats() Stats {
	st := s.stats
	st.FullPairs = s.pairs.full
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
	s.gp.Update(s.policies(), s.model)
	s.cur, s.closed = s.closed[:0], s.cur
	clear(s.index)
	s.pairs.reset()
}

// attempt reports whether r opens (or tries to open) a connection from its
// source: see the package documentation.
func attempt(r *flow.Record) bool {
	switch r.Proto {
	case flow.ProtoTCP:
		f := r.TCPFlags
		switch {
		case f&flow.TCPSyn != 0 && f&flow.TCPAck == 0:
			return true // SYN probes (nmap adds its RST)
		case f&(flow.TCPSyn|flow.TCPAck|flow.TCPRst) == 0:
			return true // NULL, FIN and Xmas probes; exporters without flags
		case f&flow.TCPSyn != 0:
			// A whole connection; its server's side (SYN-ACK from
			// the service port, backscatter included) is not.
			return r.SrcPort > r.DstPort
		}
		return false // ACK, RST: replies and sessions under way
	case flow.ProtoUDP:
		// Toward a service: not from reflectors, nor from any port to a
		// higher one above 1023 (a service answering its client).
		return !target.IsReflector(r.SrcPort) && (r.DstPort <= r.SrcPort || r.DstPort < 1024)
	case flow.ProtoICMP:
		return r.ICMPType == 8 || r.ICMPType == 13 || r.ICMPType == 17 // echo, timestamp, mask requests
	case flow.ProtoICMPv6:
		return r.ICMPType == 128
	}
	return false
}

// AddClass counts r when it is a connection attempt: toward its source
// when the shard owns a source in a traffic group (outbound), toward the
// source's remote block when the shard owns a destination in a traffic
// group and the source is in none (inbound).
func (s *Shard) AddClass(r *flow.Record, c *model.Class) {
	if r.Continued || !s.gp.Any() || !attempt(r) {
		return
	}
	switch {
	case c.Own&model.OwnSrc != 0 && len(c.Src.Groups) > 0:
		for _, g := range c.Src.Groups {
			for _, p := range s.gp.Of(g) {
				if t := Of(p); t != nil && t.watches(dirOut) && !s.gp.Allowed(p, r.Src) && !s.gp.Allowed(p, r.Dst) {
					s.count(r, p, g, dirOut, r.Src.Unmap())
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
					s.count(r, p, g, dirIn, block)
				}
			}
		}
	}
}

// count adds attempt r toward scanner under policy p and group index g.
func (s *Shard) count(r *flow.Record, p *policy.Policy, g uint16, dir uint8, scanner netip.Addr) {
	tg := s.gp.Group(g)
	k := scanKey{policy: p.ID, scanner: scanner, group: tg.ID, dir: dir}
	i, ok := s.index[k]
	if !ok {
		if len(s.cur) >= maxTallies {
			s.stats.DroppedRecords++
			s.drops.Inc()
			return
		}
		i = int32(len(s.cur))
		s.index[k] = i
		s.cur = append(s.cur, tally{})
		t := &s.cur[i]
		*t = tally{key: k, pol: p, tg: tg, addr: r.Src.Unmap()}
	}
	t := &s.cur[i]
	if src := r.Src.Unmap(); src.Less(t.addr) {
		t.addr = src
	}
	w := uint64(max(r.SamplingRate, 1))
	t.conns += w
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
	if s.pairs.add(pairHash(i, kindEndpoint, hi, lo, port, r.Proto)) {
		t.uniq++
		if s.pairs.add(pairHash(i, kindHost, hi, lo, 0, 0)) {
			t.hosts++
		}
		if s.pairs.add(pairHash(i, kindPort, 0, 0, port, r.Proto)) {
			t.ports++
		}
	}
}
