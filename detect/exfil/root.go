// Package exfil is the data exfiltration detector family (policy family
// "exfil", object type TGRP, ALERT_TYPE exfil): an alert is raised when
// one session from an address of the policy's traffic group sends more
// than the policy's threshold of bytes to an address outside that
// traffic group and outside the INT blocks of the policy's partition,
// whichever side of the session is the client (a large upload, or a
// large response of an internal server to an outside client). A large
// download from outside, a copy between two traffic groups of the
// partition or to an INT block raise nothing; a receiver on the policy's
// or the partition's allow-list neither.
//
// # Sessions
//
// A session is one direction of a 5-tuple: sender address and port,
// receiver address and port, protocol. The records of a session (the
// interim reports of a meter, the records an exporter's active timeout
// splits a long flow into, sampled records) add up as long as they
// follow each other within session_idle seconds (default 300) on the
// stage's clock; after that long without a record the session ends and
// the next record of the 5-tuple starts a new one. The stage stitches with
// the longest session_idle of the exfil policies in force.
//
// # One alert per sender and receiver
//
// The alert is keyed by the sender and receiver addresses: further
// sessions between them that cross the threshold add their bytes to
// BYTES_EXFILTRATED, and their server port (the more service-like of the
// two ports, see below) to ADDITIONAL_PORTS. A session that crossed keeps
// adding every byte it sends; the alert is observed at every tick that
// added bytes, so its UPDATEs carry the growing count, and it ends (the
// alert engine's quiet period) once the sessions stop.
//
// # Fields
//
// In the manual's order: SENDER_IP, SENDER_TG, SENDER_TG_NAME,
// SENDER_PORT, RECEIVER_IP, RECEIVER_TG (the receiver's first traffic
// group of the partition, 0 for none), RECEIVER_TG_NAME (absent when
// RECEIVER_TG is 0), RECEIVER_PORT, PROTO, BYTES_EXFILTRATED,
// THRESHOLD_VALUE (bytes), TOTAL_PORTS, ADDITIONAL_PORTS (at most
// MaxListedPorts; TOTAL_PORTS counts them all). The ports and protocol
// are those of the first session that crossed. The server port of a
// session is the lower-ranked of its two ports: below 1024, then known
// service ports, then below 32768, then the rest (the lower number within
// a rank).
//
// # State and memory
//
// Sessions live in the shard that owns the record as a whole
// (model.OwnRecord); only records whose source is in a traffic group
// with an exfil policy, towards an address that policy watches, make
// one. A session is a map entry of a fixed size without pointers (IPv4:
// a 14-byte key and a 16-byte value; IPv6: 38 and 16): with the map's
// overhead, a million sessions take about 84 bytes each (IPv4) or 134
// (IPv6) of heap, as TestSessionMemory measures. A shard holds at most
// MaxSessions; records of new sessions beyond that are dropped, counted
// (Dropped) and logged at most once a minute. Ended sessions are swept
// every 30 seconds. Records of known sessions allocate nothing.
package exfil

import (
	"github.com/prometheus/client_golang/prometheus"

	"log/slog"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/flowsentry/flowsentry/alert"
	"github.com/flowsentry/flowsentry/detect"
	"github.com/flowsentry/flowsentry/flow"
	"github.com/flowsentry/flowsentry/model"
	"github.com/flowsentry/flowsentry/policy"
)

// AlertType is the ALERT_TYPE of every alert of the family.
const AlertType = "exfil"

// Bounds of the state of a shard.
const (
	// MaxSessions is how many sessions a shard tracks.
	MaxSessions = 1 << 20
	// MaxAlerts is how many sender/receiver alerts a shard tracks.
	MaxAlerts = 65536
	// MaxListedPorts is how many additional server ports an alert lists.
	MaxListedPorts = 100
	// AlertIdle is how long a sender/receiver pair whose sessions added
	// nothing is kept: the alert engine's default quiet period, after
	// which its alert has ended.
	AlertIdle = 10 * time.Minute
)

const (
	sweepEvery = int64(30 * time.Second)
	logEvery   = int64(time.Minute)
)

// key4 and key6 are the 5-tuples of IPv4 and IPv6 sessions: comparable,
// fixed, and without pointers, so the maps are not scanned by the GC.
type key4 struct {
	src, dst     [4]byte
	sport, dport uint16
	proto        uint8
}

type key6 struct {
	src, dst     [16]byte
	sport, dport uint16
	proto        uint8
}

