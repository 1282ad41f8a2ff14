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
// one: a download, a copy to the INT blocks or to an allowed address
// never reach the table. Small records count like large ones (low and
// slow exfiltration adds up). Nor does a whole TCP connection in one
// record (SYN and FIN or RST, in a flow's first report): no later record
// can add to it, so it is held against the thresholds alone.
//
// The sessions of a shard are a flat open-addressing table of 16-byte
// slots: a 64-bit hash of the 5-tuple (with a random seed per shard, so
// that outsiders cannot aim at one bucket), then the session's bytes (44
// bits, saturating at 17.6 TB: a threshold beyond never fires) and its
// last-seen second modulo 2^20 (a clock jump of more than 2^18 s ends
// every session). Two sessions whose hashes are equal would add up as
// one: with a million live sessions that is one chance in 2^44 per new
// session, which is accepted. Slots form buckets of four, a cache line;
// a session lives in one of two buckets chosen by its hash, the emptier
// one when it starts, and a lookup reads those two lines only. The table
// starts at 4096 slots and doubles when half full, up to 2·MaxSessions
// slots (32 MiB): a million sessions take 33.4 bytes each, IPv4 or IPv6,
// as TestSessionMemory measures. Up to MaxSessions no session is lost
// (a full bucket moves one of its sessions to its other bucket);
// beyond, a new session whose two buckets hold only live sessions
// replaces the one of them with the fewest bytes (the oldest of equals),
// or is itself not kept when it has fewer: a flood of new small sessions
// replaces its own kind, and the sessions that sent much stay. Each
// loss is counted (Dropped, flowsentry_detect_dropped_total
// {reason="max_sessions"}) and logged at most once a minute; the bytes
// of the record that started the lost session still count toward its
// alert. Ended sessions free their slot at once for a new one, and are
// swept every 30 seconds. On Linux, a table from 2 MiB up is mapped
// outside the Go heap on transparent huge pages (see hugemem), which
// GOMEMLIMIT does not see; it is unmapped when the table grows or the
// stage is garbage.
//
// # Speed
//
// Under bench/peers.sh (flowgen: nearly every record a new 5-tuple, the
// table full and replacing sessions) the cost is the memory access: the
// old Go maps missed the cache on their control word and slot, and cost
// about 400 ns a record. The pipeline hands the stage a batch at a time
// (AddBatch): it hashes the batch's watched records, then accounts each
// while the processor fetches (prefetch, in assembly on amd64 and arm64)
// the two buckets of the one ahead records later. Huge pages remove
// the TLB miss of each lookup, which in a virtual machine costs about as
// much as the cache miss. Measured (2 cores, shared machine, Go maps →
// table): BenchmarkExfilNewSessions (a million live sessions, flowgen's
// records in batches of flow.BatchSize, generation included: about 20
// ns) 227-242 → 92-94 ns a record in isolation (138-153 without the
// prefetch); BenchmarkExfil (known sessions, one record at a time) 60 →
// 50 ns. In serve at 1.5 M records/s offered: 1.30-1.38 M records/s with
// the core saturated and exfil 34-37 % of the profile (about 260 ns a
// record) → all 1.5 M records/s at 80 % of the core, exfil 16 % (about
// 85 ns a record: the prefetch 25, the bucket scan and eviction 30, the
// rest the filter and hashing). Records
// allocate nothing.
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
	// MaxSessions is how many sessions a shard keeps without loss; its
	// table holds up to twice as many.
	MaxSessions = 1 << 20
	// MaxAlerts is how many sender/receiver alerts a shard tracks.
	MaxAlerts = 65536
	// MaxListedPorts is how many additional server ports an alert lists.
	MaxListedPorts = detect.MaxListedPorts
	// AlertIdle is how long a sender/receiver pair whose sessions added
	// nothing is kept: the alert engine's default quiet period, after
	// which its alert has ended.
	AlertIdle = 10 * time.Minute
)

