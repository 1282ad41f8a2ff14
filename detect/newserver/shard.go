package newserver

import (
	"github.com/prometheus/client_golang/prometheus"

	"net/netip"
	"time"

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
	// maxPending bounds a shard's session table; a new session past it
	// is not tracked (counted in ShardStats.PendingDropped).
	maxPending = 1 << 16
	// maxCandidates bounds what a shard hands the stage of the whole per
	// tick (counted in ShardStats.CandidatesDropped); a dropped one comes
	// back with the next session.
	maxCandidates = 4096
	protoSCTP     = 132
)

// serverKey is a learned service of a policy: addresses as 16 bytes
// (IPv4 mapped), so keys hold no pointer.
type serverKey struct {
	policy uint64
	server [16]byte
	port   uint16
	proto  uint8
}

// clientKey is a learned client of a service of a policy.
type clientKey struct {
	serverKey
	client [16]byte
}

// learned are the sets of both families, shared by the stage of the
// whole (which writes them at its tick, while the shards wait) and the
// shards (which read them between ticks).
type learned struct {
	servers map[serverKey]struct{}
	clients map[clientKey]struct{}
	count   map[uint64]int // entries per policy
}

func newLearned() *learned {
	return &learned{servers: map[serverKey]struct{}{}, clients: map[clientKey]struct{}{}, count: map[uint64]int{}}
}

// sessKey is a session: endpoint a is the lower (address, port).
type sessKey struct {
	a, b   [16]byte
	pa, pb uint16
	proto  uint8
}

// direction is what one direction of a session carried.
type direction struct {
	packets uint64 // as sampled
	bytes   uint64 // scaled
	start   int64  // first packet of a first record (not Continued); 0 unknown
	from    int64  // first packet of any record
	end     int64
	flags   uint8
}

// session is an entry of the table: dir[0] flows from a to b.
type session struct {
	dir  [2]direction
	seen int64 // tick time of the last record
	done bool
}

// candidate is a service or client a shard saw that the learned sets did
// not hold; the stage of the whole decides on it at the tick.
type candidate struct {
	client         bool // a new_client candidate
	p              *policy.Policy
	group          uint32
	groupName      string
	server, remote netip.Addr
	proto          uint8
	port           uint16
	values         alert.Values
}

type candKey struct {
	clientKey
	client bool
}

// ShardStats count what a shard could not track.
type ShardStats struct {
	// Pending is the number of sessions in the table.
	Pending int
	// PendingDropped counts sessions not tracked because the table was
	// full.
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
	active           bool

	now   int64
	index map[sessKey]int32
	slab  []session
	free  []int32
	cands []candidate
	dedup map[candKey]struct{}
	stats ShardStats
}

// NewShard returns the stage of one shard; New connects it to the learned
// sets of the stage of the whole.
func NewShard(d detect.Deps) *Shard {
	return &Shard{
		servers: detect.NewGroupPolicies(ServerFamily), clients: detect.NewGroupPolicies(ClientFamily),
		policies: d.Policies, learned: newLearned(),
		index: map[sessKey]int32{}, dedup: map[candKey]struct{}{},
		drops: [2]prometheus.Counter{d.Metrics.Dropped(ServerFamily, "max_sessions"), d.Metrics.Dropped(ServerFamily, "max_candidates")},
	}
}

// Stats returns the shard's counts; call it from the shard's goroutine
// or while the shards wait (at a tick of the whole).
func (s *Shard) Stats() ShardStats {
	st := s.stats
	st.Pending = len(s.index)
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
	s.servers.Update(set, s.model)
	s.clients.Update(set, s.model)
	s.active = s.servers.Any() || s.clients.Any()
}

// AddCounters does nothing.
func (s *Shard) AddCounters(*flow.IfCounters) {}

// Tick refreshes the policies and evicts the sessions that are resolved
// (their candidates are decided at this tick) or idle.
func (s *Shard) Tick(now int64) {
	s.now = now
	s.update()
	for k, i := range s.index {
		e := &s.slab[i]
		if e.seen == 0 {
			e.seen = now
		}
		if e.done || now-e.seen > pendingTimeout {
			delete(s.index, k)
			*e = session{}
			s.free = append(s.free, i)
		}
	}
}

