// Package slow is the ddos_slow detector family: low-and-slow
// application-layer attacks (slowloris, RUDY / slow POST), where a few
// hosts tie up a server's connection slots with many concurrent
// connections that each trickle a few bytes every several seconds and
// never finish their request. No per-second rate shows them; the manual
// says the category "uses a network specific index".
//
// # The index
//
// A target is a server port: (server address in a traffic group, TCP,
// server port). The index of a target, in connections, is
//
//	index = Σ over client addresses c with slow(c) ≥ min_per_client of slow(c)
//
// where slow(c) is the number of c's connections to the target that are
// open and slow at the evaluation:
//
//   - open: not closed (no FIN or RST seen from either side) and reported
//     within the last ConnTimeout (2 minutes: longer than the 60 s active
//     timeout exporters and the replay meter report long flows with);
//   - long: seen active for at least min_duration seconds (its last
//     packet minus its first, across every record of the connection);
//   - slow: its average client-to-server byte rate over that span is at
//     most max_rate layer-3 bytes per second;
//   - unanswered: the server sent at most max_reply_ratio × the bytes it
//     received (a server waiting for a request that never completes sends
//     only ACKs; when the replies are not seen at all, as with asymmetric
//     routing, the guard passes);
//   - from outside: the client is not in the partition's INT blocks
//     (unless internal_sources), nor on the policy's or partition's
//     allow-list.
//
// The policy fires when the index is above threshold (THRESHOLD_VALUE,
// in connections, default 100), and keeps being observed while it stays
// above.
//
// # Why ordinary long-lived sessions do not fire
//
// They are slow and long too; what they are not is many concurrent slow
// connections held by one client to one server port, unanswered:
//
//   - WebSockets, long polling, MQTT: many clients, about one connection
//     each; min_per_client (default 10) leaves them out, however many
//     clients there are. A slowloris host holds hundreds.
//   - Interactive SSH, RDP: one to a few connections per client, and the
//     server echoes and answers as much as it receives.
//   - Database and service connection pools: tens of connections from a
//     few application servers, but internal to the partition (INT blocks),
//     so not counted; and the database answers every query.
//   - Browsers behind a NAT with keep-alive connections: many connections
//     from one address, but the server answers each request with more
//     bytes than the request (max_reply_ratio), and keep-alive idle
//     connections show no activity span (min_duration) once idle.
//   - Busy web servers: short connections close (FIN) within a record and
//     are never tracked.
//
// What it cannot tell apart: a botnet whose every bot holds one or two
// slow connections looks like WebSocket clients in flow data; lower
// min_per_client on servers that hold no long connections to catch it.
// Many WebSocket clients behind one carrier-grade NAT look like one
// slowloris host: allow-list that NAT.
//
// # State
//
// The server side is in a traffic group, so every record to it (model.OwnDst)
// and from it (model.OwnSrc) reaches the shard owning its address: a
// shard stage tracks the connections of its servers, keyed by the
// 5-tuple, and needs no merge. The server port is the lower of the two
// ports (clients use ephemeral ports); a connection is tracked from its
// first record with ACK and without FIN or RST (spoofed SYNs and whole
// short connections leave no state). A tracked connection costs about
// 150 bytes (measured by TestMemoryPerConnection); a shard holds at most
// MaxConns of them and at most MaxConnsPerServer per server port, and
// counts the connections it could not track (Stats).
//
// The evaluation runs at the tick every ScanInterval (a slow attack needs
// no sub-second detection): it expires the connections not reported for
// ConnTimeout and computes the index of each server port with more open
// connections than a threshold. Between evaluations the last conditions
// are observed again at every tick.
//
// One alert per target address and policy (target.Key): when several
// ports of one address are over the threshold, the port with the highest
// index is reported.
package slow

import (
	"github.com/prometheus/client_golang/prometheus"

	"cmp"
	"net/netip"
	"slices"
	"time"

	"github.com/flowsentry/flowsentry/alert"
	"github.com/flowsentry/flowsentry/detect"
	"github.com/flowsentry/flowsentry/detect/target"
	"github.com/flowsentry/flowsentry/flow"
	"github.com/flowsentry/flowsentry/model"
	"github.com/flowsentry/flowsentry/policy"
)

// Family is the name of the family, and AlertType the ALERT_TYPE of its
// alerts.
const (
	Family    policy.Family = "ddos_slow"
	AlertType               = "ddos_slow"
)

// Bounds and timing of the state, per shard.
const (
	// ScanInterval is how often the index is evaluated.
	ScanInterval = 5 * time.Second
	// ConnTimeout is how long a connection stays open without a record.
	ConnTimeout = 2 * time.Minute
	// MaxConns is the most connections a shard tracks.
	MaxConns = 1 << 18
	// MaxConnsPerServer is the most connections a shard tracks to one
	// server port.
	MaxConnsPerServer = 1 << 16
	// newConnWindow is the window NEW_CONN values are averaged over.
	newConnWindow = time.Minute
)

