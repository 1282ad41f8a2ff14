// Package rates keeps live per-second rates for the objects that policies
// watch, shaped as the OBJECT_TYPEs of the FlowTraq plugin contract:
// traffic groups (TGRP), traffic group ports (TGRP+PROTO+PORT), hosts inside
// traffic groups (TGRP+IP), exporter interfaces (EXPORTER_ADDR+IFINDEX) and
// interface ports (EXPORTER_ADDR+IFINDEX+PROTO+PORT); and the inventory of
// exporters and their interfaces, with sFlow interface counters.
//
// # Directions
//
// A flow Src→Dst counts "in" for every traffic group holding Dst, for the
// host Dst in it and for its port object; and "out" for every traffic group
// holding Src, the host Src and its port object. A flow inside one traffic
// group counts in and out. On the exporter, InIf (when not 0) counts "in"
// and OutIf (when not 0) "out", each with its port object.
//
// A port object's port is the flow's service port: a well-known port
// (below 1024) on either side, the destination's first; otherwise the port
// on the object's side (the destination port for "in" and for interfaces,
// the source port for "out"). So a client's connections to 443 all count
// under 443 in both directions, an amplification from source port 53
// counts under 53, and a flood to a high port counts under that port,
// without one object per ephemeral port. For ICMP and ICMPv6 the port is
// type<<8|code. Records without a valid exporter address (the packet
// meter's) update no interface.
//
// # Counters
//
// Packets and bytes are the record's (already scaled by sampling). A TCP
// record with SYN among its flags, or any non-TCP record, is max(1,
// SamplingRate) new connections: a sampled SYN stands for SamplingRate of
// them; a TCP record without SYN continues a connection. Every object a
// record touches counts one update, even when it touches it both ways. A
// record with Continued set (the packet meter's interim report of a flow
// already counted) adds only its packets and bytes: no new connection, no
// update.
//
// # Time and windows
//
// Time comes only from Tick (Unix ns, virtual in replay); call it once
// before the first Add. Each object keeps per-second buckets of the last
// Window closed seconds plus the open one. Cur is the sum of the closed
// seconds divided by Window; Avg is the total divided by the closed seconds
// since the object's first second (at least 1); Peak is the highest Cur
// seen at a Tick. Totals are exact integer sums.
//
// A record covers ceil((End-Start)/1s) seconds, at least one, ending in the
// second of End; each second gets an equal integer share of its packets,
// bytes and new connections, and the first second the remainder too (so a
// single new connection lands where the flow started), so a long flow
// shows its real rate, not a one-second burst, and nothing is lost. Seconds before the window reach only the totals. A record
// that ended before the window entirely is moved, keeping its duration, to
// end in the open second: exporters report flows at their inactive or
// active timeout, and dropping those would hide their traffic from the
// rates altogether. A record ending after the open second (an exporter
// clock ahead of ours) is moved the same way. Both are counted in
// flowsentry_rates_records_shifted_total. The update goes to the
// record's (moved) last second.
//
// # Unique counts
//
// For host H of traffic group T in partition P, uniq_local_endpoint counts
// the distinct addresses other than H, in T or in P's INT blocks, that H
// sent flows to; uniq_remote_cidr counts the distinct /24 (IPv4) or /64
// (IPv6) blocks outside those that H sent flows to. Only flows sent by H
// count: a scanner or a worm must send to every target while most targets
// never answer, and counting received flows would make every victim of a
// spoofed flood look like a scanner (the DDoS detectors watch those).
// They are estimated with HyperLogLog sketches (relative standard error
// 1.04/sqrt(2^HLLPrecision)) over tumbling windows of Window seconds aligned
// on multiples of Window, counting the records added during the window:
// Cur is the last closed window's estimate divided by Window, Avg the sum
// of the windows' estimates divided by the active seconds, Peak the highest
// Cur.
//
// # Memory and cost
//
// An object holds Window+1 per-second slots of 64 bytes (7 eight-byte
// counters, padded to a cache line) plus 384 bytes of state: about 1.1 KiB
// with its index entry at the default window. A host that sent a flow adds
// its two estimators, about 0.7 KiB at HLLPrecision 8. The slots hold
// differences between consecutive seconds, so a record costs a few writes
// per object it touches, however many seconds it is spread over.
// Per-kind caps (Config.Max*) bound the total; refused objects are counted
// in flowsentry_rates_objects_refused_total. Objects without traffic for
// IdleTimeout, and exporters and their interfaces silent for
// ExporterTimeout, are dropped at a Tick (in Shards, at the Merge: see
// there, with how a shard counts traffic groups and interfaces through
// their ports). A Tick costs little per idle object, but its snapshot
// copies every object (408 bytes each).
//
// # Concurrency
//
// An Engine (a shard's) has one writer goroutine, which calls SetModel,
// AddClass, AddCounters, Tick and Each. Shards' Merge, Publish and Each
// run while no shard runs; its Snapshot is safe from any goroutine.
package rates