const (
	sweepEvery = int64(30 * time.Second)
	logEvery   = int64(time.Minute)
)

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
	ports                    detect.AdditionalPorts
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

	model *model.Model
	idle  uint32 // seconds
	// minThreshold is the lowest threshold of the policies in force: a
	// session at or below it crossed none.
	minThreshold uint64

	sessions  table
	batch     []keyed // AddBatch's scratch
	alerts    map[alertKey]*exAlert
	dirty     []*exAlert
	now       int64
	nowSec    uint32
	lastTick  int64
	lastSweep int64
	// lost counts the sessions and alerts dropped (max_sessions,
	// max_alerts); counted is what drops, flowsentry_detect_dropped_total,
	// has been told of them, at the last tick or poll.
	lost, counted [2]uint64
	drops         [2]prometheus.Counter
	logged        uint64
	lastLog       int64
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
	s := &Shard{gp: detect.NewGroupPolicies(f), policies: d.Policies, observer: d.Observer, log: log,
		idle: DefaultSessionIdle, sessions: newTable(), alerts: map[alertKey]*exAlert{},
		drops: [2]prometheus.Counter{d.Metrics.Dropped(f, "max_sessions"), d.Metrics.Dropped(f, "max_alerts")}}
	return s
}

// Sessions returns how many sessions the shard tracks.
func (s *Shard) Sessions() int {
	return s.sessions.n
}

// Dropped returns how many sessions were lost to make room for new ones
// in a full table (see the package documentation), and how many alerts
// were not raised because the shard held MaxAlerts.
func (s *Shard) Dropped() uint64 {
	return s.lost[0] + s.lost[1]
}

// SetModel takes a new model snapshot.
func (s *Shard) SetModel(m *model.Model) {
	s.model = m
	s.update()
}

// AddCounters does nothing.
func (s *Shard) AddCounters(*flow.IfCounters) {}

// pending is a watched record: what its session and alerts need of it.
type pending struct {
	r        *flow.Record
	c        *model.Class
	src, dst netip.Addr
}

// pendingOf returns r, classified as c, as a pending record.
func pendingOf(r *flow.Record, c *model.Class) pending {
	return pending{r: r, c: c, src: r.Src.Unmap(), dst: r.Dst.Unmap()}
}

// ahead is how many watched records of a batch AddBatch asks the
// processor for before it accounts them: enough to cover a memory access.
const ahead = 8

// watched reports whether p, in force on group g, watches what the
// sender sends to the receiver of e.
func (s *Shard) watched(p *policy.Policy, g uint16, e *pending) bool {
	return s.watches(p, g, e.c, e.dst)
}

// watches reports whether p, in force on group g, watches what a sender
// sends to receiver dst (unmapped), classified as c.
func (s *Shard) watches(p *policy.Policy, g uint16, c *model.Class, dst netip.Addr) bool {
	return !slices.Contains(c.Dst.Groups, g) && !slices.Contains(c.Dst.Internal, p.CID) && !s.gp.Allowed(p, dst)
}

// watchedIn reports whether p, in force on one of groups, watches e: a
// template applies to every group of its partition, and a record of two
// of them counts once.
func (s *Shard) watchedIn(p *policy.Policy, groups []uint16, e *pending) bool {
	for _, g := range groups {
		for _, q := range s.gp.Of(g) {
			if q.ID == p.ID && s.watched(q, g, e) {
				return true
			}
		}
	}
	return false
}

// key returns the key of the session of r (classified as c), and false
// when no policy watches it.
func (s *Shard) key(r *flow.Record, c *model.Class) (uint64, bool) {
	if c.Own&model.OwnRecord == 0 || len(c.Src.Groups) == 0 || r.Bytes == 0 {
		return 0, false
	}
	dst := r.Dst.Unmap()
	if !s.watchedAny(c, dst) {
		return 0, false
	}
	t := &s.sessions
	src := r.Src.Unmap()
	if src.Is4() && dst.Is4() {
		return t.hash4(src.As4(), dst.As4(), r.SrcPort, r.DstPort, r.Proto), true
	}
	return t.hash6(src.As16(), dst.As16(), r.SrcPort, r.DstPort, r.Proto), true
}