const none = ^uint32(0)

// addr16 is an address in its 16-byte form (IPv4 mapped): map keys
// without pointers.
type addr16 [16]byte

func key16(a netip.Addr) addr16 { return a.Unmap().As16() }

func (a addr16) addr() netip.Addr { return netip.AddrFrom16(a).Unmap() }

type serverKey struct {
	addr  addr16
	port  uint16
	proto uint8
}

type connKey struct {
	server serverKey
	client addr16
	cport  uint16
}

// conn is one tracked connection, linked in its server's list.
type conn struct {
	client      addr16
	cport       uint16
	internal    bool // the client is in the INT blocks of the server's partition
	server      uint32
	prev, next  uint32
	first, last int64
	bytesIn     uint64
	bytesOut    uint64
	pktsIn      uint64
	pktsOut     uint64
}

// server is one server port with tracked connections.
type server struct {
	key    serverKey
	groups []uint16 // shared with the model
	head   uint32
	n      uint32
	live   bool
	// sources are the blocks of the counted clients, allocated the first
	// time the server port goes over a threshold.
	sources *target.Sources
}

// fired is a server port over a policy's threshold at an evaluation.
type fired struct {
	p      *policy.Policy
	server uint32
	index  int
	values alert.Values
	fields []alert.Field
}

// Stats are a shard stage's counters.
type Stats struct {
	// Conns and Servers are the connections and server ports tracked.
	Conns, Servers int
	// Dropped counts the records of new connections not tracked for
	// lack of room (MaxConns, MaxConnsPerServer).
	Dropped uint64
}

// Detector is the family's stage of one shard. Its methods are called
// from the shard's goroutine only.
type Detector struct {
	policies func() *policy.Set
	observer detect.Observer
	groups   *detect.GroupPolicies
	model    *model.Model

	maxConns, maxPerServer int

	index   map[connKey]uint32
	conns   []conn
	free    uint32
	servers []server
	byKey   map[serverKey]uint32
	sfree   []uint32
	dropped uint64
	drops   [2]prometheus.Counter // flowsentry_detect_dropped_total: max_connections, max_per_server

	lastScan  int64
	perClient map[addr16]uint32 // scratch of an evaluation
	fired     []fired
	current   []alert.Condition // observed at every tick until the next evaluation
}

// New returns the stage of one shard.
func New(d detect.Deps) *Detector {
	return &Detector{
		policies: d.Policies, observer: d.Observer, groups: detect.NewGroupPolicies(Family),
		maxConns: MaxConns, maxPerServer: MaxConnsPerServer,
		index: map[connKey]uint32{}, byKey: map[serverKey]uint32{}, free: none,
		perClient: map[addr16]uint32{},
		drops:     [2]prometheus.Counter{d.Metrics.Dropped(Family, "max_connections"), d.Metrics.Dropped(Family, "max_per_server")},
	}
}

// Stats returns the stage's counters.
func (d *Detector) Stats() Stats {
	return Stats{Conns: len(d.index), Servers: len(d.byKey), Dropped: d.dropped}
}

// SetModel takes a new model snapshot: the servers' traffic groups are
// looked up again in it.
func (d *Detector) SetModel(m *model.Model) {
	d.model = m
	d.groups.Update(d.policySet(), m)
	for i := range d.servers {
		s := &d.servers[i]
		if s.live {
			s.groups = nil
			if m != nil {
				s.groups = m.GroupsOf(s.key.addr.addr())
			}
		}
	}
}

func (d *Detector) policySet() *policy.Set {
	if d.policies == nil {
		return nil
	}
	return d.policies()
}

// AddCounters does nothing.
func (d *Detector) AddCounters(*flow.IfCounters) {}

// AddBatch is AddClass for each record of rs (a pipeline.BatchStage):
// records other than TCP cost no call.
func (d *Detector) AddBatch(rs []flow.Record, cs []model.Class) {
	if !d.groups.Any() {
		return
	}
	for i := range rs {
		if rs[i].Proto == flow.ProtoTCP {
			d.AddClass(&rs[i], &cs[i])
		}
	}
}

// AddClass tracks the TCP connections to and from the servers of the
// shard's traffic groups with a policy of the family.
func (d *Detector) AddClass(r *flow.Record, c *model.Class) {
	if r.Proto != flow.ProtoTCP || !d.groups.Any() {
		return
	}
	switch {
	case c.Own&model.OwnDst != 0 && r.DstPort < r.SrcPort && d.watched(c.Dst.Groups):
		d.inbound(r, c)
	case c.Own&model.OwnSrc != 0 && r.SrcPort < r.DstPort && len(c.Src.Groups) > 0 && len(d.index) > 0:
		d.outbound(r)
	}
}