// hasPolicies reports whether a policy of either family is in force on
// one of groups.
func (s *Shard) hasPolicies(groups []uint16) bool {
	for _, g := range groups {
		if len(s.servers.Of(g)) > 0 || len(s.clients.Of(g)) > 0 {
			return true
		}
	}
	return false
}

// known reports whether, with server on the side in groups, every policy
// in force there already knows the service and the client (or ignores
// the client as allowed).
func (s *Shard) known(groups []uint16, server [16]byte, proto uint8, port uint16, client [16]byte, clientAddr netip.Addr) bool {
	for _, g := range groups {
		for _, p := range s.servers.Of(g) {
			if _, ok := s.learned.servers[serverKey{p.ID, server, port, proto}]; !ok && !s.servers.Allowed(p, clientAddr) {
				return false
			}
		}
		for _, p := range s.clients.Of(g) {
			if _, ok := s.learned.clients[clientKey{serverKey{p.ID, server, port, proto}, client}]; !ok && !s.clients.Allowed(p, clientAddr) {
				return false
			}
		}
	}
	return true
}

// AddClass tracks the record's session when the shard owns the record
// and the session may bring something new.
func (s *Shard) AddClass(r *flow.Record, c *model.Class) {
	if c.Own&model.OwnRecord == 0 || !s.active {
		return
	}
	switch r.Proto {
	case flow.ProtoTCP, flow.ProtoUDP, protoSCTP:
	default:
		return
	}
	if r.SrcPort == 0 && r.DstPort == 0 { // fragments without a header
		return
	}
	srcPol, dstPol := s.hasPolicies(c.Src.Groups), s.hasPolicies(c.Dst.Groups)
	if !srcPol && !dstPol {
		return
	}
	src, dst := r.Src.Unmap().As16(), r.Dst.Unmap().As16()
	if dstPol && s.known(c.Dst.Groups, dst, r.Proto, r.DstPort, src, r.Src) {
		return
	}
	if srcPol && s.known(c.Src.Groups, src, r.Proto, r.SrcPort, dst, r.Dst) {
		return
	}
	s.track(r, c, src, dst)
}

