package newserver

import (
	"encoding/binary"
	"net/netip"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flowsentry/flowsentry/alert"
	"github.com/flowsentry/flowsentry/detect"
	"github.com/flowsentry/flowsentry/flow"
	"github.com/flowsentry/flowsentry/model"
	"github.com/flowsentry/flowsentry/policy"
)

const (
	// pendingTimeout is how long a session waits for its other direction
	// (or for enough packets) after its last record.
	pendingTimeout = int64(time.Minute)
	// maxCandidates bounds what a shard hands the stage of the whole per
	// tick (counted in ShardStats.CandidatesDropped); a dropped one comes
	// back with the next session.
	maxCandidates = 4096
	protoSCTP     = 132
)

// learned are the sets of both families, shared by the stage of the
// whole (which writes them at its tick, while the shards wait) and the
// shards (which read them between ticks): hashes of (policy, server,
// protocol, port) and of (policy, server, protocol, port, client).
type learned struct {
	servers, clients hashSet
	count            map[uint64]int // entries per policy
}

func newLearned() *learned {
	return &learned{count: map[uint64]int{}}
}

// candidate is a service or client a shard saw that the learned sets did
// not hold; the stage of the whole decides on it at the tick.
type candidate struct {
	client         bool   // a new_client candidate
	key            uint64 // serviceHash, or clientHash for a client
	p              *policy.Policy
	group          uint32
	groupName      string
	server, remote netip.Addr
	proto          uint8
	port           uint16
	values         alert.Values
}

// ShardStats count what a shard could not track.
type ShardStats struct {
	// Pending is the number of sessions in the table.
	Pending int
	// PendingDropped counts pending sessions forgotten to make room for
	// a new one (its bucket of the table was full).
	PendingDropped uint64
	// CandidatesDropped counts candidates beyond maxCandidates in a tick.
	CandidatesDropped uint64
}

// Shard is the stage of one shard (see the package doc). Its pipeline
// methods are called from the shard's goroutine only.
type Shard struct {
	servers, clients *detect.GroupPolicies
	policies         func() *policy.Set
	model            *model.Model
	learned          *learned              // shared; see learned
	drops            [2]prometheus.Counter // flowsentry_detect_dropped_total: max_sessions, max_candidates
	counted          [2]uint64             // drops already added to the counters
	watched          []bool                // by group index: a policy of either family is in force
	active           bool

	now   int64
	stamp uint32 // stamp(now)
	table pendingTable
	cands []candidate
	batch []tracking          // AddBatch's scratch
	dedup map[uint64]struct{} // candidate keys of the tick; the low bit tells clients
	stats ShardStats
}

// NewShard returns the stage of one shard; New connects it to the learned
// sets of the stage of the whole.
func NewShard(d detect.Deps) *Shard {
	return &Shard{
		servers: detect.NewGroupPolicies(ServerFamily), clients: detect.NewGroupPolicies(ClientFamily),
		policies: d.Policies, learned: newLearned(), dedup: map[uint64]struct{}{},
		drops: [2]prometheus.Counter{d.Metrics.Dropped(ServerFamily, "max_sessions"), d.Metrics.Dropped(ServerFamily, "max_candidates")},
	}
}

// Stats returns the shard's counts; call it from the shard's goroutine
// or while the shards wait (at a tick of the whole).
func (s *Shard) Stats() ShardStats {
	st := s.stats
	st.Pending = s.table.n
	return st
}

// SetModel takes a new model.
func (s *Shard) SetModel(m *model.Model) {
	s.model = m
	s.update()
}

func (s *Shard) update() {
	var set *policy.Set
	if s.policies != nil {
		set = s.policies()
	}
	changed := s.servers.Update(set, s.model)
	if s.clients.Update(set, s.model) || changed {
		s.watched = s.watched[:0]
		if s.model != nil {
			for i := range s.model.Groups {
				g := uint16(i)
				s.watched = append(s.watched, len(s.servers.Of(g)) > 0 || len(s.clients.Of(g)) > 0)
			}
		}
	}
	s.active = s.servers.Any() || s.clients.Any()
}

// AddCounters does nothing.
func (s *Shard) AddCounters(*flow.IfCounters) {}