// watchedAny reports whether a policy in force on a group of the sender
// watches what it sends to dst (unmapped), classified as c.
func (s *Shard) watchedAny(c *model.Class, dst netip.Addr) bool {
	for _, g := range c.Src.Groups {
		for _, p := range s.gp.Of(g) {
			if s.watches(p, g, c, dst) {
				return true
			}
		}
	}
	return false
}

// AddClass adds a record's bytes to its session, and to its alerts when
// the session crossed a threshold.
func (s *Shard) AddClass(r *flow.Record, c *model.Class) {
	if !s.gp.Any() {
		return
	}
	if k, ok := s.key(r, c); ok {
		if !s.alone(r, c) {
			s.account(r, c, k)
		}
	}
}

// alone holds r (classified as c) against the thresholds by itself when
// it is a whole TCP connection in one record (its first packet, SYN, and
// its last, FIN or RST, in a flow's first report), and reports whether it
// was. No later record can add to such a session, so it takes no slot of
// the table: most short connections (web, mail, DNS over TCP) cost no
// memory access.
func (s *Shard) alone(r *flow.Record, c *model.Class) bool {
	if r.Proto != flow.ProtoTCP || r.Continued || r.TCPFlags&flow.TCPSyn == 0 || r.TCPFlags&(flow.TCPFin|flow.TCPRst) == 0 {
		return false
	}
	s.crossed(r, c, 0, min(r.Bytes, maxBytes))
	return true
}

// keyed is a watched record of a batch and the key of its session.
type keyed struct {
	i   int32
	key uint64
}

// AddBatch is AddClass for each record of a batch, in order, classified
// as cs. Under a load of new sessions the cost is the memory access (see
// "Speed" in the package documentation), so it first hashes the watched
// records, then accounts each while the processor fetches the buckets of
// the one ahead records later.
func (s *Shard) AddBatch(rs []flow.Record, cs []model.Class) {
	if !s.gp.Any() {
		return
	}
	w := s.batch[:0]
	for i := range rs {
		if k, ok := s.key(&rs[i], &cs[i]); ok {
			if s.alone(&rs[i], &cs[i]) {
				continue
			}
			if len(w) < ahead {
				s.sessions.prefetch(k)
			}
			w = append(w, keyed{int32(i), k})
		}
	}
	for j, k := range w {
		if j+ahead < len(w) {
			s.sessions.prefetch(w[j+ahead].key)
		}
		// The record is read again rather than kept from the first
		// pass: a smaller scratch is faster (BenchmarkExfilNewSessions:
		// 97-101 against 108-111 ns a record).
		s.account(&rs[k.i], &cs[k.i], k.key)
	}
	s.batch = w[:0]
}

// countDrops tells the metric of the sessions and alerts dropped since it
// last did.
func (s *Shard) countDrops() {
	for i, n := range s.lost {
		if n != s.counted[i] {
			s.drops[i].Add(float64(n - s.counted[i]))
			s.counted[i] = n
		}
	}
}

// account adds the bytes of r (classified as c) to its session (of key
// k), and to its alerts when the session crossed a threshold.
func (s *Shard) account(r *flow.Record, c *model.Class, k uint64) {
	before, after, evicted := s.sessions.add(k, r.Bytes, s.nowSec, s.idle)
	if evicted {
		s.lost[0]++
	}
	s.crossed(r, c, before, after)
}

// crossed adds the bytes of r (classified as c) to the alerts of the
// policies whose threshold its session, which held before bytes and now
// after, crossed. Below every threshold, the common case, it reads
// nothing of the record.
func (s *Shard) crossed(r *flow.Record, c *model.Class, before, after uint64) {
	if after <= s.minThreshold {
		return
	}
	e := pendingOf(r, c)
	for i, g := range c.Src.Groups {
		for _, p := range s.gp.Of(g) {
			pp := Of(p)
			if after <= pp.Threshold || !s.watched(p, g, &e) || (i > 0 && s.watchedIn(p, c.Src.Groups[:i], &e)) {
				continue
			}
			add := r.Bytes
			if before <= pp.Threshold {
				add = after // the whole session, on crossing
			}
			s.raise(&e, p, g, add)
		}
	}
}

