package rates

import (
	"math"
	"time"
)

// Object is the live state of one object: per-second buckets of the last
// Window seconds, totals since it became active, and peaks. Objects belong
// to the engine's writer goroutine: read them only inside Each.
//
// The fields a one-second record touches (last and open) fill the first
// 64 bytes, and the struct's size is a multiple of 64, so that the
// allocator's alignment puts them in one cache line: with many objects,
// Add is bound by cache misses. A longer record counting "in" touches the
// next two lines (ring to the "in" totals) and a few lines of the ring.
type Object struct {
	// last is the last seen time (Unix ns).
	last int64
	// open holds the counts of the open second; the Tick that closes it
	// moves them to the ring, the window sums and the totals.
	open [numFlow]uint64

	// ring holds the engine's open second s and the Window seconds
	// before it as differences, ringLen slots of numFlow counters
	// (slotLen apart): the slot of s-Window holds that second's counts,
	// every later slot the change from the second before (wrapping
	// around), leaving out open, so that they add up to zero at s. A
	// record spread over many seconds then costs a few writes per object,
	// not one per second.
	ring []uint64
	// firstSec is the first second of the earliest record's span, from
	// which the average is taken.
	firstSec int64
	win      [numFlow]uint64 // sums of the closed seconds in the window
	total    [numFlow]uint64 // exact once open is added
	peak     [numFlow]uint64 // the highest window sums seen at a Tick

	e     *Engine
	key   Key
	idx   int            // position in e.live[key.Kind]
	group *groupRef      // the TGRP kinds: the traffic group
	exp   *exporterState // interface kinds: their exporter; exporters: their own
	uniq  *uniq          // hosts that sent a flow
	ifc   *ifCounters    // interfaces with sFlow counter samples
	// iface is an interface port's interface (nil when refused), so
	// that a record finds both with one look-up.
	iface *Object
}

// Key returns the object's identity.
func (o *Object) Key() Key { return o.key }

// Cur returns the current per-second rate of c: for the flow counters, the
// sum of the last Window closed seconds divided by Window; for the unique
// counts, the estimate of the last closed tumbling window divided by Window.
func (o *Object) Cur(c Counter) float64 {
	switch {
	case int(c) < numFlow:
		return float64(o.win[c]) / float64(o.e.window)
	case c < numCounters && o.uniq != nil:
		return o.uniq.cur[c-UniqLocalEndpoint]
	}
	return 0
}

// values returns the current, average and peak per-second rates of every
// counter. The average is taken over the closed seconds since the object
// became active but over at least one window, the span the current rate
// and the peak are taken over, so that a short burst is not averaged over
// a second or two; and the peak is never below the average (with traffic
// in a few seconds only, the highest window can fall a little below the
// mean over a span that is not a whole number of windows).
func (o *Object) values() (cur, avg, peak [numCounters]float64) {
	w := float64(o.e.window)
	active := max(w, float64(o.e.nowSec-o.firstSec))
	for c := range numFlow {
		cur[c] = float64(o.win[c]) / w
		avg[c] = float64(o.totalOf(Counter(c))) / active
		peak[c] = max(float64(o.peak[c])/w, avg[c])
	}
	if u := o.uniq; u != nil {
		for i := range u.sk {
			cur[numFlow+i] = u.cur[i]
			avg[numFlow+i] = float64(u.sum[i]) / active
			peak[numFlow+i] = max(u.peak[i], avg[numFlow+i])
		}
	}
	return cur, avg, peak
}

// tick closes o's seconds from prev, the engine's open second before the
// Tick, up to its new one, and raises o's peaks.
func (o *Object) tick(e *Engine, prev int64) {
	// Every count sits in a second up to that of last. If those seconds
	// had left the window at the last Tick, the ring, the window and open
	// are all zero and nothing can change: the common case of an idle
	// object costs no more than this.
	if floorDiv(o.last, nsPerSec) < prev-e.window {
		return
	}
	o.align(e, prev)
	o.raisePeaks()
}

// raisePeaks raises o's peaks to its window sums.
func (o *Object) raisePeaks() {
	for c, n := range o.win {
		o.peak[c] = max(o.peak[c], n)
	}
}

// totalOf returns the exact total of flow counter c.
func (o *Object) totalOf(c Counter) uint64 { return o.total[c] + o.open[c] }

// Rates holds one per-second value per counter. The unique counts are
// zero except for hosts.
type Rates struct {
	PacketsIn         float64 `json:"packets_in"`
	PacketsOut        float64 `json:"packets_out"`
	BytesIn           float64 `json:"bytes_in"`
	BytesOut          float64 `json:"bytes_out"`
	NewConn           float64 `json:"new_conn"`
	NewConnOut        float64 `json:"new_conn_out"`
	Updates           float64 `json:"updates"`
	UniqLocalEndpoint float64 `json:"uniq_local_endpoint"`
	UniqRemoteCIDR    float64 `json:"uniq_remote_cidr"`
}

