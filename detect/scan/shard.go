package scan

import (
	"github.com/prometheus/client_golang/prometheus"

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
	// exactLimit is how many distinct endpoints a tally counts exactly
	// in a second (through the pair set) before it counts them, and its
	// hosts and ports, with HyperLogLog sketches.
	exactLimit = 1024
	// maxSketches bounds the tallies of a second counted with sketches
	// (6 KiB each, 12 MiB a shard); further ones stay exact.
	maxSketches = 1 << 11
	// maxChunks bounds the chunks of the lists of exact hashes (128 bytes
	// each, 8 MiB a shard); a tally that needs more switches to sketches.
	maxChunks = 1 << 16
	// portSlots is the size of the direct-mapped table of the (tally,
	// source port) pairs of the second's whole-connection records.
	portSlots = 1 << portBits
	portBits  = 14
)

// Kinds of probe (see classify).
const (
	notProbe   uint8 = iota
	connProbe        // a connection attempt: counts everywhere
	ackProbe         // a lone bare ACK: counts toward distinct endpoints only
	wholeProbe       // a client's whole TCP connection: once per source port
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
	// The fields every record reads or writes come first, in the
	// tally's first cache lines.
	h     uint64 // keyHash of key
	key   scanKey
	conns uint64 // attempts, scaled by the sampling rate
	recs  uint64 // attempt records, not scaled
	pkts  uint64
	bytes uint64
	// sk is the index + 1 of the tally's sketches in Shard.sk once it
	// counted exactLimit distinct endpoints (0: counted exactly);
	// head and tail are its list of the hashes it counted exactly
	// (chunk indexes + 1); adj are exactly counted endpoints found
	// answered after the switch, taken from the sketch's estimate.
	sk, head, tail int32
	// protos has bit 0 for TCP, 1 for UDP, 2 for ICMP; proto is the last.
	protos uint8
	proto  uint8
	ntop   uint8
	uniq   uint32 // distinct (address, protocol, port) probed
	hosts  uint32 // distinct addresses probed
	ports  uint32 // distinct (protocol, port) probed
	adj    uint32
	// allowGen is the Shard.allowGen under which the scanner (a local
	// host) was found not allowed.
	allowGen uint32
	top      [topSlots]portCount
	pol      *policy.Policy
	tg       *model.TrafficGroup
	addr     netip.Addr // the lowest address of the scanner seen
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
	// index finds the second's tallies by the hash of their key: nidx
	// slots of idx are used.
	idx   []idxSlot
	nidx  int
	pairs pairSet
	// sk are the sketches of the tallies counting approximately (nsk
	// in use this second); chunks (nchunks in use) the lists of the
	// hashes counted exactly; srcPorts the (tally, source port) tags of
	// the second's whole connections (portsUsed: not all zero).
	sk        []sketches
	nsk       int
	chunks    []chunk
	nchunks   int
	srcPorts  []uint32
	portsUsed bool
	// big holds the key hashes of the tallies that counted with
	// sketches last second: they start with sketches this second, and
	// bigNext those of this second.
	big, bigNext pairSet

	// answers holds the UDP socket pairs (querier address and port,
	// server address and port) answered this second and the previous
	// one, as hashes; pending the UDP endpoints counted this second,
	// settled at the tick against answers.
	answers, prevAnswers pairSet
	pending              []pendingUDP

	// later are the sketch inserts waiting for their registers (see
	// insertLater); nlater counts them since the last flush.
	later  [laterLen]laterInsert
	nlater int

	// singles holds the first attempt of each remote block not yet
	// counted this second or the previous one; nIn is how many remote
	// blocks have a tally this second.
	singles singleSet
	nIn     int

	// allowGen counts the shard's models: a tally found its scanner
	// allowed or not under the model of the same generation.
	allowGen uint32

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
	he   uint64 // the endpoint's hash, to add to the tally's sketch if unanswered; 0: counted already
	idx  int32
	w    uint32
	uniq bool
}