// less orders endpoints.
func less(a [16]byte, pa uint16, b [16]byte, pb uint16) bool {
	for i := range a {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return pa < pb
}

func (s *Shard) track(r *flow.Record, c *model.Class, src, dst [16]byte) {
	k := sessKey{a: src, b: dst, pa: r.SrcPort, pb: r.DstPort, proto: r.Proto}
	dir := 0
	if !less(src, r.SrcPort, dst, r.DstPort) {
		k.a, k.b, k.pa, k.pb, dir = dst, src, r.DstPort, r.SrcPort, 1
	}
	i, ok := s.index[k]
	if !ok {
		if len(s.index) >= maxPending {
			s.stats.PendingDropped++
			s.drops[0].Inc()
			return
		}
		if n := len(s.free); n > 0 {
			i, s.free = s.free[n-1], s.free[:n-1]
		} else {
			s.slab = append(s.slab, session{})
			i = int32(len(s.slab) - 1)
		}
		s.index[k] = i
	}
	e := &s.slab[i]
	e.seen = s.now
	if e.done {
		return
	}
	d := &e.dir[dir]
	pk := r.Packets
	if r.SamplingRate > 1 {
		pk = max(1, pk/uint64(r.SamplingRate))
	}
	d.packets += pk
	d.bytes += r.Bytes
	d.flags |= r.TCPFlags
	// Only a flow's first record starts at its first packet: an interim
	// report (Continued) starts wherever the last report left off.
	if !r.Continued && (d.start == 0 || r.Start < d.start) {
		d.start = r.Start
	}
	if d.from == 0 || r.Start < d.from {
		d.from = r.Start
	}
	d.end = max(d.end, r.End)
	if !qualifies(e, r.Proto) {
		return
	}
	e.done = true
	s.resolve(e, &k, r, c, dir)
}

// qualifies applies the bilateral rule (see the package doc).
func qualifies(e *session, proto uint8) bool {
	a, b := &e.dir[0], &e.dir[1]
	if a.packets == 0 || b.packets == 0 {
		return false
	}
	if proto == flow.ProtoTCP {
		flags := a.flags | b.flags
		if flags&flow.TCPRst != 0 && (a.packets < 4 || b.packets < 4) {
			return false
		}
		if flags != 0 && (a.flags&flow.TCPAck == 0 || b.flags&flow.TCPAck == 0) {
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

// serverIsA decides which endpoint of a qualifying session is the server
// (see the package doc).
func serverIsA(e *session, k *sessKey) bool {
	a, b := &e.dir[0], &e.dir[1]
	if k.proto == flow.ProtoTCP {
		synA, synB := a.flags&flow.TCPSyn != 0, b.flags&flow.TCPSyn != 0
		switch {
		case synA && !synB:
			return false
		case synB && !synA:
			return true
		case synA && synB && a.start != 0 && b.start != 0 && a.start != b.start:
			return a.start > b.start
		}
	}
	ra, rb := portRank(k.pa), portRank(k.pb)
	switch {
	case ra != rb:
		return ra < rb
	case k.pa != k.pb:
		return k.pa < k.pb
	case a.start != 0 && b.start != 0 && a.start != b.start:
		return a.start > b.start
	}
	return true
}

// resolve turns a qualifying session into candidates for the policies on
// the server's groups that do not know it. r (classified as c) is its
// record of direction dir.
func (s *Shard) resolve(e *session, k *sessKey, r *flow.Record, c *model.Class, dir int) {
	aServer := serverIsA(e, k)
	serverIsSrc := aServer == (dir == 0)
	groups, server, client, port := c.Dst.Groups, r.Dst, r.Src, r.DstPort
	if serverIsSrc {
		groups, server, client, port = c.Src.Groups, r.Src, r.Dst, r.SrcPort
	}
	if !s.hasPolicies(groups) {
		return
	}
	in, out := &e.dir[0], &e.dir[1] // toward the server, from it
	if aServer {
		in, out = out, in
	}
	span := max(in.end, out.end) - min(in.from, out.from)
	sec := max(1, float64(span)/float64(time.Second))
	v := alert.Values{
		PacketsIn: float64(in.packets) / sec, PacketsOut: float64(out.packets) / sec,
		BytesIn: float64(in.bytes) / sec, BytesOut: float64(out.bytes) / sec,
	}
	server, client = server.Unmap(), client.Unmap()
	sk := serverKey{server: server.As16(), port: port, proto: r.Proto}
	ck := clientKey{client: client.As16()}
	for _, g := range groups {
		for _, p := range s.servers.Of(g) {
			sk.policy = p.ID
			if _, ok := s.learned.servers[sk]; ok || s.servers.Allowed(p, client) {
				continue
			}
			s.candidate(candKey{clientKey{serverKey: sk}, false}, g, p, server, client, v, s.servers)
		}
		for _, p := range s.clients.Of(g) {
			sk.policy = p.ID
			ck.serverKey = sk
			if _, ok := s.learned.clients[ck]; ok || s.clients.Allowed(p, client) {
				continue
			}
			s.candidate(candKey{ck, true}, g, p, server, client, v, s.clients)
		}
	}
}

func (s *Shard) candidate(k candKey, g uint16, p *policy.Policy, server, client netip.Addr, v alert.Values, gp *detect.GroupPolicies) {
	if _, dup := s.dedup[k]; dup {
		return
	}
	if len(s.cands) >= maxCandidates {
		s.stats.CandidatesDropped++
		s.drops[1].Inc()
		return
	}
	s.dedup[k] = struct{}{}
	tg := gp.Group(g)
	s.cands = append(s.cands, candidate{
		client: k.client, p: p, group: tg.ID, groupName: tg.Name,
		server: server, remote: client, proto: k.proto, port: k.port, values: v,
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