func (d *Detector) watched(groups []uint16) bool {
	for _, g := range groups {
		if len(d.groups.Of(g)) > 0 {
			return true
		}
	}
	return false
}

func closing(r *flow.Record) bool { return r.TCPFlags&(flow.TCPFin|flow.TCPRst) != 0 }

// inbound counts a record from a client to a server port.
func (d *Detector) inbound(r *flow.Record, c *model.Class) {
	k := connKey{serverKey{key16(r.Dst), r.DstPort, r.Proto}, key16(r.Src), r.SrcPort}
	if i, ok := d.index[k]; ok {
		if closing(r) {
			d.remove(i, k)
			return
		}
		cn := &d.conns[i]
		cn.first, cn.last = min(cn.first, r.Start), max(cn.last, r.End)
		cn.bytesIn += r.Bytes
		cn.pktsIn += r.Packets
		return
	}
	if closing(r) || r.TCPFlags&flow.TCPAck == 0 {
		return
	}
	if len(d.index) >= d.maxConns {
		d.dropped++
		d.drops[0].Inc()
		return
	}
	si, ok := d.byKey[k.server]
	if !ok {
		si = d.newServer(k.server, c.Dst.Groups)
	}
	s := &d.servers[si]
	if int(s.n) >= d.maxPerServer {
		d.dropped++
		d.drops[1].Inc()
		return
	}
	i := d.newConn()
	cn := &d.conns[i]
	*cn = conn{client: k.client, cport: k.cport, internal: d.internal(c), server: si, prev: none, next: s.head,
		first: r.Start, last: r.End, bytesIn: r.Bytes, pktsIn: r.Packets}
	if s.head != none {
		d.conns[s.head].prev = i
	}
	s.head = i
	s.n++
	d.index[k] = i
}

// outbound counts a record from a server port to a tracked client.
func (d *Detector) outbound(r *flow.Record) {
	k := connKey{serverKey{key16(r.Src), r.SrcPort, r.Proto}, key16(r.Dst), r.DstPort}
	i, ok := d.index[k]
	if !ok {
		return
	}
	if closing(r) {
		d.remove(i, k)
		return
	}
	cn := &d.conns[i]
	cn.last = max(cn.last, r.End)
	cn.bytesOut += r.Bytes
	cn.pktsOut += r.Packets
}

// internal reports whether the client of c is in the INT blocks of the
// partition of a group of its server.
func (d *Detector) internal(c *model.Class) bool {
	if len(c.Src.Internal) == 0 || d.model == nil {
		return false
	}
	for _, g := range c.Dst.Groups {
		if int(g) < len(d.model.Groups) && slices.Contains(c.Src.Internal, d.model.Groups[g].CID) {
			return true
		}
	}
	return false
}

func (d *Detector) newServer(k serverKey, groups []uint16) uint32 {
	var si uint32
	if n := len(d.sfree); n > 0 {
		si = d.sfree[n-1]
		d.sfree = d.sfree[:n-1]
	} else {
		d.servers = append(d.servers, server{})
		si = uint32(len(d.servers) - 1)
	}
	s := &d.servers[si]
	src := s.sources // kept for reuse
	*s = server{key: k, groups: groups, head: none, live: true, sources: src}
	d.byKey[k] = si
	return si
}

func (d *Detector) newConn() uint32 {
	if d.free != none {
		i := d.free
		d.free = d.conns[i].next
		return i
	}
	d.conns = append(d.conns, conn{})
	return uint32(len(d.conns) - 1)
}

// remove forgets connection i, whose key is k.
func (d *Detector) remove(i uint32, k connKey) {
	cn := &d.conns[i]
	s := &d.servers[cn.server]
	if cn.prev != none {
		d.conns[cn.prev].next = cn.next
	} else {
		s.head = cn.next
	}
	if cn.next != none {
		d.conns[cn.next].prev = cn.prev
	}
	s.n--
	delete(d.index, k)
	cn.next, cn.prev = d.free, none
	d.free = i
}

// Tick evaluates the index every ScanInterval and observes the
// conditions that hold.
func (d *Detector) Tick(now int64) {
	d.groups.Update(d.policySet(), d.model)
	if now-d.lastScan >= int64(ScanInterval) || now < d.lastScan {
		d.lastScan = now
		d.scan(now)
	}
	t := time.Unix(0, now)
	for _, c := range d.current {
		d.observer.Observe(t, c)
	}
}