func ratesOf(v *[numCounters]float64) Rates {
	return Rates{
		PacketsIn:         v[PacketsIn],
		PacketsOut:        v[PacketsOut],
		BytesIn:           v[BytesIn],
		BytesOut:          v[BytesOut],
		NewConn:           v[NewConn],
		NewConnOut:        v[NewConnOut],
		Updates:           v[Updates],
		UniqLocalEndpoint: v[UniqLocalEndpoint],
		UniqRemoteCIDR:    v[UniqRemoteCIDR],
	}
}

// Totals are exact sums since the object became active.
type Totals struct {
	PacketsIn  uint64 `json:"packets_in"`
	PacketsOut uint64 `json:"packets_out"`
	BytesIn    uint64 `json:"bytes_in"`
	BytesOut   uint64 `json:"bytes_out"`
	NewConn    uint64 `json:"new_conn"`
	NewConnOut uint64 `json:"new_conn_out"`
	Updates    uint64 `json:"updates"`
}

// plus returns the sums of t's and u's counters.
func (t Totals) plus(u Totals) Totals {
	return Totals{
		PacketsIn:  t.PacketsIn + u.PacketsIn,
		PacketsOut: t.PacketsOut + u.PacketsOut,
		BytesIn:    t.BytesIn + u.BytesIn,
		BytesOut:   t.BytesOut + u.BytesOut,
		NewConn:    t.NewConn + u.NewConn,
		NewConnOut: t.NewConnOut + u.NewConnOut,
		Updates:    t.Updates + u.Updates,
	}
}

// totals returns o's exact totals.
func (o *Object) totals() Totals {
	return Totals{
		PacketsIn:  o.totalOf(PacketsIn),
		PacketsOut: o.totalOf(PacketsOut),
		BytesIn:    o.totalOf(BytesIn),
		BytesOut:   o.totalOf(BytesOut),
		NewConn:    o.totalOf(NewConn),
		NewConnOut: o.totalOf(NewConnOut),
		Updates:    o.totalOf(Updates),
	}
}

// Stats is an immutable copy of an object's state.
type Stats struct {
	// Key identifies the object.
	Key Key `json:"key"`
	// Name is the traffic group's name (TGRP_NAME) for the TGRP kinds and
	// the configured interface name for the interface kinds; "" when none.
	Name string `json:"name,omitempty"`
	// CID is the traffic group's partition; always 0 for the interface
	// kinds, which belong to no partition.
	CID uint32 `json:"cid"`
	// FirstSeen (to the second) and LastSeen bound the traffic seen, after
	// the late shift and future clamp.
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
	// Cur, Avg and Peak are per-second rates: current (last window),
	// average since FirstSeen, and the highest current seen at a tick.
	Cur  Rates `json:"cur"`
	Avg  Rates `json:"avg"`
	Peak Rates `json:"peak"`
	// Totals are exact sums since FirstSeen.
	Totals Totals `json:"totals"`
}

// Stats returns a copy of the object's state as of the last Tick (plus
// records added since to the totals).
func (o *Object) Stats() Stats {
	var s Stats
	o.fillStats(&s)
	return s
}

// fillStats sets the fields of s, a zero Stats, from o: the snapshot
// fills its slices in place rather than copying each Stats twice.
func (o *Object) fillStats(s *Stats) {
	cur, avg, peak := o.values()
	s.Key = o.key
	s.FirstSeen = time.Unix(o.firstSec, 0).UTC()
	s.LastSeen = time.Unix(0, o.last).UTC()
	s.Cur, s.Avg, s.Peak = ratesOf(&cur), ratesOf(&avg), ratesOf(&peak)
	s.Totals = o.totals()
	if o.group != nil {
		s.Name, s.CID = o.group.name, o.group.cid
	} else if o.e.model != nil && (o.key.Kind == KindInterface || o.key.Kind == KindInterfacePort) {
		s.Name = o.e.model.InterfaceName(o.key.Exporter, o.key.IfIndex)
	}
}

// newRing returns an object's per-second ring; none for the merge's
// objects, which are sums.
func (e *Engine) newRing() []uint64 {
	if e.merging {
		return nil
	}
	return make([]uint64, int(e.ringLen)*slotLen)
}

// newObject returns a new object of key's kind, of traffic group group or
// exporter exp, or nil when the kind's cap is reached (counted as refused).
func (e *Engine) newObject(key Key, group *groupRef, exp *exporterState) *Object {
	k := key.Kind
	if len(e.live[k]) >= e.max[k] {
		e.pending.refused[k]++
		return nil
	}
	o := &Object{
		e:        e,
		key:      key,
		idx:      len(e.live[k]),
		last:     math.MinInt64,
		firstSec: e.nowSec,
		ring:     e.newRing(),
		group:    group,
		exp:      exp,
	}
	e.live[k] = append(e.live[k], o)
	return o
}