// raise adds n bytes to the alert of p on the sender and receiver of e.
func (s *Shard) raise(e *pending, p *policy.Policy, g uint16, n uint64) {
	k := alertKey{p.ID, e.src, e.dst}
	a := s.alerts[k]
	if a == nil {
		if len(s.alerts) >= MaxAlerts {
			s.lost[1]++
			return
		}
		a = &exAlert{key: e.src.String() + "/" + e.dst.String(), pol: p, sender: e.src, receiver: e.dst,
			senderTG: s.gp.Group(g).ID, receiverTG: s.gp.GroupIn(e.c.Dst.Groups, p.CID),
			senderPort: e.r.SrcPort, receiverPort: e.r.DstPort, proto: e.r.Proto, serverPort: detect.ServerPort(e.r.SrcPort, e.r.DstPort)}
		s.alerts[k] = a
	} else {
		a.ports.Add(detect.ServerPort(e.r.SrcPort, e.r.DstPort), a.serverPort)
	}
	a.bytes += n
	a.added += n
	a.packets += e.r.Packets
	a.last = s.now
	if !a.dirty {
		a.dirty = true
		s.dirty = append(s.dirty, a)
	}
}

// Tick reports the alerts that grew since the last tick, and forgets
// ended sessions and idle alerts.
func (s *Shard) Tick(now int64) {
	s.countDrops()
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
		s.sessions.sweep(s.nowSec, s.idle)
		for k, a := range s.alerts {
			if now-a.last > int64(AlertIdle) {
				delete(s.alerts, k)
			}
		}
	}
	if d := s.lost[0] + s.lost[1]; d != s.logged && now-s.lastLog >= logEvery {
		s.log.Warn("exfil sessions or alerts dropped: the shard's session or alert table is full; more shards (cores) spread them, fewer watched traffic groups make fewer",
			"sessions_dropped", s.lost[0], "alerts_dropped", s.lost[1], "sessions", s.sessions.n, "max_sessions", MaxSessions, "max_alerts", MaxAlerts)
		s.logged, s.lastLog = d, now
	}
}

// Poll reports the alerts first raised since the last tick or poll at
// once.
func (s *Shard) Poll(now int64) {
	s.countDrops()
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
	sec := uint32(now / int64(time.Second))
	if d := int64(sec) - int64(s.nowSec); d > maxJump || d < -maxJump {
		// Every session ended (a jump forward beyond the longest
		// session_idle), or began in what is now the future: the table
		// keeps last-seen seconds modulo 2^20 and could not tell.
		s.sessions.reset()
	}
	s.nowSec = sec
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
	s.idle, s.minThreshold = 0, maxBytes
	if s.model != nil {
		for i := range s.model.Groups {
			for _, p := range s.gp.Of(uint16(i)) {
				s.idle = max(s.idle, Of(p).SessionIdle)
				s.minThreshold = min(s.minThreshold, Of(p).Threshold)
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
	str("SENDER_TG_NAME", s.model.GroupName(a.senderTG))
	num("SENDER_PORT", uint64(a.senderPort))
	str("RECEIVER_IP", a.receiver.String())
	num("RECEIVER_TG", uint64(a.receiverTG))
	if a.receiverTG != 0 {
		str("RECEIVER_TG_NAME", s.model.GroupName(a.receiverTG))
	}
	num("RECEIVER_PORT", uint64(a.receiverPort))
	num("PROTO", uint64(a.proto))
	num("BYTES_EXFILTRATED", a.bytes)
	num("THRESHOLD_VALUE", Of(a.pol).Threshold)
	f = append(f, a.ports.Fields()...)
	p := a.pol
	return alert.Condition{
		Policy: p.ID, Key: a.key, Type: AlertType, CID: p.CID, CIDName: s.model.PartitionName(p.CID), Severity: p.Severity,
		Fields: f,
		Values: alert.Values{PacketsOut: float64(a.packets) / dt, BytesOut: float64(a.added) / dt},
	}
}
