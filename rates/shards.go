package rates

import (
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flowsentry/flowsentry/config/check"
	"github.com/flowsentry/flowsentry/model"
)

// Shards is the rate engine split over shard engines, each fed by its own
// goroutine with the records (or parts of records) it owns, and merged at
// every tick into one view.
//
// A host (TGRP+IP) is counted whole by the one shard that owns its
// address, so its objects are never merged: Each and Snapshot read them
// from the shards. Traffic groups, their ports, exporters and interfaces
// are counted in part by every shard and summed by Merge into objects of a
// merging engine. The sum is exact: window sums, totals and the open
// second add up, the first second is the earliest and the last seen the
// latest, and the peak is raised from the summed window at each Merge as
// a single engine raises it at each Tick — so a TGRP policy sees the
// whole group, with the same numbers whatever the number of shards.
//
// A shard writes a record on the port objects only (TGRP+PROTO+PORT,
// EXPORTER_ADDR+IFINDEX+PROTO+PORT), its packets, bytes, connections and
// update, unless the cap refused the port object: Merge adds each port to
// its traffic group or interface as well. The traffic group or interface
// takes only a correction of its updates when a record updates two of
// its ports (its two sides, or the other side in another shard), as one
// engine counts one update an object a record (see touchPart). So a
// record costs nothing on the objects every record touches.
//
// A merged object is dropped when it has been idle for its timeout in
// every shard, and each shard's part with it (a port's handing its counts
// to its shard's traffic group or interface): a shard never drops its
// part alone, which would take it out of the sum while another shard
// still counts. The totals of dropped traffic groups stay in GroupTotals.
//
// Building a snapshot copies every object, so Merge builds one only when a
// reader asked since the last: an API nobody reads costs nothing per
// tick, and a reader gets a snapshot at most one tick old.
type Shards struct {
	shards []*Engine
	merged *Engine
	snap   atomic.Pointer[Snapshot]
	// lastMerge is the time of the last Merge; wanted says a reader
	// waits for a snapshot of it; built is closed, and replaced, when one
	// is published.
	lastMerge atomic.Int64
	wanted    atomic.Bool
	mu        sync.Mutex
	built     chan struct{}
}

// snapshotWait bounds how long Snapshot waits for the next Merge (a
// stopped pipeline merges no more).
const snapshotWait = 3 * time.Second

// mergedKinds are the kinds Merge sums; hosts stay in their shard.
var mergedKinds = [...]Kind{KindGroup, KindGroupPort, KindInterface, KindInterfacePort, kindExporter}

// expiryOrder is the order Merge drops idle objects in: ports before the
// traffic group or interface they are part of, interfaces before their
// exporter.
var expiryOrder = [...]Kind{KindGroupPort, KindGroup, KindInterfacePort, KindInterface, kindExporter}

