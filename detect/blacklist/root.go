// Package blacklist is the blacklist detector family (policy family
// "blacklist", object type TGRP, ALERT_TYPE blacklisted_ip): an alert is
// raised when an address of the policy's traffic group talks to, or is
// contacted by, an address on one of the configured blacklists (the
// model's `blacklists:`; model.Class carries the IDs of the lists holding
// each side of a record).
//
// # One alert per address pair
//
// The connections between the same two addresses are grouped into one
// alert, keyed by the pair: the client and server of its first connection
// name the sides, SERVER_PORT is the server port of that first
// connection, and later connections (in either direction, on any port)
// count in CONNECTION_COUNT and add their server port to ADDITIONAL_PORTS.
// The alert is observed at every tick that saw a record of the pair, and
// ends (the alert engine's quiet period) when the connections stop. A pair
// idle for PairIdle is forgotten: a later connection starts a new count.
//
// # Client and server
//
// For each new connection (a protocol and port pair not among the pair's
// recent ones, so that both directions of a connection and the interim
// records of a long one count once), the client is, in order:
//   - TCP: the source of a record with SYN and no ACK; the destination of
//     one with SYN+ACK and nothing else (a sampled SYN-ACK);
//   - ICMP and ICMPv6: the source of an echo (timestamp, information,
//     mask) request, the destination of a reply;
//   - ports: the side with the more ephemeral port; ports rank, from
//     server-like to client-like, below 1024, a known service port
//     (3306, 3389, 8080, …), other ports below 32768, 32768 and above;
//     between two ports of the same rank below 32768, the lower is the
//     server's;
//   - else the source of the first record seen of the connection.
//
// # Fields
//
// In the manual's order: CLIENT_IP, CLIENT_BLACKLIST, CLIENT_BL_NAME,
// CLIENT_TG, CLIENT_TG_NAME, SERVER_IP, SERVER_BLACKLIST, SERVER_BL_NAME,
// SERVER_TG, SERVER_TG_NAME, PROTO, SERVER_PORT, CONNECTION_COUNT,
// TOTAL_PORTS, ADDITIONAL_PORTS. A side on no blacklist has blacklist 0
// and no BL_NAME field; when several lists hold an address, the one with
// the lowest ID is reported. The side in the policy's group has that
// group's ID; the other side has its first traffic group of the policy's
// partition, or 0 and no TG_NAME field. TOTAL_PORTS counts the distinct
// server ports seen besides SERVER_PORT and ADDITIONAL_PORTS lists them
// (space separated in the environment, a JSON array), at most
// MaxListedPorts; beyond that many, TOTAL_PORTS counts each new
// connection on an unlisted port (an upper bound). Both are present, 0
// and empty, when a single port was seen.
//
// Only the remote side must be listed: an address of the group that is
// itself on a list is reported (its CLIENT_/SERVER_BLACKLIST) but does not
// by itself raise an alert. A remote address on the policy's or the
// partition's allow-list raises nothing.
//
// # State and memory
//
// Pairs live in the shard that owns the record as a whole
// (model.OwnRecord), which both directions reach. A shard keeps at most
// MaxPairs pairs; records of new pairs beyond that are dropped, counted
// (Dropped) and logged at most once a minute. Records of known pairs
// allocate nothing.
package blacklist

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
const AlertType = "blacklisted_ip"

// Bounds of the state of a shard.
const (
	// MaxPairs is how many address pairs (per policy) a shard tracks.
	MaxPairs = 65536
	// MaxListedPorts is how many additional server ports an alert lists.
	MaxListedPorts = detect.MaxListedPorts
	// PairIdle is how long a pair without records is kept: the alert
	// engine's default quiet period, after which its alert has ended.
	PairIdle = 10 * time.Minute
)

// recentConns is how many recent connections of a pair are remembered to
// tell a new connection from another record of a known one.
const recentConns = 16

const (
	sweepEvery = int64(10 * time.Second)
	logEvery   = int64(time.Minute)
)

type pairKey struct {
	policy uint64
	lo, hi netip.Addr
}

// conn is a connection of a pair, its ports ordered as the pair's
// addresses.
type conn struct {
	loPort, hiPort uint16
	proto          uint8
	clientLo       bool
	used           bool
}

