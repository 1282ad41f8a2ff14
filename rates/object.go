package rates

import (
	"math"
	"time"
)

// Object is the live state of one object: per-second buckets of the last
// Window seconds, totals since it became active, and peaks. Objects belong
// to the engine's writer goroutine: read them only inside Each.
type Object struct {
	e   *Engine
	key Key
	idx int // position in e.live[key.Kind]

	// first and last are the first and last seen times (Unix ns);
	// firstSec is the first second of the earliest record's span, from
	// which the average is taken.
	first, last, firstSec int64
	// sec is the open second the ring is aligned to; seq is the last record
	// that counted an update.
	sec int64
	seq uint64

	ring  []uint64 // ringLen seconds × numFlow counters, second-major
	win   [numFlow]uint64
	total [numFlow]uint64
	peak  [numFlow]float64

	group *groupRef      // the TGRP kinds: the traffic group
	exp   *exporterState // interface kinds: their exporter; exporters: their own
	uniq  *uniq          // hosts that sent a flow
	ifc   *ifCounters    // interfaces with sFlow counter samples
}

// seen widens o's first and last seen times.
func (o *Object) seen(startNs, firstSec, endNs int64) {
	o.first = min(o.first, startNs)
	o.firstSec = min(o.firstSec, firstSec)
	o.last = max(o.last, endNs)
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

// activeSecs is the number of closed seconds since the object became
// active, at least 1.
func (o *Object) activeSecs() float64 {
	return float64(max(1, o.e.nowSec-o.firstSec))
}

// avg returns the per-second average of c since the object became active.
func (o *Object) avg(c Counter) float64 {
	switch {
	case int(c) < numFlow:
		return float64(o.total[c]) / o.activeSecs()
	case c < numCounters && o.uniq != nil:
		return float64(o.uniq.sum[c-UniqLocalEndpoint]) / o.activeSecs()
	}
	return 0
}

// peakOf returns the highest Cur(c) seen at a Tick.
func (o *Object) peakOf(c Counter) float64 {
	switch {
	case int(c) < numFlow:
		return o.peak[c]
	case c < numCounters && o.uniq != nil:
		return o.uniq.peak[c-UniqLocalEndpoint]
	}
	return 0
}

// tick aligns o to the engine's open second and raises its peaks.
func (o *Object) tick(e *Engine) {
	o.align(e)
	for c := range numFlow {
		o.peak[c] = max(o.peak[c], o.Cur(Counter(c)))
	}
}

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

func ratesOf(o *Object, f func(*Object, Counter) float64) Rates {
	return Rates{
		PacketsIn:         f(o, PacketsIn),
		PacketsOut:        f(o, PacketsOut),
		BytesIn:           f(o, BytesIn),
		BytesOut:          f(o, BytesOut),
		NewConn:           f(o, NewConn),
		NewConnOut:        f(o, NewConnOut),
		Updates:           f(o, Updates),
		UniqLocalEndpoint: f(o, UniqLocalEndpoint),
		UniqRemoteCIDR:    f(o, UniqRemoteCIDR),
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
	// FirstSeen and LastSeen bound the traffic seen (after the late shift
	// and future clamp).
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
	s := Stats{
		Key:       o.key,
		FirstSeen: time.Unix(0, o.first).UTC(),
		LastSeen:  time.Unix(0, o.last).UTC(),
		Cur:       ratesOf(o, (*Object).Cur),
		Avg:       ratesOf(o, (*Object).avg),
		Peak:      ratesOf(o, (*Object).peakOf),
		Totals: Totals{
			PacketsIn:  o.total[PacketsIn],
			PacketsOut: o.total[PacketsOut],
			BytesIn:    o.total[BytesIn],
			BytesOut:   o.total[BytesOut],
			NewConn:    o.total[NewConn],
			NewConnOut: o.total[NewConnOut],
			Updates:    o.total[Updates],
		},
	}
	if o.group != nil {
		s.Name, s.CID = o.group.name, o.group.cid
	} else if o.e.model != nil && (o.key.Kind == KindInterface || o.key.Kind == KindInterfacePort) {
		s.Name = o.e.model.InterfaceName(o.key.Exporter, o.key.IfIndex)
	}
	return s
}

// newObject returns a new object of key's kind, or nil when the kind's cap
// is reached (counted as refused).
func (e *Engine) newObject(key Key) *Object {
	k := key.Kind
	if len(e.live[k]) >= e.max[k] {
		e.pending.refused[k]++
		return nil
	}
	o := &Object{
		e:        e,
		key:      key,
		idx:      len(e.live[k]),
		first:    math.MaxInt64,
		last:     math.MinInt64,
		firstSec: math.MaxInt64,
		sec:      e.nowSec,
		ring:     make([]uint64, int(e.ringLen)*numFlow),
	}
	e.live[k] = append(e.live[k], o)
	return o
}
