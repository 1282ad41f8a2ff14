package scan

import (
	"encoding/binary"
	"math/bits"
	"net/netip"

	"github.com/flowsentry/flowsentry/flow"
	"github.com/flowsentry/flowsentry/internal/hashmix"
)

// pairSet is the set of (scanner, endpoint) pairs seen in the current
// second of a shard, as 64-bit hashes in an open-addressed table: it tells
// a scanner's new endpoints from its repeats, for every scanner at once,
// in memory proportional to the distinct pairs of one second. It grows by
// doubling up to maxSlots and is cleared, not freed, at each tick, so it
// allocates only when a second beats the high-water mark. When full, new
// pairs are not counted (the distinct counts are then low) and counted in
// full.
type pairSet struct {
	slots    []uint64
	n        int
	maxSlots int
	full     uint64
}

func newPairSet(maxSlots int) pairSet {
	return pairSet{slots: make([]uint64, 1024), maxSlots: maxSlots}
}

// add inserts h (never 0) and reports whether it was new.
func (s *pairSet) add(h uint64) bool { return s.tryAdd(h) == added }

// Results of tryAdd.
const (
	present = iota // already in the set
	added          // inserted
	full           // not in the set, which is full: not inserted
)

// tryAdd inserts h (never 0) and reports whether it was added, present
// or could not be added because the set is full (counted in full).
func (s *pairSet) tryAdd(h uint64) int {
	if 2*(s.n+1) > len(s.slots) {
		if len(s.slots) >= s.maxSlots {
			if s.has(h) {
				return present
			}
			s.full++
			return full
		}
		s.grow()
	}
	mask := uint64(len(s.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		switch s.slots[i] {
		case h:
			return present
		case 0:
			s.slots[i] = h
			s.n++
			return added
		}
	}
}

// has reports whether h (never 0) is in the set.
func (s *pairSet) has(h uint64) bool {
	mask := uint64(len(s.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		switch s.slots[i] {
		case h:
			return true
		case 0:
			return false
		}
	}
}

func (s *pairSet) grow() {
	old := s.slots
	s.slots = make([]uint64, 2*len(old))
	mask := uint64(len(s.slots) - 1)
	for _, h := range old {
		if h == 0 {
			continue
		}
		i := h & mask
		for s.slots[i] != 0 {
			i = (i + 1) & mask
		}
		s.slots[i] = h
	}
}

// reset empties the set, keeping its table.
func (s *pairSet) reset() {
	if s.n > 0 {
		clear(s.slots)
		s.n = 0
	}
}

// mix hashes two 64-bit words into one with a single 128-bit multiply
// (wyhash's mum): cheaper than fmix, but only as random as its inputs
// (one of them must be a hash): a sketch of structured inputs (addresses,
// ports) mixed alone would overestimate.
func mix(a, b uint64) uint64 {
	return hashmix.Mum(a^0xa0761d6478bd642f, b^0xe7037ed1a0b428db)
}

// addrHash hashes an address (its 16 bytes: an IPv4 address and its
// IPv4-mapped IPv6 form alike).
func addrHash(a netip.Addr) uint64 {
	hi, lo := addrWords(a)
	return hashmix.Fmix64(lo ^ bits.RotateLeft64(hi*0xc2b2ae3d27d4eb4f, 31))
}

// addrWords returns the two big-endian halves of a's 16-byte form (an
// IPv4 address's IPv4-mapped form). IPv4 addresses go through As4: As16
// costs several times more (its 16-byte copy reloaded as two words).
func addrWords(a netip.Addr) (hi, lo uint64) {
	if a.Is4() || a.Is4In6() {
		b := a.Unmap().As4()
		return 0, 0xffff<<32 | uint64(binary.BigEndian.Uint32(b[:]))
	}
	b := a.As16()
	return binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])
}

// itemHashes returns the hashes of what a probe of address hash ha, port
// and protocol proto adds to its scanner's distinct counts: the endpoint,
// the host and the port, each with its kind in the low 2 bits (so that the
// three share the pair set, and a tally's list names the sketch of each).
func itemHashes(ha uint64, port uint16, proto uint8) (endpoint, host, prt uint64) {
	pp := uint64(port)<<8 | uint64(proto)
	endpoint = mix(ha, pp^0x8ebc6af09c88c6e3)&^3 | uint64(kindEndpoint)
	host = ha&^3 | uint64(kindHost)
	prt = hashmix.Fmix64(pp^0x589965cc75374cc3)&^3 | uint64(kindPort)
	return
}