type pair struct {
	key            string // of the alert
	pol            *policy.Policy
	local          netip.Addr // the side in the policy's group
	client, server netip.Addr
	clientBL       uint32
	serverBL       uint32
	clientTG       uint32
	serverTG       uint32
	proto          uint8
	serverPort     uint16
	conns          uint64
	ports          detect.AdditionalPorts
	recent         [recentConns]conn
	next           uint8
	last           int64 // stage clock
	// since the last observation
	pktsIn, pktsOut, bytesIn, bytesOut, newConns uint64
	dirty, announced                             bool
}

// Shard is the family's stage in one shard. Its methods are called from
// the shard's goroutine only.
type Shard struct {
	gp       *detect.GroupPolicies
	policies func() *policy.Set
	observer detect.Observer
	log      *slog.Logger

	model *model.Model

	pairs     map[pairKey]*pair
	dirty     []*pair
	now       int64
	lastTick  int64
	lastSweep int64
	dropped   uint64
	drops     prometheus.Counter // flowsentry_detect_dropped_total
	logged    uint64             // dropped as of the last log
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
		pairs: map[pairKey]*pair{}, drops: d.Metrics.Dropped(f, "max_pairs")}
}

// Dropped returns how many records of new pairs were not tracked because
// the shard held MaxPairs pairs.
func (s *Shard) Dropped() uint64 { return s.dropped }

// Pairs returns how many pairs the shard tracks.
func (s *Shard) Pairs() int { return len(s.pairs) }

// SetModel takes a new model snapshot.
func (s *Shard) SetModel(m *model.Model) {
	s.model = m
	s.update()
}

// AddCounters does nothing.
func (s *Shard) AddCounters(*flow.IfCounters) {}

// AddBatch is AddClass for each record of rs (a pipeline.BatchStage):
// the records with no listed side, nearly all, cost no call.
func (s *Shard) AddBatch(rs []flow.Record, cs []model.Class) {
	if !s.gp.Any() {
		return
	}
	for i := range cs {
		if len(cs[i].Src.Blacklists) != 0 || len(cs[i].Dst.Blacklists) != 0 {
			s.AddClass(&rs[i], &cs[i])
		}
	}
}

// AddClass counts a record between an address of a traffic group and a
// listed one.
func (s *Shard) AddClass(r *flow.Record, c *model.Class) {
	if c.Own&model.OwnRecord == 0 || (len(c.Src.Blacklists) == 0 && len(c.Dst.Blacklists) == 0) || !s.gp.Any() {
		return
	}
	both := false
	if len(c.Dst.Blacklists) > 0 && len(c.Src.Groups) > 0 {
		s.match(r, c, true, nil)
		both = true
	}
	if len(c.Src.Blacklists) > 0 && len(c.Dst.Groups) > 0 {
		var done []uint16
		if both {
			done = c.Src.Groups
		}
		s.match(r, c, false, done)
	}
}

// in reports whether policy p is in force on one of groups: a template
// applies to every group of its partition, and a record of two of them
// counts once.
func (s *Shard) in(p *policy.Policy, groups []uint16) bool {
	for _, g := range groups {
		for _, q := range s.gp.Of(g) {
			if q.ID == p.ID {
				return true
			}
		}
	}
	return false
}

// match counts r toward the policies of the groups of its local side (the
// source when srcLocal), whose remote side is listed; the policies of the
// groups done were counted already.
func (s *Shard) match(r *flow.Record, c *model.Class, srcLocal bool, done []uint16) {
	local, remote := &c.Src, &c.Dst
	remoteAddr := r.Dst
	if !srcLocal {
		local, remote = remote, local
		remoteAddr = r.Src
	}
	for i, g := range local.Groups {
		for _, p := range s.gp.Of(g) {
			if s.gp.Allowed(p, remoteAddr) || (i > 0 && s.in(p, local.Groups[:i])) || (done != nil && s.in(p, done)) {
				continue
			}
			s.add(r, p, g, local, remote, srcLocal)
		}
	}
}

