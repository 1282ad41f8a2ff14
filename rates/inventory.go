package rates

import (
	"net/netip"

	"github.com/flowsentry/flowsentry/flow"
)

// exporterState is an exporter of the inventory: its object (which counts
// its records) and its interface and interface-port objects.
type exporterState struct {
	obj    *Object
	ifaces map[uint32]*Object
	ports  *index // ifIndex<<24 | proto<<16 | port
}

// exporter returns the state of addr, creating it; nil when the exporter
// cap refuses it. Consecutive records mostly come from one exporter, so
// the last one is cached.
func (e *Engine) exporter(addr netip.Addr) *exporterState {
	if x := e.lastExp; x != nil && x.obj.key.Exporter == addr {
		return x
	}
	x := e.exporters[addr]
	if x == nil {
		x = &exporterState{ifaces: map[uint32]*Object{}, ports: newIndex()}
		if x.obj = e.newObject(Key{Kind: kindExporter, Exporter: addr}, nil, x); x.obj == nil {
			return nil
		}
		e.exporters[addr] = x
	}
	e.lastExp = x
	return x
}

// iface returns the interface object of x, creating it; nil when refused.
func (e *Engine) iface(x *exporterState, ifIndex uint32) *Object {
	return lookup(e, x.ifaces, ifIndex, Key{Kind: KindInterface, Exporter: x.obj.key.Exporter, IfIndex: ifIndex}, nil, x)
}

func ifPortKey(ifIndex uint32, proto uint8, port uint16) uint64 {
	return uint64(ifIndex)<<24 | uint64(proto)<<16 | uint64(port)
}

// ifCounters is the sFlow counter state of an interface: the last sample
// and the rates derived from the last two.
type ifCounters struct {
	last     flow.IfCounters
	rates    IfRates
	hasRates bool
}

// AddCounters updates the inventory with an sFlow counter sample: the
// exporter and interface are created (within their caps) and marked seen,
// and the counters and their per-second deltas replace the previous ones.
// A sample not newer than the last is discarded; one whose cumulative
// counters went backwards (agent restart, 32-bit wrap) becomes the new
// baseline without rates. Call it from the writer goroutine only.
func (e *Engine) AddCounters(c *flow.IfCounters) {
	if !c.Exporter.IsValid() {
		e.pending.discarded[discardNoExporter]++
		return
	}
	x := e.exporter(c.Exporter.Unmap())
	if x == nil {
		return
	}
	o := e.iface(x, c.IfIndex)
	if o == nil {
		return
	}
	e.pending.samples++
	t := min(c.Time, e.now)
	x.obj.last = max(x.obj.last, t)
	o.last = max(o.last, t)

	ic := o.ifc
	if ic == nil {
		o.ifc = &ifCounters{last: *c}
		return
	}
	l := &ic.last
	dt := c.Time - l.Time
	if dt <= 0 {
		e.pending.discarded[discardOutOfOrder]++
		return
	}
	if c.InOctets < l.InOctets || c.OutOctets < l.OutOctets ||
		c.InPackets < l.InPackets || c.OutPackets < l.OutPackets ||
		c.InErrors < l.InErrors || c.OutErrors < l.OutErrors ||
		c.InDiscards < l.InDiscards || c.OutDiscards < l.OutDiscards {
		e.pending.discarded[discardReset]++
		ic.last, ic.hasRates = *c, false
		return
	}
	secs := float64(dt) / float64(nsPerSec)
	rate := func(now, before uint64) float64 { return float64(now-before) / secs }
	ic.rates = IfRates{
		Interval:    secs,
		InOctets:    rate(c.InOctets, l.InOctets),
		OutOctets:   rate(c.OutOctets, l.OutOctets),
		InPackets:   rate(c.InPackets, l.InPackets),
		OutPackets:  rate(c.OutPackets, l.OutPackets),
		InErrors:    rate(uint64(c.InErrors), uint64(l.InErrors)),
		OutErrors:   rate(uint64(c.OutErrors), uint64(l.OutErrors)),
		InDiscards:  rate(uint64(c.InDiscards), uint64(l.InDiscards)),
		OutDiscards: rate(uint64(c.OutDiscards), uint64(l.OutDiscards)),
	}
	if c.Speed > 0 {
		ic.rates.InUtilization = ic.rates.InOctets * 8 / float64(c.Speed)
		ic.rates.OutUtilization = ic.rates.OutOctets * 8 / float64(c.Speed)
	}
	ic.last, ic.hasRates = *c, true
}