// Tick refreshes the policies, evicts the sessions that are resolved
// (their candidates are decided at this tick) or idle, and adds the
// drops since the last tick to the metrics (not per record: an
// overwrite can come with every record of a flood).
func (s *Shard) Tick(now int64) {
	s.now, s.stamp = now, stamp(now)
	s.update()
	s.table.evict(s.stamp)
	for i, n := range [2]uint64{s.stats.PendingDropped, s.stats.CandidatesDropped} {
		if n > s.counted[i] {
			s.drops[i].Add(float64(n - s.counted[i]))
			s.counted[i] = n
		}
	}
}

// hasPolicies reports whether a policy of either family is in force on
// one of groups.
func (s *Shard) hasPolicies(groups []uint16) bool {
	for _, g := range groups {
		if int(g) < len(s.watched) && s.watched[g] {
			return true
		}
	}
	return false
}

// known reports whether, with server on the side in groups, every policy
// in force there already knows the service and the client (or ignores
// the client as allowed).
func (s *Shard) known(groups []uint16, server *[16]byte, proto uint8, port uint16, client *[16]byte, clientAddr netip.Addr) bool {
	l := s.learned
	sh := serverHash(server)
	for _, g := range groups {
		for _, p := range s.servers.Of(g) {
			if !l.servers.has(serviceHash(sh, p.ID, proto, port)) && !s.servers.Allowed(p, clientAddr) {
				return false
			}
		}
		for _, p := range s.clients.Of(g) {
			if !l.clients.has(clientHash(serviceHash(sh, p.ID, proto, port), client)) && !s.clients.Allowed(p, clientAddr) {
				return false
			}
		}
	}
	return true
}

// AddClass tracks the record's session when the shard owns the record
// and the session may bring something new.
func (s *Shard) AddClass(r *flow.Record, c *model.Class) {
	if t, ok := s.tracked(r, c); ok {
		s.track(r, c, &t)
	}
}

// AddBatch is AddClass for each record of a batch, in order, classified
// as cs. It first finds the sessions to track and their hashes, then
// tracks them in a pipeline of two steps, as under a load of new
// sessions both the bucket and the session's line miss the cache: it
// places each record's session in the table (locate) while the processor
// fetches the bucket of the one ahead records later, and counts the
// record lag records earlier into its session (count), whose line locate
// asked for.
func (s *Shard) AddBatch(rs []flow.Record, cs []model.Class) {
	if !s.active {
		return
	}
	w := s.batch[:0]
	for i := range rs {
		if t, ok := s.tracked(&rs[i], &cs[i]); ok {
			if len(w) < ahead {
				s.table.prefetch(t.h)
			}
			t.i = int32(i)
			w = append(w, t)
		}
	}
	var at [lag]slot // the slots of the records located, not yet counted
	for j := range w {
		if j+ahead < len(w) {
			s.table.prefetch(w[j+ahead].h)
		}
		if j >= lag {
			t := &w[j-lag]
			s.count(&rs[t.i], &cs[t.i], t, at[j%lag])
		}
		l := s.locate(&w[j])
		if l.e != nil {
			prefetchSession(l.e)
		}
		at[j%lag] = l
	}
	for j := max(0, len(w)-lag); j < len(w); j++ {
		t := &w[j]
		s.count(&rs[t.i], &cs[t.i], t, at[j%lag])
	}
	s.batch = w[:0]
}

// ahead is how many tracked records of a batch AddBatch asks the
// processor for a bucket before it places the record's session; lag how
// many it places before it counts the first of them.
const (
	ahead = 8
	lag   = 4
)

// tracking is a record whose session is tracked: its normalised ends,
// its direction in the session (0: from endpoint a), the session's hash,
// and (in a batch) its index.
type tracking struct {
	k   ends
	dir int
	h   uint64
	i   int32
}

// slot is where locate found or made a tracked record's session: its
// bucket and way, the session (nil: not tracked) and whether it is new.
type slot struct {
	bk    *bucket
	e     *session
	way   int
	fresh bool
}