func (s *Shard) add(r *flow.Record, p *policy.Policy, g uint16, local, remote *model.Side, srcLocal bool) {
	src, dst := r.Src.Unmap(), r.Dst.Unmap()
	srcIsLo := src.Less(dst)
	lo, hi, loPort, hiPort := src, dst, r.SrcPort, r.DstPort
	if !srcIsLo {
		lo, hi, loPort, hiPort = dst, src, r.DstPort, r.SrcPort
	}
	k := pairKey{p.ID, lo, hi}
	pr := s.pairs[k]
	if pr == nil {
		if len(s.pairs) >= MaxPairs {
			s.dropped++
			s.drops.Inc()
			return
		}
		pr = &pair{pol: p}
		s.pairs[k] = pr
		if srcLocal {
			pr.local = src
		} else {
			pr.local = dst
		}
		// The sides' lists and groups; client and server are set by
		// the first connection, just below.
		pr.clientBL, pr.serverBL = lowest(local.Blacklists), lowest(remote.Blacklists)
		pr.clientTG, pr.serverTG = s.gp.Group(g).ID, s.gp.GroupIn(remote.Groups, p.CID)
	}
	i := pr.find(loPort, hiPort, r.Proto)
	if i < 0 {
		srcClient := role(r) >= 0
		clientLo := srcClient == srcIsLo
		pr.remember(conn{loPort: loPort, hiPort: hiPort, proto: r.Proto, clientLo: clientLo, used: true})
		port := loPort
		if clientLo {
			port = hiPort
		}
		if pr.conns == 0 {
			client, server := lo, hi
			if !clientLo {
				client, server = hi, lo
			}
			pr.client, pr.server, pr.proto, pr.serverPort = client, server, r.Proto, port
			if pr.local != client { // the fields were set for a local client
				pr.clientBL, pr.serverBL = pr.serverBL, pr.clientBL
				pr.clientTG, pr.serverTG = pr.serverTG, pr.clientTG
			}
			pr.key = client.String() + "/" + server.String()
		} else {
			pr.ports.Add(port, pr.serverPort)
		}
		pr.conns++
		pr.newConns++
	}
	if src == pr.local {
		pr.pktsOut += r.Packets
		pr.bytesOut += r.Bytes
	} else {
		pr.pktsIn += r.Packets
		pr.bytesIn += r.Bytes
	}
	pr.last = s.now
	if !pr.dirty {
		pr.dirty = true
		s.dirty = append(s.dirty, pr)
	}
}

// lowest returns the lowest blacklist ID of ids; 0 for none.
func lowest(ids []uint32) uint32 {
	if len(ids) == 0 {
		return 0
	}
	return slices.Min(ids)
}

func (pr *pair) find(loPort, hiPort uint16, proto uint8) int {
	for i := range pr.recent {
		c := &pr.recent[i]
		if c.used && c.loPort == loPort && c.hiPort == hiPort && c.proto == proto {
			return i
		}
	}
	return -1
}

func (pr *pair) remember(c conn) {
	pr.recent[pr.next] = c
	pr.next = (pr.next + 1) % recentConns
}

// Tick reports the pairs that saw records since the last tick and
// forgets the idle ones.
func (s *Shard) Tick(now int64) {
	s.update()
	s.now = now
	dt := float64(now-s.lastTick) / float64(time.Second)
	if s.lastTick == 0 || dt < 1 {
		dt = 1
	}
	t := time.Unix(0, now)
	for _, pr := range s.dirty {
		if pr.pol != nil {
			s.observer.Observe(t, s.condition(pr, dt))
			pr.announced = true
		}
		pr.pktsIn, pr.pktsOut, pr.bytesIn, pr.bytesOut, pr.newConns = 0, 0, 0, 0, 0
		pr.dirty = false
	}
	clear(s.dirty)
	s.dirty = s.dirty[:0]
	s.lastTick = now
	if now-s.lastSweep >= sweepEvery {
		s.lastSweep = now
		for k, pr := range s.pairs {
			if now-pr.last > int64(PairIdle) {
				delete(s.pairs, k)
			}
		}
	}
	if s.dropped != s.logged && now-s.lastLog >= logEvery {
		s.log.Warn("blacklist pairs dropped: the shard tracks its maximum of address pairs",
			"dropped", s.dropped-s.logged, "max_pairs", MaxPairs)
		s.logged, s.lastLog = s.dropped, now
	}
}