import (
	"encoding/binary"
	"maps"
	"math"
	"net/netip"
	"slices"
	"sync/atomic"
	"time"

	"github.com/flowsentry/flowsentry/flow"
	"github.com/flowsentry/flowsentry/model"
)

// Engine keeps the rates. All methods but Snapshot must be called from one
// goroutine, the writer.
type Engine struct {
	cfg     Config
	window  int64 // Config.Window in seconds
	ringLen int64 // window + the open second
	max     [numKinds]int
	metrics metrics
	pending pending

	model  *model.Model
	refs   []*groupRef          // by index into model.Groups
	groups map[uint32]*groupRef // by traffic group ID, kept across reloads

	now, nowSec int64 // the last Tick, and its (open) second
	nowSlot     int   // the ring slot of nowSec
	rec         placement
	// dup says whether the record being added may count an object both
	// "in" and "out" (a traffic group on both sides, or InIf = OutIf);
	// updated are then the objects it counted "in", so that counting one
	// "out" as well adds no second update.
	dup     bool
	updated []*Object
	// part is a shard's engine (see Shards): it publishes no snapshot
	// and sets no gauge, the merge does; merging is the merge's engine,
	// whose objects hold sums and no per-second ring.
	part, merging bool

	live      [numKinds][]*Object
	ports     *index // group ID<<32 | proto<<16 | port
	hosts4    *index // group ID<<32 | IPv4 address
	hosts6    map[host6Key]*Object
	exporters map[netip.Addr]*exporterState
	lastExp   *exporterState
	// expired are the summed totals of the TGRP objects dropped as idle,
	// by traffic group ID; replaced, never changed, so that snapshots
	// share it.
	expired map[uint32]Totals

	snap atomic.Pointer[Snapshot]
}

// groupRef is a traffic group as the engine knows it: its name and
// partition (refreshed by SetModel) and its TGRP object.
type groupRef struct {
	id   uint32
	name string
	cid  uint32
	obj  *Object
}

// host6Key is an IPv6 host's map key: three words, so that the map hashes
// it as plain memory.
type host6Key struct {
	hi, lo, group uint64
}

// halves returns the 16-byte form of addr (IPv4 mapped into
// ::ffff:0:0/96) as two big-endian words.
func halves(addr netip.Addr) (hi, lo uint64) {
	if addr.Is4() { // the common case, without building the 16 bytes
		a := addr.As4()
		return 0, 0xffff<<32 | uint64(binary.BigEndian.Uint32(a[:]))
	}
	a := addr.As16()
	return binary.BigEndian.Uint64(a[:8]), binary.BigEndian.Uint64(a[8:])
}

func host4Key(group uint32, addr netip.Addr) uint64 {
	a := addr.As4()
	return uint64(group)<<32 | uint64(binary.BigEndian.Uint32(a[:]))
}

func host6KeyOf(group uint32, addr netip.Addr) host6Key {
	hi, lo := halves(addr)
	return host6Key{hi: hi, lo: lo, group: uint64(group)}
}

