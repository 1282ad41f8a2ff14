package rates

import (
	"cmp"
	"net/netip"
	"slices"
	"time"
)

// Snapshot is the state of every object as of one Tick. It is immutable
// and shared by every reader: do not modify it. Objects appear in no
// particular order.
type Snapshot struct {
	// Time is the time passed to the Tick that published it.
	Time time.Time `json:"time"`
	// WindowSeconds is the window of the current rates (Config.Window).
	WindowSeconds int `json:"window_seconds"`
	// Groups are the TGRP objects.
	Groups []Stats `json:"groups"`
	// GroupPorts are the TGRP+PROTO+PORT objects.
	GroupPorts []Stats `json:"group_ports"`
	// Hosts are the TGRP+IP objects.
	Hosts []Stats `json:"hosts"`
	// InterfacePorts are the EXPORTER_ADDR+IFINDEX+PROTO+PORT objects.
	InterfacePorts []Stats `json:"interface_ports"`
	// Exporters is the inventory; the EXPORTER_ADDR+IFINDEX objects are
	// listed under their exporter.
	Exporters []Exporter `json:"exporters"`

	// expired are the summed totals of the TGRP objects dropped as idle
	// since the engine started, by traffic group ID (shared, read-only).
	expired map[uint32]Totals
}

// GroupTotals returns the totals of traffic group id since the engine
// started: those of its live TGRP object (in Groups) plus those of every
// earlier one dropped as idle. Replay reports them, as a capture (or a run
// of captures) may hold traffic further apart than IdleTimeout.
func (s *Snapshot) GroupTotals(id uint32) Totals {
	t := s.expired[id]
	for i := range s.Groups {
		if s.Groups[i].Key.Group == id {
			t = t.plus(s.Groups[i].Totals)
		}
	}
	return t
}

// Exporter is an exporter of the inventory.
type Exporter struct {
	// Addr is the exporter's address.
	Addr netip.Addr `json:"addr"`
	// FirstSeen and LastSeen bound its records and counter samples.
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
	// Records are its flow records per second.
	Records Rate `json:"records"`
	// Interfaces are the interfaces seen in its records (InIf, OutIf) and
	// counter samples, by IfIndex.
	Interfaces []Interface `json:"interfaces"`
}

// Rate is one per-second rate: current, average, peak, and the exact total.
type Rate struct {
	Cur   float64 `json:"cur"`
	Avg   float64 `json:"avg"`
	Peak  float64 `json:"peak"`
	Total uint64  `json:"total"`
}

// Interface is an exporter interface: its EXPORTER_ADDR+IFINDEX object and
// its last sFlow counters.
type Interface struct {
	Stats
	// Counters are the last sFlow counter sample; nil when none came.
	Counters *IfStats `json:"counters,omitempty"`
}

// IfStats are the cumulative counters of an interface's last sFlow counter
// sample.
type IfStats struct {
	// Time is when the sample was received.
	Time time.Time `json:"time"`
	// Speed is the interface speed in bits per second; 0 when unknown.
	Speed       uint64 `json:"speed"`
	InOctets    uint64 `json:"in_octets"`
	OutOctets   uint64 `json:"out_octets"`
	InPackets   uint64 `json:"in_packets"`
	OutPackets  uint64 `json:"out_packets"`
	InErrors    uint32 `json:"in_errors"`
	OutErrors   uint32 `json:"out_errors"`
	InDiscards  uint32 `json:"in_discards"`
	OutDiscards uint32 `json:"out_discards"`
	// Rates are the per-second deltas between the last two samples; nil
	// until two consistent samples came.
	Rates *IfRates `json:"rates,omitempty"`
}

// IfRates are per-second deltas of an interface's counters.
type IfRates struct {
	// Interval is the time between the two samples, in seconds.
	Interval    float64 `json:"interval"`
	InOctets    float64 `json:"in_octets"`
	OutOctets   float64 `json:"out_octets"`
	InPackets   float64 `json:"in_packets"`
	OutPackets  float64 `json:"out_packets"`
	InErrors    float64 `json:"in_errors"`
	OutErrors   float64 `json:"out_errors"`
	InDiscards  float64 `json:"in_discards"`
	OutDiscards float64 `json:"out_discards"`
	// InUtilization and OutUtilization are the bit rates as a fraction of
	// Speed; 0 when the speed is unknown.
	InUtilization  float64 `json:"in_utilization"`
	OutUtilization float64 `json:"out_utilization"`
}

// Snapshot returns the snapshot published at the last Tick (an empty one
// before the first). It is safe for concurrent use.
func (e *Engine) Snapshot() *Snapshot { return e.snap.Load() }

// publish builds and publishes the snapshot of the current state.
func (e *Engine) publish() {
	s := &Snapshot{
		Time:           time.Unix(0, e.now).UTC(),
		WindowSeconds:  int(e.window),
		Groups:         statsOf(e.live[KindGroup]),
		GroupPorts:     statsOf(e.live[KindGroupPort]),
		Hosts:          statsOf(e.live[KindHost]),
		InterfacePorts: statsOf(e.live[KindInterfacePort]),
		Exporters:      make([]Exporter, 0, len(e.live[kindExporter])),
		expired:        e.expired,
	}
	for _, xo := range e.live[kindExporter] {
		cur, avg, peak := xo.values()
		x := Exporter{
			Addr:      xo.key.Exporter,
			FirstSeen: time.Unix(xo.firstSec, 0).UTC(),
			LastSeen:  time.Unix(0, xo.last).UTC(),
			Records: Rate{
				Cur:   cur[Updates],
				Avg:   avg[Updates],
				Peak:  peak[Updates],
				Total: xo.totalOf(Updates),
			},
			Interfaces: make([]Interface, 0, len(xo.exp.ifaces)),
		}
		for _, o := range xo.exp.ifaces {
			x.Interfaces = append(x.Interfaces, Interface{Counters: o.ifc.stats()})
			o.fillStats(&x.Interfaces[len(x.Interfaces)-1].Stats)
		}
		slices.SortFunc(x.Interfaces, func(a, b Interface) int { return cmp.Compare(a.Key.IfIndex, b.Key.IfIndex) })
		s.Exporters = append(s.Exporters, x)
	}
	e.snap.Store(s)
}

func statsOf(objs []*Object) []Stats {
	out := make([]Stats, len(objs))
	for i, o := range objs {
		o.fillStats(&out[i])
	}
	return out
}

// stats copies the counter state; nil when ic is.
func (ic *ifCounters) stats() *IfStats {
	if ic == nil {
		return nil
	}
	l := &ic.last
	s := &IfStats{
		Time:        time.Unix(0, l.Time).UTC(),
		Speed:       l.Speed,
		InOctets:    l.InOctets,
		OutOctets:   l.OutOctets,
		InPackets:   l.InPackets,
		OutPackets:  l.OutPackets,
		InErrors:    l.InErrors,
		OutErrors:   l.OutErrors,
		InDiscards:  l.InDiscards,
		OutDiscards: l.OutDiscards,
	}
	if ic.hasRates {
		r := ic.rates
		s.Rates = &r
	}
	return s
}