// session is what a session has sent.
type session struct {
	bytes uint64
	last  uint32 // stage clock, Unix seconds
}

type alertKey struct {
	policy           uint64
	sender, receiver netip.Addr
}

type exAlert struct {
	key                      string
	pol                      *policy.Policy
	sender, receiver         netip.Addr
	senderTG, receiverTG     uint32
	senderPort, receiverPort uint16
	proto                    uint8
	serverPort               uint16
	bytes                    uint64
	totalPorts               uint64
	ports                    []uint16
	last                     int64
	// since the last observation
	added, packets   uint64
	dirty, announced bool
}

// Shard is the family's stage in one shard. Its methods are called from
// the shard's goroutine only.
type Shard struct {
	gp       *detect.GroupPolicies
	policies func() *policy.Set
	observer detect.Observer
	log      *slog.Logger

	model      *model.Model
	groupNames map[uint32]string
	cidNames   map[uint32]string
	idle       uint32 // seconds

	v4        map[key4]session
	v6        map[key6]session
	alerts    map[alertKey]*exAlert
	dirty     []*exAlert
	now       int64
	nowSec    uint32
	lastTick  int64
	lastSweep int64
	dropped   uint64
	drops     [2]prometheus.Counter // flowsentry_detect_dropped_total: max_sessions, max_alerts
	logged    uint64
	lastLog   int64
}

// New returns the stage of one shard, reading the policies of family
// d.Family and reporting to d.Observer.
func New(d detect.Deps) *Shard {
	f := d.Family
	if f == "" {
		f = Family
	}
	log := d.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Shard{gp: detect.NewGroupPolicies(f), policies: d.Policies, observer: d.Observer, log: log,
		idle: DefaultSessionIdle, v4: map[key4]session{}, v6: map[key6]session{}, alerts: map[alertKey]*exAlert{},
		drops: [2]prometheus.Counter{d.Metrics.Dropped(f, "max_sessions"), d.Metrics.Dropped(f, "max_alerts")}}
}

// Sessions returns how many sessions the shard tracks.
func (s *Shard) Sessions() int { return len(s.v4) + len(s.v6) }

// Dropped returns how many records of new sessions were not tracked
// because the shard held MaxSessions (or MaxAlerts alerts).
func (s *Shard) Dropped() uint64 { return s.dropped }

// SetModel takes a new model snapshot.
func (s *Shard) SetModel(m *model.Model) {
	s.model = m
	s.groupNames = map[uint32]string{}
	s.cidNames = map[uint32]string{}
	if m != nil {
		for _, g := range m.Groups {
			s.groupNames[g.ID] = g.Name
		}
		for _, p := range m.Partitions {
			s.cidNames[p.CID] = p.Name
		}
	}
	s.update()
}

// AddCounters does nothing.
func (s *Shard) AddCounters(*flow.IfCounters) {}

// watched reports whether p watches what src (in group g) sends to dst.
func (s *Shard) watched(p *policy.Policy, g uint16, c *model.Class, dst netip.Addr) bool {
	return !slices.Contains(c.Dst.Groups, g) && !slices.Contains(c.Dst.Internal, p.CID) && !s.gp.Allowed(p, dst)
}

// watchedIn reports whether p, in force on one of groups, watches what
// the record's source sends to dst: a template applies to every group of
// its partition, and a record of two of them counts once.
func (s *Shard) watchedIn(p *policy.Policy, groups []uint16, c *model.Class, dst netip.Addr) bool {
	for _, g := range groups {
		for _, q := range s.gp.Of(g) {
			if q.ID == p.ID && s.watched(q, g, c, dst) {
				return true
			}
		}
	}
	return false
}

// AddClass adds a record's bytes to its session, and to its alerts when
// the session crossed a threshold.
func (s *Shard) AddClass(r *flow.Record, c *model.Class) {
	if c.Own&model.OwnRecord == 0 || len(c.Src.Groups) == 0 || r.Bytes == 0 || !s.gp.Any() {
		return
	}
	watched := false
	for _, g := range c.Src.Groups {
		for _, p := range s.gp.Of(g) {
			if s.watched(p, g, c, r.Dst) {
				watched = true
				break
			}
		}
	}
	if !watched {
		return
	}
	src, dst := r.Src.Unmap(), r.Dst.Unmap()
	var before, after uint64
	var ok bool
	if src.Is4() && dst.Is4() {
		before, after, ok = account(s, s.v4, key4{src.As4(), dst.As4(), r.SrcPort, r.DstPort, r.Proto}, r.Bytes)
	} else {
		before, after, ok = account(s, s.v6, key6{src.As16(), dst.As16(), r.SrcPort, r.DstPort, r.Proto}, r.Bytes)
	}
	if !ok {
		return
	}
	for i, g := range c.Src.Groups {
		for _, p := range s.gp.Of(g) {
			pp := Of(p)
			if after <= pp.Threshold || !s.watched(p, g, c, r.Dst) || (i > 0 && s.watchedIn(p, c.Src.Groups[:i], c, r.Dst)) {
				continue
			}
			add := r.Bytes
			if before <= pp.Threshold {
				add = after // the whole session, on crossing
			}
			s.raise(r, c, p, g, src, dst, add)
		}
	}
}