// NewShards returns n shard engines and their merge. The host cap
// (MaxHosts) is shared out between the shards; the other caps apply to
// each shard and to the merge. Metrics are registered once, with reg.
func NewShards(cfg Config, n int, reg prometheus.Registerer) (*Shards, error) {
	if err := cfg.Validate(); err != nil {
		return nil, check.Prefix("rates", err)
	}
	if n < 1 {
		n = 1
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	s := &Shards{merged: newEngine(cfg, m), built: make(chan struct{})}
	s.merged.merging = true
	s.merged.publish()
	part := cfg
	part.MaxHosts = (cfg.MaxHosts + n - 1) / n
	for range n {
		e := newEngine(part, m)
		e.part = true
		s.shards = append(s.shards, e)
	}
	s.snap.Store(s.merged.Snapshot())
	return s, nil
}

// Shard returns shard i's engine: call its methods from the shard's
// goroutine only.
func (s *Shards) Shard(i int) *Engine { return s.shards[i] }

// Len returns the number of shards.
func (s *Shards) Len() int { return len(s.shards) }

// SetModel hands the merge a new model (names and partitions of traffic
// groups, interface names).
func (s *Shards) SetModel(m *model.Model) { s.merged.SetModel(m) }

// Merge sums the shards' objects at now, after every shard's Tick(now),
// while no shard runs; it publishes the snapshot and updates the metrics.
func (s *Shards) Merge(now int64) {
	d := s.merged
	d.now = max(now, d.now)
	d.nowSec = floorDiv(d.now, nsPerSec)
	for _, k := range mergedKinds {
		for _, mo := range d.live[k] {
			mo.win, mo.total, mo.open = [numFlow]uint64{}, [numFlow]uint64{}, [numFlow]uint64{}
			mo.firstSec, mo.last, mo.ifc = math.MaxInt64, math.MinInt64, nil
		}
	}
	for _, sh := range s.shards {
		for _, k := range mergedKinds {
			for _, o := range sh.live[k] {
				if mo := d.mergedObject(o.key, o.group); mo != nil {
					mo.add(o)
				}
				if pk, ok := o.key.parent(); ok {
					if p := d.mergedObject(pk, o.group); p != nil {
						p.addCounts(o)
					}
				}
			}
		}
	}
	for _, k := range expiryOrder {
		list := d.live[k]
		for i := len(list) - 1; i >= 0; i-- {
			mo := list[i]
			switch {
			case mo.firstSec == math.MaxInt64: // no shard has it any more
				d.drop(mo)
			case d.now-mo.last >= d.timeout(k):
				s.dropIdle(mo)
			default:
				mo.raisePeaks()
			}
		}
	}
	s.lastMerge.Store(d.now)
	if s.wanted.Swap(false) {
		s.Publish()
	}
	d.flush()
	d.metrics.objects.WithLabelValues(kindLabels[KindHost]).Set(float64(s.hosts()))
}

// dropIdle drops merged object mo, idle in every shard, and each shard's
// part of it; a port's part first hands its counts to its shard's traffic
// group or interface. A shard drops its parts of the merged kinds only so:
// one idle in its shard while another shard counts keeps its totals, first
// seen and average in the sum, as one engine would.
func (s *Shards) dropIdle(mo *Object) {
	for _, sh := range s.shards {
		if o := sh.object(mo.key); o != nil {
			sh.fold(o)
			sh.drop(o)
		}
	}
	s.merged.drop(mo)
}

// hosts counts the shards' hosts.
func (s *Shards) hosts() int {
	n := 0
	for _, sh := range s.shards {
		n += len(sh.live[KindHost])
	}
	return n
}

// Publish builds and publishes the snapshot of the last Merge. Merge calls
// it when a reader asked; replay, which drives Merge itself, calls it
// before reading its totals. Call it where Merge is called, while no shard
// runs.
func (s *Shards) Publish() {
	d := s.merged
	d.publish()
	snap := d.Snapshot()
	snap.Hosts = make([]Stats, 0, s.hosts())
	for _, sh := range s.shards {
		snap.Hosts = append(snap.Hosts, statsOf(sh.live[KindHost])...)
	}
	s.snap.Store(snap)
	s.mu.Lock()
	close(s.built)
	s.built = make(chan struct{})
	s.mu.Unlock()
}

// Snapshot returns the snapshot of the last Merge: when the last one
// published is older, it asks the next Merge for one and waits for it (at
// most one tick, or snapshotWait when the pipeline stopped). It is safe
// for concurrent use.
func (s *Shards) Snapshot() *Snapshot {
	snap := s.snap.Load()
	if snap.Time.UnixNano() >= s.lastMerge.Load() {
		return snap
	}
	s.mu.Lock()
	built := s.built
	s.mu.Unlock()
	s.wanted.Store(true)
	select {
	case <-built:
	case <-time.After(snapshotWait):
	}
	return s.snap.Load()
}

// Each calls fn for every object of kind k as of the last Merge: merged
// objects, and the hosts of every shard. Call it where Merge is called,
// while no shard runs.
func (s *Shards) Each(k Kind, fn func(o *Object)) {
	if k != KindHost {
		s.merged.Each(k, fn)
		return
	}
	for _, sh := range s.shards {
		sh.Each(k, fn)
	}
}

// mergedObject returns the merged object of key, creating it, for an
// object of a shard whose traffic group (for the TGRP kinds) is g; nil
// when a cap refuses it.
func (d *Engine) mergedObject(key Key, g *groupRef) *Object {
	switch key.Kind {
	case KindGroup:
		return d.groupObject(d.mergedGroup(g))
	case KindGroupPort:
		k := groupPortKey(key.Group, key.Proto, key.Port)
		if mo := d.ports.get(k); mo != nil {
			return mo
		}
		return d.ports.add(k, d.newObject(key, d.mergedGroup(g), nil))
	}
	x := d.exporter(key.Exporter)
	if x == nil {
		return nil
	}
	switch key.Kind {
	case KindInterface:
		return d.iface(x, key.IfIndex)
	case KindInterfacePort:
		k := ifPortKey(key.IfIndex, key.Proto, key.Port)
		if mo := x.ports.get(k); mo != nil {
			return mo
		}
		mo := x.ports.add(k, d.newObject(key, nil, x))
		if mo != nil {
			mo.iface = x.ifaces[key.IfIndex]
		}
		return mo
	}
	return x.obj
}

// parent returns the key of the traffic group or interface a port
// object's key k is part of, and false for the other kinds: a shard
// counts a record's packets, bytes and connections on the port object
// only (see countGroup), so the merge adds them to the port's merged
// object and to its parent's.
func (k Key) parent() (Key, bool) {
	switch k.Kind {
	case KindGroupPort:
		return Key{Kind: KindGroup, Group: k.Group}, true
	case KindInterfacePort:
		return Key{Kind: KindInterface, Exporter: k.Exporter, IfIndex: k.IfIndex}, true
	}
	return Key{}, false
}

// mergedGroup returns the merge's traffic group of a shard's, creating it
// (a group the merge's model no longer holds keeps the shard's name).
func (d *Engine) mergedGroup(g *groupRef) *groupRef {
	ref := d.groups[g.id]
	if ref == nil {
		ref = &groupRef{id: g.id, name: g.name, cid: g.cid}
		d.groups[g.id] = ref
	}
	return ref
}

// add sums shard object o into merged object mo.
func (mo *Object) add(o *Object) {
	mo.addCounts(o)
	if o.ifc != nil {
		mo.ifc = o.ifc
	}
}

// addCounts adds the window sums, totals and open second of o's flow
// counters (packets, bytes, connections, updates) to p, and widens p's
// first and last seen to o's.
func (p *Object) addCounts(o *Object) {
	for c := range numFlow {
		p.win[c] += o.win[c]
		p.total[c] += o.total[c]
		p.open[c] += o.open[c]
	}
	p.firstSec = min(p.firstSec, o.firstSec)
	p.last = max(p.last, o.last)
}