func groupPortKey(group uint32, proto uint8, port uint16) uint64 {
	return uint64(group)<<32 | uint64(proto)<<16 | uint64(port)
}

// newEngine returns an engine of a valid cfg reporting to m.
func newEngine(cfg Config, m metrics) *Engine {
	w := int64(cfg.Window / time.Second)
	e := &Engine{
		cfg:       cfg,
		window:    w,
		ringLen:   w + 1,
		metrics:   m,
		groups:    map[uint32]*groupRef{},
		ports:     newIndex(),
		hosts4:    newIndex(),
		hosts6:    map[host6Key]*Object{},
		exporters: map[netip.Addr]*exporterState{},
		updated:   make([]*Object, 0, 16),
	}
	e.max = [numKinds]int{
		KindGroup:         math.MaxInt,
		KindGroupPort:     cfg.MaxGroupPorts,
		KindHost:          cfg.MaxHosts,
		KindInterface:     cfg.MaxInterfaces,
		KindInterfacePort: cfg.MaxInterfacePorts,
		kindExporter:      cfg.MaxExporters,
	}
	return e
}

// SetModel switches to a new network model (nil: none, so no traffic
// group counts). Objects are keyed by traffic group ID, so groups that
// survive the reload keep their state and take their new name and
// partition; objects of removed groups stop counting and expire when idle.
func (e *Engine) SetModel(m *model.Model) {
	e.model, e.refs = m, nil
	if m == nil {
		return
	}
	e.refs = make([]*groupRef, len(m.Groups))
	for i, g := range m.Groups {
		ref := e.groups[g.ID]
		if ref == nil {
			ref = &groupRef{id: g.ID}
			e.groups[g.ID] = ref
		}
		ref.name, ref.cid = g.Name, g.CID
		e.refs[i] = ref
	}
}

// AddClass counts one flow record classified as c with the engine's
// model, only the parts c.Own says this engine owns: the source side's
// traffic groups, ports and host (OwnSrc), the destination side's
// (OwnDst), the exporter and its interfaces (OwnRecord). An object counted
// both ways by one record counts one update, even when its two sides are
// owned by different engines (the destination side's owner counts it). It
// is the hot path: it allocates nothing once the objects it touches exist.
func (e *Engine) AddClass(r *flow.Record, c *model.Class) {
	if c.Own&model.OwnRecord != 0 {
		e.pending.records++
		if len(c.Src.Groups) == 0 && len(c.Dst.Groups) == 0 {
			e.pending.noGroup++
		}
	}
	e.place(r)
	e.updated = e.updated[:0]

	src, dst := r.Src.Unmap(), r.Dst.Unmap()
	srcG, dstG := c.Src.Groups, c.Dst.Groups
	if e.model == nil {
		srcG, dstG = nil, nil
	}
	e.dup = len(srcG) > 0 && len(dstG) > 0 || r.InIf != 0 && r.InIf == r.OutIf
	inPort, outPort := servicePort(r, r.DstPort), servicePort(r, r.SrcPort)

	if c.Own&model.OwnDst != 0 {
		for _, gi := range dstG {
			ref := e.refs[gi]
			e.countGroup(ref, r.Proto, inPort, dirIn, false, false)
			if h := e.host(ref, dst); h != nil {
				e.touch(h, dirIn)
			}
		}
	}
	if c.Own&model.OwnSrc != 0 {
		// When another engine owns the destination side, it counted the
		// update of the objects this record touches both ways.
		foreign := c.Own&model.OwnDst == 0
		for _, gi := range srcG {
			ref := e.refs[gi]
			both := foreign && slices.Contains(dstG, gi)
			e.countGroup(ref, r.Proto, outPort, dirOut, both, both && inPort == outPort)
			if h := e.host(ref, src); h != nil {
				e.touch(h, dirOut)
				if dst.IsValid() && dst != src {
					e.observePeer(h, dst, slices.Contains(dstG, gi) || slices.Contains(c.Dst.Internal, ref.cid))
				}
			}
		}
	}

	if c.Own&model.OwnRecord == 0 || !r.Exporter.IsValid() {
		return
	}
	x := e.exporter(r.Exporter.Unmap())
	if x == nil {
		return
	}
	x.obj.update(&e.rec)
	if r.InIf != 0 {
		e.countInterface(x, r.InIf, r.Proto, inPort, dirIn)
	}
	if r.OutIf != 0 {
		e.countInterface(x, r.OutIf, r.Proto, inPort, dirOut)
	}
}