// account adds n bytes to session k and returns its bytes before and
// after; false when the session is new and the table full.
func account[K comparable](s *Shard, m map[K]session, k K, n uint64) (before, after uint64, ok bool) {
	ss, found := m[k]
	if !found {
		if len(s.v4)+len(s.v6) >= MaxSessions {
			s.dropped++
			s.drops[0].Inc()
			return 0, 0, false
		}
	} else if s.nowSec > ss.last && s.nowSec-ss.last > s.idle {
		ss.bytes = 0 // the session ended; this is a new one
	}
	before = ss.bytes
	ss.bytes += n
	ss.last = s.nowSec
	m[k] = ss
	return before, ss.bytes, true
}

// raise adds n bytes to the alert of p on the record's sender and
// receiver.
func (s *Shard) raise(r *flow.Record, c *model.Class, p *policy.Policy, g uint16, src, dst netip.Addr, n uint64) {
	k := alertKey{p.ID, src, dst}
	a := s.alerts[k]
	if a == nil {
		if len(s.alerts) >= MaxAlerts {
			s.dropped++
			s.drops[1].Inc()
			return
		}
		a = &exAlert{key: src.String() + "/" + dst.String(), pol: p, sender: src, receiver: dst,
			senderTG: s.gp.Group(g).ID, receiverTG: s.groupIn(c.Dst.Groups, p.CID),
			senderPort: r.SrcPort, receiverPort: r.DstPort, proto: r.Proto, serverPort: serverPort(r.SrcPort, r.DstPort)}
		s.alerts[k] = a
	} else {
		a.addPort(serverPort(r.SrcPort, r.DstPort))
	}
	a.bytes += n
	a.added += n
	a.packets += r.Packets
	a.last = s.now
	if !a.dirty {
		a.dirty = true
		s.dirty = append(s.dirty, a)
	}
}

// groupIn returns the ID of the first of groups in partition cid; 0 for
// none.
func (s *Shard) groupIn(groups []uint16, cid uint32) uint32 {
	for _, g := range groups {
		if tg := s.gp.Group(g); tg.CID == cid {
			return tg.ID
		}
	}
	return 0
}

func (a *exAlert) addPort(port uint16) {
	if port == a.serverPort || slices.Contains(a.ports, port) {
		return
	}
	a.totalPorts++
	if len(a.ports) < MaxListedPorts {
		a.ports = append(a.ports, port)
	}
}

// Tick reports the alerts that grew since the last tick, and forgets
// ended sessions and idle alerts.
func (s *Shard) Tick(now int64) {
	s.update()
	s.setNow(now)
	dt := float64(now-s.lastTick) / float64(time.Second)
	if s.lastTick == 0 || dt < 1 {
		dt = 1
	}
	t := time.Unix(0, now)
	for _, a := range s.dirty {
		if a.pol != nil {
			s.observer.Observe(t, s.condition(a, dt))
			a.announced = true
		}
		a.added, a.packets, a.dirty = 0, 0, false
	}
	clear(s.dirty)
	s.dirty = s.dirty[:0]
	s.lastTick = now
	if now-s.lastSweep >= sweepEvery {
		s.lastSweep = now
		sweep(s.v4, s.nowSec, s.idle)
		sweep(s.v6, s.nowSec, s.idle)
		for k, a := range s.alerts {
			if now-a.last > int64(AlertIdle) {
				delete(s.alerts, k)
			}
		}
	}
	if s.dropped != s.logged && now-s.lastLog >= logEvery {
		s.log.Warn("exfil sessions dropped: the shard tracks its maximum of sessions",
			"dropped", s.dropped-s.logged, "max_sessions", MaxSessions)
		s.logged, s.lastLog = s.dropped, now
	}
}