// tallySalt is what a tally's index mixes into its item hashes to make
// its pairs in the shard's pair set: item ^ salt.
func tallySalt(idx int32) uint64 { return hashmix.Fmix64(uint64(uint32(idx)) + 0x2545f4914f6cdd1d) }

// sockHash hashes a UDP socket pair as a probe carries it: the prober's
// address (its addrHash) and port, then the probed endpoint's (an answer
// carries them the other way round). Never 0.
func sockHash(src uint64, sport uint16, dst uint64, dport uint16) uint64 {
	h := mix(src^(uint64(sport)<<16|uint64(dport)), bits.RotateLeft64(dst, 17))
	if h == 0 {
		h = 1
	}
	return h
}

// single is the first attempt of a remote block (under one policy and
// traffic group) in a shard, kept until the block's second attempt: the
// parts of the record count needs.
type single struct {
	h           uint64 // keyHash of the scanner; 0: an empty slot
	pkts, bytes uint64
	sock        uint64 // the UDP socket pair (sockHash); 0 for others
	src, dst    [16]byte
	gen         uint32 // the shard's second it was seen in
	rate        uint32 // the sampling rate
	dport       uint16
	proto, kind uint8
}

// record returns the attempt as a record for count.
func (e *single) record() flow.Record {
	return flow.Record{Src: netip.AddrFrom16(e.src).Unmap(), Dst: netip.AddrFrom16(e.dst).Unmap(), DstPort: e.dport,
		Proto: e.proto, Packets: e.pkts, Bytes: e.bytes, SamplingRate: e.rate}
}

// singleWays is how many slots a bucket of singleSet has.
const singleWays = 4

// singleSet holds the first attempts of the remote blocks seen once in
// the current second of a shard or the previous one, in a fixed table of
// buckets of singleWays slots: a block gets a tally (a slot among the
// shard's scanners of the second) only from its second attempt, so that a
// flood of spoofed sources, each sending one probe, cannot fill the table
// and starve the real scanners. An entry of an older second is stale and
// reused. When a bucket holds singleWays entries of these two seconds, a
// new one evicts the oldest (counted in evicted): a scanner whose first
// attempt was evicted starts over at its next attempt.
type singleSet struct {
	slots   []single
	gen     uint32 // the current second, counted in ticks from 2
	evicted uint64
}

func newSingleSet(slots int) singleSet {
	return singleSet{slots: make([]single, slots), gen: 2}
}

// live reports whether e is an entry of this second or the previous one.
func (s *singleSet) live(e *single) bool { return e.h != 0 && e.gen+1 >= s.gen }

// bucket returns the slots where h lives.
func (s *singleSet) bucket(h uint64) []single {
	nb := uint64(len(s.slots) / singleWays)
	b := int((h>>17)%nb) * singleWays
	return s.slots[b : b+singleWays]
}

// take removes the live entry of h and returns it, if any.
func (s *singleSet) take(h uint64) (single, bool) {
	b := s.bucket(h)
	for i := range b {
		if e := &b[i]; e.h == h && s.live(e) {
			out := *e
			e.h = 0
			return out, true
		}
	}
	return single{}, false
}

// put stores the first attempt r (of kind kind, UDP socket pair sock) of
// the scanner of hash h, and reports whether it evicted a live entry.
func (s *singleSet) put(h uint64, r *flow.Record, kind uint8, sock uint64) bool {
	b := s.bucket(h)
	slot, evicted := -1, true
	for i := range b {
		if !s.live(&b[i]) {
			slot, evicted = i, false
			break
		}
		if slot < 0 || b[i].gen < b[slot].gen {
			slot = i
		}
	}
	if evicted {
		s.evicted++
	}
	b[slot] = single{h: h, pkts: r.Packets, bytes: r.Bytes, sock: sock, src: r.Src.As16(), dst: r.Dst.As16(),
		gen: s.gen, rate: r.SamplingRate, dport: r.DstPort, proto: r.Proto, kind: kind}
	return evicted
}

// next starts a new second.
func (s *singleSet) next() { s.gen++ }

// keyHash hashes a scanner's key (policy, group, dir and scanner), given
// the hash of its address (addrHash(scanner)). Never 0.
func keyHash(policy uint64, group uint32, dir uint8, ah uint64) uint64 {
	h := mix(ah, policy*0x9e3779b97f4a7c15^uint64(group)<<32^uint64(dir)<<63)
	if h == 0 {
		h = 1
	}
	return h
}