// servicePort is the port a record counts under on a port object: a
// well-known port (below 1024) on either side, the destination's first, so
// that clients' ephemeral ports and the responses of services do not make
// one object per connection; else sidePort, the port on the object's side
// (the destination port for interfaces). ICMP counts under type<<8|code.
func servicePort(r *flow.Record, sidePort uint16) uint16 {
	switch {
	case r.Proto == flow.ProtoICMP || r.Proto == flow.ProtoICMPv6:
		return uint16(r.ICMPType)<<8 | uint16(r.ICMPCode)
	case r.DstPort != 0 && r.DstPort < 1024:
		return r.DstPort
	case r.SrcPort != 0 && r.SrcPort < 1024:
		return r.SrcPort
	}
	return sidePort
}

// touch counts the placed record on o in direction dir, and once as an
// update. Add touches an object "in" before it touches it "out".
func (e *Engine) touch(o *Object, dir Counter) {
	o.count(&e.rec, dir)
	e.mark(o, dir)
}

// mark counts the record being added as one update of o, once however
// many ways the record touches o.
func (e *Engine) mark(o *Object, dir Counter) {
	if e.claim(o, dir) {
		o.update(&e.rec)
	}
}

// claim reports whether the record being added is an update of o still
// to count: the first time the record touches o.
func (e *Engine) claim(o *Object, dir Counter) bool {
	if e.dup {
		if dir == dirIn {
			e.updated = append(e.updated, o)
		} else if slices.Contains(e.updated, o) {
			return false
		}
	}
	return true
}

// touchPart counts the record on port, a port object of a shard's engine,
// and its update on port or on parent (its traffic group or interface,
// nil when refused), the way touch and touchSome count them on both in
// one engine; noPortUpdate and noParentUpdate as in countGroup. The merge
// adds a port to its parent, updates included (see Shards), so parent
// only takes the difference: none when the record updates both, as
// nearly every record does, -1 when it updates port but not parent (its
// other side updated another port of parent), +1 the other way round.
func (e *Engine) touchPart(port, parent *Object, dir Counter, noPortUpdate, noParentUpdate bool) {
	port.count(&e.rec, dir)
	ported := false
	if noPortUpdate {
		port.last = max(port.last, e.rec.endNs)
	} else if e.claim(port, dir) {
		port.update(&e.rec)
		ported = true
	}
	if parent == nil {
		return
	}
	if wanted := !noParentUpdate && e.claim(parent, dir); wanted != ported {
		n := uint64(1)
		if !wanted {
			n = ^uint64(0) // -1
		}
		parent.addUpdates(&e.rec, n)
	}
}

// countGroup counts the record on a traffic group and its port object;
// noGroupUpdate and noPortUpdate leave out the update of either, which
// another engine counted. In a shard's engine the group counts the record
// only when the cap refused the port object: the merge adds the ports to
// it (see Shards and touchPart).
func (e *Engine) countGroup(ref *groupRef, proto uint8, port uint16, dir Counter, noGroupUpdate, noPortUpdate bool) {
	group := e.groupObject(ref)
	k := groupPortKey(ref.id, proto, port)
	o := e.ports.get(k)
	if o == nil {
		o = e.ports.add(k, e.newObject(Key{Kind: KindGroupPort, Group: ref.id, Proto: proto, Port: port}, ref, nil))
	}
	switch {
	case o == nil:
		e.touchSome(group, dir, noGroupUpdate)
	case e.part:
		e.touchPart(o, group, dir, noPortUpdate, noGroupUpdate)
	default:
		e.touchSome(o, dir, noPortUpdate)
		e.touchSome(group, dir, noGroupUpdate)
	}
}