// tracked tells whether r (classified as c) is to be tracked, and how.
func (s *Shard) tracked(r *flow.Record, c *model.Class) (tracking, bool) {
	if c.Own&model.OwnRecord == 0 || !s.active {
		return tracking{}, false
	}
	switch r.Proto {
	case flow.ProtoTCP, flow.ProtoUDP, protoSCTP:
	default:
		return tracking{}, false
	}
	if r.SrcPort == 0 && r.DstPort == 0 { // fragments without a header
		return tracking{}, false
	}
	srcPol, dstPol := s.hasPolicies(c.Src.Groups), s.hasPolicies(c.Dst.Groups)
	if !srcPol && !dstPol {
		return tracking{}, false
	}
	// Without TCP's SYN, different ports alone make the server (see
	// serverIsA): when its side has no policy, the session can bring
	// nothing, so it is not tracked.
	if r.Proto != flow.ProtoTCP {
		if aServer, ok := portsDecide(r.SrcPort, r.DstPort); ok && !(aServer && srcPol || !aServer && dstPol) {
			return tracking{}, false
		}
	}
	src, dst := r.Src.Unmap().As16(), r.Dst.Unmap().As16()
	if dstPol && s.known(c.Dst.Groups, &dst, r.Proto, r.DstPort, &src, r.Src) {
		return tracking{}, false
	}
	if srcPol && s.known(c.Src.Groups, &src, r.Proto, r.SrcPort, &dst, r.Dst) {
		return tracking{}, false
	}
	a, b, t := &src, &dst, tracking{k: ends{r.SrcPort, r.DstPort, r.Proto}}
	if !less(&src, r.SrcPort, &dst, r.DstPort) {
		a, b, t.k.pa, t.k.pb, t.dir = &dst, &src, r.DstPort, r.SrcPort, 1
	}
	t.h = sessionHash(a, b, t.k.pa, t.k.pb, t.k.proto)
	return t, true
}

// less orders endpoints: by address, then port.
func less(a *[16]byte, pa uint16, b *[16]byte, pb uint16) bool {
	a0, b0 := binary.BigEndian.Uint64(a[:8]), binary.BigEndian.Uint64(b[:8])
	if a0 != b0 {
		return a0 < b0
	}
	a1, b1 := binary.BigEndian.Uint64(a[8:]), binary.BigEndian.Uint64(b[8:])
	if a1 != b1 {
		return a1 < b1
	}
	return pa < pb
}

// ends are the ports and protocol of a normalised session: endpoint a is
// the lower (address, port).
type ends struct {
	pa, pb uint16
	proto  uint8
}

// track adds r (classified as c) to its session t.
func (s *Shard) track(r *flow.Record, c *model.Class, t *tracking) {
	s.count(r, c, t, s.locate(t))
}

// locate finds or makes the slot of t's session.
func (s *Shard) locate(t *tracking) slot {
	bk, way, e, fresh, dropped := s.table.place(t.h, s.stamp)
	if dropped {
		s.stats.PendingDropped++
	}
	return slot{bk, e, way, fresh}
}

// count adds r (classified as c) to its session t, at l (from locate).
func (s *Shard) count(r *flow.Record, c *model.Class, t *tracking, l slot) {
	e := l.e
	if e == nil {
		return
	}
	if l.fresh {
		*e = session{}
	}
	k, dir, bk, way := t.k, t.dir, l.bk, l.way
	if bk.state[way] == slotDone {
		return
	}
	pk := r.Packets
	if r.SamplingRate > 1 {
		pk = max(1, pk/uint64(r.SamplingRate))
	}
	e.packets[dir] += pk
	e.bytes[dir] += r.Bytes
	bk.flags[way][dir] |= r.TCPFlags
	// Only a flow's first record starts at its first packet: an interim
	// report (Continued) starts wherever the last report left off.
	if !r.Continued && (e.start[dir] == 0 || r.Start < e.start[dir]) {
		e.start[dir] = r.Start
	}
	if e.from == 0 || r.Start < e.from {
		e.from = r.Start
	}
	e.end = max(e.end, r.End)
	if !qualifies(e, bk.flags[way], k.proto) {
		return
	}
	bk.state[way] = slotDone
	s.resolve(e, bk.flags[way], k, r, c, dir)
}

// qualifies applies the bilateral rule (see the package doc).
func qualifies(e *session, flags [2]uint8, proto uint8) bool {
	if e.packets[0] == 0 || e.packets[1] == 0 {
		return false
	}
	if proto == flow.ProtoTCP {
		all := flags[0] | flags[1]
		if all&flow.TCPRst != 0 && (e.packets[0] < 4 || e.packets[1] < 4) {
			return false
		}
		if all != 0 && (flags[0]&flow.TCPAck == 0 || flags[1]&flow.TCPAck == 0) {
			return false
		}
	}
	return true
}

