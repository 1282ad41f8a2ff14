// Package samples keeps the first sampled packet headers sent to addresses
// under attack, so that a DDoS alert comes with its packets (as
// FastNetMon's attack reports do) and the API can serve them as a pcap.
//
// Only sFlow carries packet headers: the sFlow decoder offers the raw
// header of every flow sample (Offer) and the DDoS detectors mark the
// addresses they open alerts for (Watch). Offer runs on the collector's hot
// path in every worker: while nothing is watched it costs one atomic load;
// while addresses are watched, one map lookup in an immutable map, and a
// copy of the header only for a watched address that has fewer than
// Config.PerTarget headers. It never allocates for an address that is not
// watched.
//
// Memory is bounded: at most Config.MaxTargets addresses, each with at
// most Config.PerTarget headers of at most Config.MaxHeaderBytes bytes. A
// watch expires Config.TTL after the last Watch of its address; expired
// addresses are swept when a new address is watched, and a Watch of an
// expired address starts afresh. An address attacked again before its
// watch expired shares the headers of the first attack.
package samples

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flowsentry/flowsentry/config/check"
)

// Header protocols of sFlow raw packet header records (sFlow v5
// header_protocol), the values Offer takes.
const (
	ProtoEthernet = 1
	ProtoIPv4     = 11
	ProtoIPv6     = 12
)

// Store keeps sampled packet headers per attacked address. Its methods are
// safe for concurrent use; a nil *Store keeps nothing.
type Store struct {
	cfg Config
	ttl int64 // cfg.TTL in ns
	m   *metrics

	// targets is the immutable map of watched addresses, replaced whole
	// (copy on write) under mu; nil until the first Watch.
	targets atomic.Pointer[map[netip.Addr]*entry]
	mu      sync.Mutex
}

// entry holds the headers of one address.
type entry struct {
	// lastWatch is the time of the last Watch, Unix ns.
	lastWatch atomic.Int64
	// full is set once kept holds PerTarget headers, so that Offer need
	// not lock.
	full atomic.Bool

	mu   sync.Mutex
	kept []packet
}

// packet is one kept header.
type packet struct {
	time  int64  // Unix ns, when the datagram was received
	wire  uint32 // length of the frame from the header's first byte
	proto uint8  // ProtoEthernet, ProtoIPv4 or ProtoIPv6
	data  []byte // the header, at most MaxHeaderBytes
}

// New validates cfg and returns an empty store whose metrics are
// registered with reg (nil registers none).
func New(cfg Config, reg prometheus.Registerer) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, check.Prefix("samples", err)
	}
	s := &Store{cfg: cfg, ttl: int64(cfg.TTL)}
	m, err := newMetrics(reg, func() float64 { return float64(s.Targets()) })
	if err != nil {
		return nil, err
	}
	s.m = m
	return s, nil
}

// Watch marks target as attacked at now: the headers of the packets sent
// to it are kept from now on, until TTL after the last Watch. A DDoS
// detector calls it when it opens an alert for target; calling it again
// at each tick the attack goes on is cheap (an atomic store) and keeps the
// headers TTL after the attack ended. A Watch of a new address while
// MaxTargets addresses are watched is dropped and counted.
func (s *Store) Watch(target netip.Addr, now time.Time) {
	if s == nil {
		return
	}
	target = target.Unmap()
	if !target.IsValid() {
		return
	}
	t := now.UnixNano()
	if m := s.targets.Load(); m != nil {
		if e := (*m)[target]; e != nil && !s.expired(e, t) {
			e.touch(t)
			return
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var old map[netip.Addr]*entry
	if p := s.targets.Load(); p != nil {
		old = *p
	}
	if e := old[target]; e != nil && !s.expired(e, t) { // watched meanwhile
		e.touch(t)
		return
	}
	// Sweep expired addresses, and the expired watch of target itself:
	// a new attack starts a new set of headers.
	next := make(map[netip.Addr]*entry, len(old)+1)
	for a, e := range old {
		if !s.expired(e, t) && a != target {
			next[a] = e
		}
	}
	if len(next) >= s.cfg.MaxTargets {
		s.m.droppedTargets.Inc()
		if len(next) < len(old) {
			s.targets.Store(&next)
		}
		return
	}
	e := &entry{}
	e.lastWatch.Store(t)
	next[target] = e
	s.targets.Store(&next)
}

// touch moves the entry's last Watch to t unless it is later already.
func (e *entry) touch(t int64) {
	for {
		last := e.lastWatch.Load()
		if t <= last || e.lastWatch.CompareAndSwap(last, t) {
			return
		}
	}
}

// expired reports whether the watch of e has ended at t (Unix ns).
func (s *Store) expired(e *entry, t int64) bool {
	return t-e.lastWatch.Load() > s.ttl
}

// Offer keeps a copy of header when dst is watched and has fewer than
// PerTarget headers. proto is the sFlow header_protocol (ProtoEthernet,
// ProtoIPv4, ProtoIPv6; other protocols are ignored), frameLength and
// stripped the record's frame_length and stripped fields, now the time the
// datagram was received (Unix ns). Offer does not keep header: the caller
// may reuse it. The sFlow decoder calls it for every flow sample.
func (s *Store) Offer(dst netip.Addr, proto, frameLength, stripped uint32, header []byte, now int64) {
	if s == nil {
		return
	}
	m := s.targets.Load()
	if m == nil || len(*m) == 0 {
		return
	}
	e := (*m)[dst.Unmap()]
	if e == nil || s.expired(e, now) {
		return
	}
	if e.full.Load() {
		s.m.droppedBufferFull.Inc()
		return
	}
	if proto != ProtoEthernet && proto != ProtoIPv4 && proto != ProtoIPv6 || len(header) == 0 {
		return
	}
	// The frame from the header's first byte: the frame length less what
	// the agent stripped (the FCS), never less than the header.
	wire := uint32(len(header))
	if frameLength > stripped && frameLength-stripped > wire {
		wire = frameLength - stripped
	}
	header = header[:min(len(header), s.cfg.MaxHeaderBytes)]
	e.mu.Lock()
	if len(e.kept) >= s.cfg.PerTarget {
		e.mu.Unlock()
		s.m.droppedBufferFull.Inc()
		return
	}
	if e.kept == nil {
		e.kept = make([]packet, 0, s.cfg.PerTarget)
	}
	e.kept = append(e.kept, packet{time: now, wire: wire, proto: uint8(proto), data: append([]byte(nil), header...)})
	if len(e.kept) == s.cfg.PerTarget {
		e.full.Store(true)
	}
	e.mu.Unlock()
	s.m.kept.Inc()
}

// Count returns the number of headers held for target.
func (s *Store) Count(target netip.Addr) int {
	return len(s.packets(target))
}

// Targets returns the number of addresses held (watched, or expired and
// not yet swept).
func (s *Store) Targets() int {
	if s == nil {
		return 0
	}
	if m := s.targets.Load(); m != nil {
		return len(*m)
	}
	return 0
}

// packets returns the headers held for target, oldest first. The packets
// are never changed once kept, so the caller may read them without a
// lock.
func (s *Store) packets(target netip.Addr) []packet {
	if s == nil {
		return nil
	}
	m := s.targets.Load()
	if m == nil {
		return nil
	}
	e := (*m)[target.Unmap()]
	if e == nil {
		return nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.kept[:len(e.kept):len(e.kept)]
}