// groupObject returns the TGRP object of traffic group ref, creating it
// (never refused).
func (e *Engine) groupObject(ref *groupRef) *Object {
	if ref.obj == nil {
		ref.obj = e.newObject(Key{Kind: KindGroup, Group: ref.id}, ref, nil)
	}
	return ref.obj
}

// touchSome is touch, or only the count and the last seen time when
// noUpdate.
func (e *Engine) touchSome(o *Object, dir Counter, noUpdate bool) {
	if noUpdate {
		o.count(&e.rec, dir)
		o.last = max(o.last, e.rec.endNs)
		return
	}
	e.touch(o, dir)
}

// host returns the host object of addr in traffic group ref, creating it;
// nil when refused.
func (e *Engine) host(ref *groupRef, addr netip.Addr) *Object {
	key := Key{Kind: KindHost, Group: ref.id, IP: addr}
	if addr.Is4() {
		k := host4Key(ref.id, addr)
		if o := e.hosts4.get(k); o != nil {
			return o
		}
		return e.hosts4.add(k, e.newObject(key, ref, nil))
	}
	return lookup(e, e.hosts6, host6KeyOf(ref.id, addr), key, ref, nil)
}

// lookup returns the object at k in m, creating it with key; nil when
// its kind's cap refuses it.
func lookup[K comparable](e *Engine, m map[K]*Object, k K, key Key, group *groupRef, exp *exporterState) *Object {
	if o := m[k]; o != nil {
		return o
	}
	o := e.newObject(key, group, exp)
	if o != nil {
		m[k] = o
	}
	return o
}

// countInterface counts the record on an interface and its port object.
// A port object keeps its interface object, so that a record finds both
// with one look-up. The interface outlives it: both are touched together
// and the interface's timeout (ExporterTimeout) is at least the port's
// (IdleTimeout), so a Tick that drops the interface drops the port too.
// In a shard's engine the interface, like a traffic group (see
// countGroup), counts the record only without a port object.
func (e *Engine) countInterface(x *exporterState, ifIndex uint32, proto uint8, port uint16, dir Counter) {
	k := ifPortKey(ifIndex, proto, port)
	po := x.ports.get(k)
	var io *Object
	if po != nil {
		io = po.iface
	}
	if io == nil { // new port, or its interface was refused
		io = e.iface(x, ifIndex)
	}
	if po == nil {
		key := Key{Kind: KindInterfacePort, Exporter: x.obj.key.Exporter, IfIndex: ifIndex, Proto: proto, Port: port}
		po = x.ports.add(k, e.newObject(key, nil, x))
	}
	switch {
	case po == nil:
		if io != nil {
			e.touch(io, dir)
		}
	case e.part:
		po.iface = io
		e.touchPart(po, io, dir, false, false)
	default:
		po.iface = io
		e.touch(po, dir)
		if io != nil {
			e.touch(io, dir)
		}
	}
}

// Tick moves the engine's clock to now (Unix ns; a time before the last
// Tick counts as the last Tick's): it closes the seconds up to now, raises
// the peaks, closes the unique-count window when one ended, drops idle
// objects, publishes a snapshot and updates the metrics.
func (e *Engine) Tick(now int64) {
	now = max(now, e.now)
	prev := e.nowSec
	oldWin := floorDiv(prev, e.window)
	e.now, e.nowSec = now, floorDiv(now, nsPerSec)
	e.nowSlot = e.slot(e.nowSec)
	newWin := floorDiv(e.nowSec, e.window)

	for k := range numKinds {
		timeout := e.timeout(k)
		list := e.live[k]
		for i := len(list) - 1; i >= 0; i-- {
			o := list[i]
			// A shard keeps its parts of the merged kinds until the
			// merge drops them (see Shards.Merge).
			if now-o.last >= timeout && (!e.part || k == KindHost) {
				e.drop(o)
				continue
			}
			o.tick(e, prev)
			if o.uniq != nil && newWin != oldWin {
				o.uniq.roll(e.window, newWin-oldWin > 1)
			}
		}
	}
	if !e.part {
		e.publish()
	}
	e.flush()
}