// idxSlot is a slot of a shard's index of tallies: the hash of a key
// (keyHash; 0: empty), its tally and a copy of the tally's sk, so that
// the loads of a big scanner's sketch registers start with the tally's
// (add), not after it.
type idxSlot struct {
	h     uint64
	i, sk int32
}

// NewShard returns the stage of one shard of family d.Family.
func NewShard(d detect.Deps) *Shard {
	return &Shard{
		policies:    d.Policies,
		gp:          detect.NewGroupPolicies(d.Family),
		idx:         make([]idxSlot, 1024),
		srcPorts:    make([]uint32, portSlots),
		big:         newPairSet(2 * maxSketches),
		bigNext:     newPairSet(2 * maxSketches),
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
	s.allowGen++ // allow-lists may have changed: look again
}

// AddCounters does nothing.
func (s *Shard) AddCounters(*flow.IfCounters) {}

// Tick closes the second: Whole reads it until the next Tick.
func (s *Shard) Tick(int64) {
	s.flushLater()
	s.settle()
	s.estimate()
	s.gp.Update(s.policies(), s.model)
	s.cur, s.closed = s.closed[:0], s.cur
	if s.nidx > 0 {
		clear(s.idx)
		s.nidx = 0
	}
	if s.portsUsed {
		clear(s.srcPorts)
		s.portsUsed = false
	}
	s.nsk, s.nchunks = 0, 0
	s.big, s.bigNext = s.bigNext, s.big
	s.bigNext.reset()
	s.pairs.reset()
	s.nIn = 0
	s.singles.next()
}

// settle takes back from the second's attempts and distinct endpoints
// the UDP ones answered to their prober this second or the previous one,
// whichever record came first, and starts a new second of answers.
func (s *Shard) settle() {
	for _, p := range s.pending {
		t := &s.cur[p.idx]
		if s.answers.has(p.h) || s.prevAnswers.has(p.h) {
			t.conns -= uint64(p.w)
			s.stats.AnsweredAttempts += uint64(p.w)
			if p.uniq {
				if t.sk == 0 {
					t.uniq--
				} else {
					t.adj++
				}
				s.stats.AnsweredUDP++
			}
		} else if p.he != 0 {
			s.sk[t.sk-1][kindEndpoint].insert(p.he)
		}
	}
	s.pending = s.pending[:0]
	s.answers, s.prevAnswers = s.prevAnswers, s.answers
	s.answers.reset()
}

// estimate sets the distinct counts of the tallies counted with sketches
// to their estimates.
func (s *Shard) estimate() {
	for i := range s.cur {
		t := &s.cur[i]
		if t.sk == 0 {
			continue
		}
		s.bigNext.add(t.h)
		sk := &s.sk[t.sk-1]
		t.uniq = sk[kindEndpoint].estimate()
		t.uniq -= min(t.uniq, t.adj)
		t.hosts = sk[kindHost].estimate()
		t.ports = sk[kindPort].estimate()
	}
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
			// A whole connection, from the client's side: more than
			// SYN-ACKs. Not its server's side (from the service port),
			// nor the SYN-ACKs (and their retransmissions) of a server
			// answering SYNs — a flood's spoofed ones included.
			if r.SrcPort > r.DstPort && (f&(flow.TCPPsh|flow.TCPFin|flow.TCPRst|flow.TCPUrg) != 0 || payload(r)) {
				return wholeProbe
			}
		case f&^(flow.TCPEce|flow.TCPCwr) == flow.TCPAck && ackPing(r):
			return ackProbe
		}
		return notProbe // ACK, RST: replies and sessions under way
	case flow.ProtoUDP:
		// Toward a service: not from reflectors, nor from any port to a
		// higher one above 1023 (a service answering its client).
		if udpProbe(r.SrcPort, r.DstPort) {
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

// udpProbe reports whether a UDP record from port sport to port dport
// goes toward a service (see classify).
func udpProbe(sport, dport uint16) bool {
	// The ports first: most records that are no probe (a service's
	// answers) are told without the reflector table.
	return (dport <= sport || dport < 1024) && !target.IsReflector(sport)
}

// Largest average layer-3 size of the packets of a TCP record without
// payload: 20 bytes of IPv4 header (40 of IPv6), 20 of TCP header and
// up to 40 of TCP options (a SYN-ACK's MSS, window scale, SACK,
// timestamps, MPTCP or Fast Open options).
const (
	maxEmptyBytes4 = 80
	maxEmptyBytes6 = 100
)

// payload reports whether the packets of TCP record r carry data: more
// bytes a packet, on average, than headers and options fill.
func payload(r *flow.Record) bool {
	if r.Packets == 0 {
		return false
	}
	if r.Src.Is4() || r.Src.Is4In6() {
		return r.Bytes > r.Packets*maxEmptyBytes4
	}
	return r.Bytes > r.Packets*maxEmptyBytes6
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
	var hs, hd uint64 // addrHash of the source and destination, once known
	if r.Proto == flow.ProtoUDP && udpProbe(r.DstPort, r.SrcPort) {
		// Any UDP record may answer a probe counted in this shard: the
		// shard owning the prober's side also owns the answer's
		// destination, the same address. Only a record whose reverse
		// would be a probe can answer one.
		hs, hd = addrHash(r.Src), addrHash(r.Dst)
		s.answers.add(sockHash(hd, r.DstPort, hs, r.SrcPort))
	}
	if r.Continued {
		return
	}
	kind := classify(r)
	if kind == notProbe {
		return
	}
	if hd == 0 {
		hs, hd = addrHash(r.Src), addrHash(r.Dst)
	}
	var sock uint64 // the UDP socket pair, as its answer would carry it
	if r.Proto == flow.ProtoUDP {
		sock = sockHash(hs, r.SrcPort, hd, r.DstPort)
	}
	switch {
	case c.Own&model.OwnSrc != 0 && len(c.Src.Groups) > 0:
		src := r.Src.Unmap()
		for _, g := range c.Src.Groups {
			for _, p := range s.gp.Of(g) {
				// The source's allow-list check is made once per tally
				// and model, in count.
				if t := Of(p); t != nil && t.watches(dirOut) && !s.gp.Allowed(p, r.Dst) {
					s.count(r, p, g, dirOut, src, hs, hd, kind, sock)
				}
			}
		}
	case c.Own&model.OwnDst != 0 && len(c.Src.Groups) == 0 && len(c.Dst.Groups) > 0:
		var block netip.Addr
		var ah uint64
		for _, g := range c.Dst.Groups {
			for _, p := range s.gp.Of(g) {
				if t := Of(p); t != nil && t.watches(dirIn) && !s.gp.Allowed(p, r.Src) {
					if !block.IsValid() {
						block = target.Block(r.Src).Addr()
						ah = addrHash(block)
					}
					s.count(r, p, g, dirIn, block, ah, hd, kind, sock)
				}
			}
		}
	}
}

// find returns the index of the tally of the key (policy, group, dir,
// scanner) of hash h this second, or the slot of s.idx to insert it at
// and -1.
func (s *Shard) find(policy uint64, group uint32, dir uint8, scanner netip.Addr, h uint64) (int, int32) {
	mask := uint64(len(s.idx) - 1)
	for j := h & mask; ; j = (j + 1) & mask {
		e := &s.idx[j]
		if e.h == 0 {
			return int(j), -1
		}
		if e.h == h {
			if k := &s.cur[e.i].key; k.policy == policy && k.group == group && k.dir == dir && k.scanner == scanner {
				return int(j), e.i
			}
		}
	}
}

// growIndex doubles s.idx.
func (s *Shard) growIndex() {
	old := s.idx
	s.idx = make([]idxSlot, 2*len(old))
	mask := uint64(len(s.idx) - 1)
	for _, e := range old {
		if e.h == 0 {
			continue
		}
		j := e.h & mask
		for s.idx[j].h != 0 {
			j = (j + 1) & mask
		}
		s.idx[j] = e
	}
}

// count adds probe r of kind kind toward scanner (of address hash ah;
// hd: the addrHash of r.Dst)
// under policy p and group index g; sock is its UDP socket pair
// (sockHash), 0 for other protocols. A remote block gets a tally only at
// its second attempt in the shard within this second and the previous
// one; its first waits in s.singles and counts then. A local scanner
// (dirOut) on an allow-list of p does not count: count looks it up when
// it makes its tally, and again after a new model.
func (s *Shard) count(r *flow.Record, p *policy.Policy, g uint16, dir uint8, scanner netip.Addr, ah, hd uint64, kind uint8, sock uint64) {
	tg := s.gp.Group(g)
	h := keyHash(p.ID, tg.ID, dir, ah)
	slot, i := s.find(p.ID, tg.ID, dir, scanner, h)
	if i >= 0 && dir == dirOut {
		if t := &s.cur[i]; t.allowGen != s.allowGen {
			if s.gp.Allowed(p, r.Src) {
				return
			}
			t.allowGen = s.allowGen
		}
	}
	if i < 0 {
		if dir == dirOut && s.gp.Allowed(p, r.Src) {
			return
		}
		k := scanKey{policy: p.ID, scanner: scanner, group: tg.ID, dir: dir}
		if len(s.cur) >= maxTallies || (dir == dirIn && s.nIn >= maxInTallies) {
			s.stats.DroppedRecords++
			s.drops.Inc()
			return
		}
		var first single
		if dir == dirIn {
			var seen bool
			if first, seen = s.singles.take(h); !seen {
				if s.singles.put(h, r, kind, sock) {
					s.drops.Inc() // a live first attempt evicted
				}
				return
			}
			s.nIn++
		}
		if 2*(s.nidx+1) > len(s.idx) {
			s.growIndex()
			slot, _ = s.find(p.ID, tg.ID, dir, scanner, h)
		}
		i = int32(len(s.cur))
		s.idx[slot] = idxSlot{h: h, i: i}
		s.nidx++
		s.cur = append(s.cur, tally{})
		s.cur[i] = tally{key: k, pol: p, tg: tg, addr: r.Src.Unmap(), h: h, allowGen: s.allowGen}
		if s.big.n > 0 && s.big.has(h) {
			s.toSketch(&s.cur[i]) // big last second: no exact phase
		}
		if first.h != 0 {
			fr := first.record()
			s.add(i, s.cur[i].sk, &fr, addrHash(fr.Dst), first.kind, first.sock)
		}
		s.idx[slot].sk = s.cur[i].sk
	}
	e := &s.idx[slot]
	s.add(i, e.sk, r, hd, kind, sock)
	if e.sk == 0 {
		e.sk = s.cur[i].sk // switched to sketches in add
	}
}

// firstFromPort reports whether tally i had no whole connection from
// source port port yet this second, and notes it had. The table is
// direct-mapped: a pair evicted by another is new again when seen again.
func (s *Shard) firstFromPort(i int32, port uint16) bool {
	// i < maxTallies = 2^15: the pair fits 31 bits, kept whole (with
	// bit 31 set: never 0) as the slot's tag, found by Fibonacci
	// hashing.
	tag := uint32(i)<<16 | uint32(port) | 1<<31
	j := (tag * 0x9e3779b1) >> (32 - portBits)
	if s.srcPorts[j] == tag {
		return false
	}
	s.srcPorts[j] = tag
	s.portsUsed = true
	return true
}

// keep appends h to the list of the hashes tally t counted exactly, and
// reports false when no chunk is left.
func (s *Shard) keep(t *tally, h uint64) bool {
	if t.tail != 0 {
		if c := &s.chunks[t.tail-1]; c.n < chunkLen {
			c.h[c.n] = h
			c.n++
			return true
		}
	}
	if s.nchunks >= maxChunks {
		return false
	}
	if s.nchunks == len(s.chunks) {
		s.chunks = append(s.chunks, chunk{})
	}
	c := &s.chunks[s.nchunks]
	s.nchunks++
	*c = chunk{n: 1}
	c.h[0] = h
	if t.tail != 0 {
		s.chunks[t.tail-1].next = int32(s.nchunks)
	} else {
		t.head = int32(s.nchunks)
	}
	t.tail = int32(s.nchunks)
	return true
}

// exact adds item hash h to tally t's exact distinct counts (salt: its
// tallySalt) and reports whether it was new, and false in ok when the
// tally must count with sketches from now on (the pair set or the chunks
// are exhausted).
func (s *Shard) exact(t *tally, salt, h uint64) (isNew, ok bool) {
	k := h ^ salt
	if k == 0 {
		k = 1
	}
	switch s.pairs.tryAdd(k) {
	case present:
		return false, true
	case full:
		return false, false
	}
	return true, s.keep(t, h)
}

// toSketch makes tally t count with sketches, starting from the hashes it
// counted exactly; it stays exact when maxSketches are in use.
func (s *Shard) toSketch(t *tally) {
	if s.nsk >= maxSketches {
		return
	}
	if s.nsk == len(s.sk) {
		s.sk = append(s.sk, sketches{})
	} else {
		s.sk[s.nsk] = sketches{}
	}
	sk := &s.sk[s.nsk]
	s.nsk++
	t.sk = int32(s.nsk)
	for c := t.head; c != 0; c = s.chunks[c-1].next {
		ch := &s.chunks[c-1]
		for _, h := range ch.h[:ch.n] {
			sk[h&3].insert(h)
		}
	}
	t.head, t.tail = 0, 0
}

// add adds probe r (hd: the addrHash of r.Dst) of kind kind, of UDP
// socket pair sock, to tally i, whose sk is sk.
func (s *Shard) add(i, sk int32, r *flow.Record, hd uint64, kind uint8, sock uint64) {
	if kind == wholeProbe && !s.firstFromPort(i, r.SrcPort) {
		// Whole connections from one source port to several
		// endpoints: a server's side answering from its port.
		return
	}
	port := r.DstPort
	icmp := r.Proto == flow.ProtoICMP || r.Proto == flow.ProtoICMPv6
	if icmp {
		port = 0
	}
	he, hh, hp := itemHashes(hd, port, r.Proto)
	wasSketch := sk != 0
	pend := sock != 0
	if pend && len(s.pending) >= maxPending {
		s.stats.UnsettledUDP++
		pend = false
	}
	if wasSketch {
		// The sketches first, their addresses known without the tally:
		// their loads overlap its.
		s.insertLater(sk-1, kindHost, hh)
		s.insertLater(sk-1, kindPort, hp)
		if !pend {
			s.insertLater(sk-1, kindEndpoint, he)
		}
	}
	t := &s.cur[i]
	if t.key.dir == dirIn {
		if src := r.Src.Unmap(); src.Less(t.addr) {
			t.addr = src
		}
	}
	w := uint64(max(r.SamplingRate, 1))
	if kind != ackProbe {
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
	switch {
	case icmp:
	case !wasSketch:
		addPort(t.top[:], &t.ntop, port, r.Proto, w)
	case he>>2&7 == 0:
		// A big scanner's ports are sampled: the attempts to one
		// endpoint in 8 (by its hash), weighted 8.
		addPort(t.top[:], &t.ntop, port, r.Proto, 8*w)
	}
	uniq := false
	if !wasSketch {
		salt := tallySalt(i)
		var ok bool
		uniq, ok = s.exact(t, salt, he)
		if uniq {
			t.uniq++
			if n, ok2 := s.exact(t, salt, hh); n {
				t.hosts++
			} else if !ok2 {
				ok = false
			}
			if n, ok2 := s.exact(t, salt, hp); n {
				t.ports++
			} else if !ok2 {
				ok = false
			}
		}
		if !ok || t.uniq >= exactLimit {
			s.toSketch(t)
		}
	}
	if wasSketch {
		if pend {
			// Counted at the tick, unless answered.
			s.pending = append(s.pending, pendingUDP{h: sock, he: he, idx: i, w: uint32(w)})
		}
		return
	}
	if t.sk != 0 { // switched to sketches by this record
		skp := &s.sk[t.sk-1]
		skp[kindHost].insert(hh)
		skp[kindPort].insert(hp)
		skp[kindEndpoint].insert(he)
	}
	if pend {
		s.pending = append(s.pending, pendingUDP{h: sock, idx: i, w: uint32(w), uniq: uniq})
	}
}