// scan expires the connections gone quiet and evaluates every server
// port against the policies in force on its groups.
func (d *Detector) scan(now int64) {
	d.fired = d.fired[:0]
	for si := range d.servers {
		s := &d.servers[si]
		if !s.live {
			continue
		}
		for i := s.head; i != none; {
			cn := &d.conns[i]
			next := cn.next
			if now-cn.last > int64(ConnTimeout) {
				d.remove(i, connKey{s.key, cn.client, cn.cport})
			}
			i = next
		}
		if s.n == 0 {
			delete(d.byKey, s.key)
			s.live, s.groups = false, nil
			d.sfree = append(d.sfree, uint32(si))
			continue
		}
		for _, g := range s.groups {
			for _, p := range d.groups.Of(g) {
				d.evaluate(now, uint32(si), g, p)
			}
		}
	}
	d.report()
}

// slow reports whether connection cn counts toward policy p with
// parameters pp.
func (d *Detector) slow(cn *conn, p *policy.Policy, pp *Params) bool {
	span := float64(cn.last-cn.first) / 1e9
	if span < pp.MinDuration || float64(cn.bytesIn) > pp.MaxRate*span ||
		float64(cn.bytesOut) > pp.MaxReplyRatio*float64(cn.bytesIn) ||
		(cn.internal && !pp.InternalSources) {
		return false
	}
	return !d.groups.Allowed(p, cn.client.addr())
}

// evaluate computes the index of server port si for policy p and records
// it when above the threshold.
func (d *Detector) evaluate(now int64, si uint32, g uint16, p *policy.Policy) {
	s := &d.servers[si]
	pp := Of(p)
	if pp == nil || float64(s.n) <= pp.Threshold || (pp.Port != 0 && pp.Port != s.key.port) {
		return
	}
	clear(d.perClient)
	total := 0
	for i := s.head; i != none; i = d.conns[i].next {
		if cn := &d.conns[i]; d.slow(cn, p, pp) {
			d.perClient[cn.client]++
			total++
		}
	}
	if float64(total) <= pp.Threshold {
		return
	}
	index := 0
	for _, n := range d.perClient {
		if int(n) >= pp.MinPerClient {
			index += int(n)
		}
	}
	if float64(index) <= pp.Threshold {
		return
	}
	if s.sources == nil {
		s.sources = target.NewSources()
	}
	s.sources.Reset()
	var v alert.Values
	newConns := 0
	for i := s.head; i != none; i = d.conns[i].next {
		cn := &d.conns[i]
		if int(d.perClient[cn.client]) < pp.MinPerClient || !d.slow(cn, p, pp) {
			continue
		}
		s.sources.Add(cn.client.addr(), cn.pktsIn)
		sec := max(1, float64(cn.last-cn.first)/1e9)
		v.PacketsIn += float64(cn.pktsIn) / sec
		v.BytesIn += float64(cn.bytesIn) / sec
		v.PacketsOut += float64(cn.pktsOut) / sec
		v.BytesOut += float64(cn.bytesOut) / sec
		if now-cn.first <= int64(newConnWindow) {
			newConns++
		}
	}
	v.NewConn = float64(newConns) / newConnWindow.Seconds()
	a := target.Attack{IP: s.key.addr.addr(), Group: d.groups.Group(g), Proto: s.key.proto, Port: s.key.port,
		Threshold: pp.Threshold, Sources: s.sources}
	d.fired = append(d.fired, fired{p: p, server: si, index: index, values: v, fields: a.Fields(nil)})
}

// report turns what fired into conditions, one per policy and address:
// the port with the highest index.
func (d *Detector) report() {
	d.current = d.current[:0]
	if len(d.fired) == 0 {
		return
	}
	slices.SortFunc(d.fired, func(a, b fired) int {
		sa, sb := &d.servers[a.server].key, &d.servers[b.server].key
		return cmp.Or(cmp.Compare(a.p.ID, b.p.ID), slices.Compare(sa.addr[:], sb.addr[:]),
			cmp.Compare(b.index, a.index), cmp.Compare(sa.port, sb.port))
	})
	for i, f := range d.fired {
		s := &d.servers[f.server]
		if i > 0 && d.fired[i-1].p.ID == f.p.ID && d.servers[d.fired[i-1].server].key.addr == s.key.addr {
			continue
		}
		d.current = append(d.current, alert.Condition{
			Policy: f.p.ID, Key: target.Key(AlertType, s.key.addr.addr()), Type: AlertType,
			CID: f.p.CID, CIDName: d.model.PartitionName(f.p.CID), Severity: f.p.Severity,
			Fields: f.fields, Values: f.values,
		})
	}
}

func init() {
	detect.Register(detect.Family{
		Policy: policy.Spec{Name: Family, Objects: []string{policy.ObjectGroup},
			NewParams: func() policy.Params { return NewParams() }},
		NewShard: func(d detect.Deps) (detect.ShardStage, error) { return New(d), nil },
	})
}