// Poll reports the pairs first seen since the last tick or poll at once.
func (s *Shard) Poll(now int64) {
	s.update()
	s.now = now
	sent := false
	t := time.Unix(0, now)
	for _, pr := range s.dirty {
		if pr.announced || pr.pol == nil {
			continue
		}
		s.observer.Observe(t, s.condition(pr, 1))
		pr.announced = true
		sent = true
	}
	if sent {
		s.observer.Commit()
	}
}

// update resolves the policies again when they or the model changed, and
// forgets the pairs of policies no longer in force.
func (s *Shard) update() {
	if s.policies == nil {
		return
	}
	set := s.policies()
	if !s.gp.Update(set, s.model) {
		return
	}
	for k, pr := range s.pairs {
		p := set.ByID(pr.pol.ID)
		if p == nil || p.Severity == 0 || p.Family != pr.pol.Family {
			pr.pol = nil
			delete(s.pairs, k)
			continue
		}
		pr.pol = p
	}
}

func (s *Shard) condition(pr *pair, dt float64) alert.Condition {
	f := make([]alert.Field, 0, 15)
	num := func(name string, v uint64) {
		f = append(f, alert.Field{Name: name, Value: strconv.FormatUint(v, 10), Number: true})
	}
	str := func(name, v string) { f = append(f, alert.Field{Name: name, Value: v}) }
	side := func(prefix string, addr netip.Addr, bl, tg uint32) {
		str(prefix+"_IP", addr.String())
		num(prefix+"_BLACKLIST", uint64(bl))
		if bl != 0 {
			str(prefix+"_BL_NAME", s.model.BlacklistName(bl))
		}
		num(prefix+"_TG", uint64(tg))
		if tg != 0 {
			str(prefix+"_TG_NAME", s.model.GroupName(tg))
		}
	}
	side("CLIENT", pr.client, pr.clientBL, pr.clientTG)
	side("SERVER", pr.server, pr.serverBL, pr.serverTG)
	num("PROTO", uint64(pr.proto))
	num("SERVER_PORT", uint64(pr.serverPort))
	num("CONNECTION_COUNT", pr.conns)
	f = append(f, pr.ports.Fields()...)
	p := pr.pol
	return alert.Condition{
		Policy: p.ID, Key: pr.key, Type: AlertType, CID: p.CID, CIDName: s.model.PartitionName(p.CID), Severity: p.Severity,
		Fields: f,
		Values: alert.Values{
			PacketsIn: float64(pr.pktsIn) / dt, PacketsOut: float64(pr.pktsOut) / dt,
			BytesIn: float64(pr.bytesIn) / dt, BytesOut: float64(pr.bytesOut) / dt,
			NewConn: float64(pr.newConns) / dt,
		},
	}
}

// role tells which side of r is the client: 1 its source, -1 its
// destination, 0 unknown (see the package documentation).
func role(r *flow.Record) int {
	switch r.Proto {
	case flow.ProtoTCP:
		f := r.TCPFlags
		if f&(flow.TCPSyn|flow.TCPAck) == flow.TCPSyn {
			return 1
		}
		if f&(flow.TCPSyn|flow.TCPAck|flow.TCPFin|flow.TCPPsh|flow.TCPRst) == flow.TCPSyn|flow.TCPAck {
			return -1
		}
	case flow.ProtoICMP:
		switch r.ICMPType {
		case 8, 13, 15, 17:
			return 1
		case 0, 14, 16, 18:
			return -1
		}
		return 0
	case flow.ProtoICMPv6:
		switch r.ICMPType {
		case 128:
			return 1
		case 129:
			return -1
		}
		return 0
	}
	return byPorts(r.SrcPort, r.DstPort)
}

// byPorts tells the client by the ports: 1 the source's, -1 the
// destination's, 0 unknown.
func byPorts(sp, dp uint16) int {
	rs, rd := detect.PortRank(sp), detect.PortRank(dp)
	switch {
	case rs > rd:
		return 1
	case rs < rd:
		return -1
	case sp == dp || rs == detect.RankEphemeral:
		return 0
	case sp > dp:
		return 1
	}
	return -1
}