func sweep[K comparable](m map[K]session, now, idle uint32) {
	for k, ss := range m {
		if now > ss.last && now-ss.last > idle {
			delete(m, k)
		}
	}
}

// Poll reports the alerts first raised since the last tick or poll at
// once.
func (s *Shard) Poll(now int64) {
	s.update()
	s.setNow(now)
	sent := false
	t := time.Unix(0, now)
	for _, a := range s.dirty {
		if a.announced || a.pol == nil {
			continue
		}
		s.observer.Observe(t, s.condition(a, 1))
		a.announced = true
		sent = true
	}
	if sent {
		s.observer.Commit()
	}
}

func (s *Shard) setNow(now int64) {
	s.now = now
	s.nowSec = uint32(now / int64(time.Second))
}

// update resolves the policies again when they or the model changed:
// the session idle time, and the alerts of policies no longer in force.
func (s *Shard) update() {
	if s.policies == nil {
		return
	}
	set := s.policies()
	if !s.gp.Update(set, s.model) {
		return
	}
	s.idle = 0
	if s.model != nil {
		for i := range s.model.Groups {
			for _, p := range s.gp.Of(uint16(i)) {
				s.idle = max(s.idle, Of(p).SessionIdle)
			}
		}
	}
	if s.idle == 0 {
		s.idle = DefaultSessionIdle
	}
	for k, a := range s.alerts {
		p := set.ByID(a.pol.ID)
		if p == nil || p.Severity == 0 || Of(p) == nil {
			a.pol = nil
			delete(s.alerts, k)
			continue
		}
		a.pol = p
	}
}

func (s *Shard) condition(a *exAlert, dt float64) alert.Condition {
	f := make([]alert.Field, 0, 13)
	num := func(name string, v uint64) {
		f = append(f, alert.Field{Name: name, Value: strconv.FormatUint(v, 10), Number: true})
	}
	str := func(name, v string) { f = append(f, alert.Field{Name: name, Value: v}) }
	str("SENDER_IP", a.sender.String())
	num("SENDER_TG", uint64(a.senderTG))
	str("SENDER_TG_NAME", s.groupNames[a.senderTG])
	num("SENDER_PORT", uint64(a.senderPort))
	str("RECEIVER_IP", a.receiver.String())
	num("RECEIVER_TG", uint64(a.receiverTG))
	if a.receiverTG != 0 {
		str("RECEIVER_TG_NAME", s.groupNames[a.receiverTG])
	}
	num("RECEIVER_PORT", uint64(a.receiverPort))
	num("PROTO", uint64(a.proto))
	num("BYTES_EXFILTRATED", a.bytes)
	num("THRESHOLD_VALUE", Of(a.pol).Threshold)
	num("TOTAL_PORTS", a.totalPorts)
	list := make([]string, len(a.ports))
	for i, p := range a.ports {
		list[i] = strconv.Itoa(int(p))
	}
	f = append(f, alert.Field{Name: "ADDITIONAL_PORTS", IsList: true, List: list, Number: true})
	p := a.pol
	return alert.Condition{
		Policy: p.ID, Key: a.key, Type: AlertType, CID: p.CID, CIDName: s.cidNames[p.CID], Severity: p.Severity,
		Fields: f,
		Values: alert.Values{PacketsOut: float64(a.packets) / dt, BytesOut: float64(a.added) / dt},
	}
}

// serverPort returns the more service-like of a session's two ports (see
// the package documentation).
func serverPort(a, b uint16) uint16 {
	ra, rb := rank(a), rank(b)
	switch {
	case ra < rb:
		return a
	case rb < ra:
		return b
	}
	return min(a, b)
}

// Port ranks, from server-like to client-like.
const (
	rankWellKnown = iota
	rankService
	rankRegistered
	rankEphemeral
)

// services are known server ports from 1024 up.
var services = [...]uint16{1080, 1194, 1433, 1521, 1723, 1883, 2049, 2375, 2376, 3128, 3306, 3389, 5060, 5061, 5222,
	5432, 5671, 5672, 5900, 5938, 6379, 6443, 6667, 8000, 8008, 8080, 8081, 8443, 8883, 8888, 9000, 9092, 9200, 9418,
	11211, 27017}

func rank(port uint16) int {
	switch {
	case port == 0:
		return rankEphemeral
	case port < 1024:
		return rankWellKnown
	case port >= 32768:
		return rankEphemeral
	}
	for _, p := range services {
		if p == port {
			return rankService
		}
	}
	return rankRegistered
}