// portRank orders ports from the most to the least service-like.
func portRank(p uint16) int {
	switch {
	case p < 1024:
		return 0
	case p < 49152:
		return 1
	}
	return 2
}

// portsDecide reports whether ports pa and pb decide which endpoint is
// the server, and whether it is a: a well-known port before a registered
// one before an ephemeral one, then the lower port.
func portsDecide(pa, pb uint16) (aServer, ok bool) {
	ra, rb := portRank(pa), portRank(pb)
	switch {
	case ra != rb:
		return ra < rb, true
	case pa != pb:
		return pa < pb, true
	}
	return false, false
}

// serverIsA decides which endpoint of a qualifying session is the server
// (see the package doc).
func serverIsA(e *session, flags [2]uint8, k ends) bool {
	if k.proto == flow.ProtoTCP {
		synA, synB := flags[0]&flow.TCPSyn != 0, flags[1]&flow.TCPSyn != 0
		switch {
		case synA && !synB:
			return false
		case synB && !synA:
			return true
		case synA && synB && e.start[0] != 0 && e.start[1] != 0 && e.start[0] != e.start[1]:
			return e.start[0] > e.start[1]
		}
	}
	if aServer, ok := portsDecide(k.pa, k.pb); ok {
		return aServer
	}
	switch {
	case e.start[0] != 0 && e.start[1] != 0 && e.start[0] != e.start[1]:
		return e.start[0] > e.start[1]
	}
	return true
}

// resolve turns a qualifying session into candidates for the policies on
// the server's groups that do not know it. r (classified as c) is its
// record of direction dir.
func (s *Shard) resolve(e *session, flags [2]uint8, k ends, r *flow.Record, c *model.Class, dir int) {
	aServer := serverIsA(e, flags, k)
	serverIsSrc := aServer == (dir == 0)
	groups, server, client, port := c.Dst.Groups, r.Dst, r.Src, r.DstPort
	if serverIsSrc {
		groups, server, client, port = c.Src.Groups, r.Src, r.Dst, r.SrcPort
	}
	if !s.hasPolicies(groups) {
		return
	}
	in, out := 0, 1 // toward the server, from it
	if aServer {
		in, out = 1, 0
	}
	span := e.end - e.from
	sec := max(1, float64(span)/float64(time.Second))
	v := alert.Values{
		PacketsIn: float64(e.packets[in]) / sec, PacketsOut: float64(e.packets[out]) / sec,
		BytesIn: float64(e.bytes[in]) / sec, BytesOut: float64(e.bytes[out]) / sec,
	}
	server, client = server.Unmap(), client.Unmap()
	s16, c16 := server.As16(), client.As16()
	sh := serverHash(&s16)
	for _, g := range groups {
		for _, p := range s.servers.Of(g) {
			svc := serviceHash(sh, p.ID, k.proto, port)
			if s.learned.servers.has(svc) || s.servers.Allowed(p, client) {
				continue
			}
			s.candidate(false, svc, g, p, server, client, k.proto, port, v, s.servers)
		}
		for _, p := range s.clients.Of(g) {
			ck := clientHash(serviceHash(sh, p.ID, k.proto, port), &c16)
			if s.learned.clients.has(ck) || s.clients.Allowed(p, client) {
				continue
			}
			s.candidate(true, ck, g, p, server, client, k.proto, port, v, s.clients)
		}
	}
}

func (s *Shard) candidate(client bool, key uint64, g uint16, p *policy.Policy, server, remote netip.Addr, proto uint8, port uint16, v alert.Values, gp *detect.GroupPolicies) {
	dk := key &^ 1
	if client {
		dk |= 1
	}
	if _, dup := s.dedup[dk]; dup {
		return
	}
	if len(s.cands) >= maxCandidates {
		s.stats.CandidatesDropped++
		return
	}
	s.dedup[dk] = struct{}{}
	tg := gp.Group(g)
	s.cands = append(s.cands, candidate{
		client: client, key: key, p: p, group: tg.ID, groupName: tg.Name,
		server: server, remote: remote, proto: proto, port: port, values: v,
	})
}

// take hands the stage of the whole the candidates of the tick and
// forgets them.
func (s *Shard) take(fn func(c *candidate)) {
	for i := range s.cands {
		fn(&s.cands[i])
		s.cands[i] = candidate{}
	}
	s.cands = s.cands[:0]
	clear(s.dedup)
}