// timeout is how long an object of kind k lives without traffic (Unix
// ns): IdleTimeout, or ExporterTimeout for exporters and interfaces.
func (e *Engine) timeout(k Kind) int64 {
	if k == KindInterface || k == kindExporter {
		return int64(e.cfg.ExporterTimeout)
	}
	return int64(e.cfg.IdleTimeout)
}

// drop forgets o.
func (e *Engine) drop(o *Object) {
	k := o.key.Kind
	list := e.live[k]
	last := list[len(list)-1]
	list[o.idx], last.idx = last, o.idx
	list[len(list)-1] = nil
	e.live[k] = list[:len(list)-1]

	switch k {
	case KindGroup:
		o.group.obj = nil
		if !e.part { // a shard's part: the merge keeps the totals
			e.expire(o)
		}
	case KindGroupPort:
		e.ports.del(groupPortKey(o.key.Group, o.key.Proto, o.key.Port))
	case KindHost:
		if o.key.IP.Is4() {
			e.hosts4.del(host4Key(o.key.Group, o.key.IP))
		} else {
			delete(e.hosts6, host6KeyOf(o.key.Group, o.key.IP))
		}
	case KindInterface:
		delete(o.exp.ifaces, o.key.IfIndex)
	case KindInterfacePort:
		o.exp.ports.del(ifPortKey(o.key.IfIndex, o.key.Proto, o.key.Port))
	case kindExporter:
		delete(e.exporters, o.key.Exporter)
		if e.lastExp == o.exp {
			e.lastExp = nil
		}
	}
}

// expire adds the totals of o, a TGRP object being dropped, to those of
// its traffic group's earlier objects.
func (e *Engine) expire(o *Object) {
	m := maps.Clone(e.expired)
	if m == nil {
		m = map[uint32]Totals{}
	}
	m[o.key.Group] = m[o.key.Group].plus(o.totals())
	e.expired = m
}

// fold hands the packets, bytes and connections of o, a port object of a
// shard's engine that the merge drops, to the traffic group or interface
// it is part of (whose own objects hold only what their ports do not, see
// countGroup), so that the merge's sums keep them.
func (e *Engine) fold(o *Object) {
	var p *Object
	switch o.key.Kind {
	case KindGroupPort:
		p = o.group.obj
	case KindInterfacePort:
		p = o.iface
	}
	if p == nil {
		return // not a port object, or its interface was refused
	}
	p.addCounts(o)
	for s := 0; s < len(o.ring); s += slotLen {
		for c := range numFlow {
			p.ring[s+int(c)] += o.ring[s+int(c)]
		}
	}
}

// object returns the object of key k, nil when none.
func (e *Engine) object(k Key) *Object {
	switch k.Kind {
	case KindGroup:
		if ref := e.groups[k.Group]; ref != nil {
			return ref.obj
		}
		return nil
	case KindGroupPort:
		return e.ports.get(groupPortKey(k.Group, k.Proto, k.Port))
	}
	x := e.exporters[k.Exporter]
	if x == nil {
		return nil
	}
	switch k.Kind {
	case KindInterface:
		return x.ifaces[k.IfIndex]
	case KindInterfacePort:
		return x.ports.get(ifPortKey(k.IfIndex, k.Proto, k.Port))
	case kindExporter:
		return x.obj
	}
	return nil
}

// Each calls fn for every live object of kind k, in no particular order,
// with the state of the last Tick. Call it from the writer goroutine
// (typically right after Tick); fn must not call the Engine's other
// methods nor keep o after it returns.
func (e *Engine) Each(k Kind, fn func(o *Object)) {
	if k >= kindExporter {
		return
	}
	for _, o := range e.live[k] {
		fn(o)
	}
}
