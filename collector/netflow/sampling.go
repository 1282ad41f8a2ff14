package netflow

import (
	"math"
	"math/bits"

	"github.com/flowsentry/flowsentry/flow"
)

// samplingFields are the sampling parameters one record (options or data)
// carries; zero means absent.
type samplingFields struct {
	interval       uint64 // samplingInterval (34), NetFlow v9 SAMPLING_INTERVAL
	random         uint64 // samplerRandomInterval (50)
	packetInterval uint64 // samplingPacketInterval (305)
	packetSpace    uint64 // samplingPacketSpace (306)
	spaceSet       bool
	size           uint64 // samplingSize (309)
	population     uint64 // samplingPopulation (310)
}

// rate returns the 1-in-N rate the parameters describe, or 0 when they
// describe none:
//   - random n-out-of-N (PSAMP): samplingPopulation / samplingSize;
//   - systematic count-based (PSAMP): (interval + space) / interval, where
//     interval packets are taken and space packets skipped in turn;
//   - samplingPacketInterval alone, as several exporters send it: the rate;
//   - samplingInterval, else samplerRandomInterval: the rate.
func (s *samplingFields) rate() uint32 {
	var r uint64
	switch {
	case s.population > 0 && s.size > 0:
		r = s.population / s.size
	case s.packetInterval > 0 && s.spaceSet:
		r = (s.packetInterval + s.packetSpace) / s.packetInterval
	case s.packetInterval > 0:
		r = s.packetInterval
	case s.interval > 0:
		r = s.interval
	default:
		r = s.random
	}
	return uint32(min(r, math.MaxUint32))
}

// applyOptions records what an options data record says: a sampling rate,
// for its sampler when it names one, else for the whole exporter /
// observation domain; and the exporter's boot time. The caller holds the
// Templates write lock.
func (dm *domain) applyOptions(l *layout, rec []byte) {
	sf := l.sampling(rec)
	if rate := sf.rate(); rate > 0 {
		if l.has(sSamplerID) {
			if dm.samplers == nil {
				dm.samplers = make(map[uint64]uint32)
			}
			dm.samplers[l.num(rec, sSamplerID)] = rate
		} else {
			dm.rate = rate
		}
	}
	if l.has(sSysInit) {
		dm.sysInit, dm.sysInitSet = l.num(rec, sSysInit), true
	}
}

// recordRate returns the rate that applies to a data record: the rate the
// record carries, else the rate of the sampler it names, else the
// exporter / observation domain rate, else 1. The caller holds the
// Templates read lock; lookups of one sampler are cached for the current
// data set.
func (d *Decoder) recordRate(t *template, l *layout, rec []byte, dm *domain) uint32 {
	if t.hasRate {
		sf := l.sampling(rec)
		if r := sf.rate(); r > 0 {
			return r
		}
	}
	if l.has(sSamplerID) {
		if id := l.num(rec, sSamplerID); !d.samplerOK || d.sampler != id {
			d.sampler, d.samplerOK, d.samplerHit = id, true, dm.samplers[id]
		}
		if d.samplerHit > 0 {
			return d.samplerHit
		}
	}
	if dm.rate > 0 {
		return dm.rate
	}
	return 1
}

// finish applies what every decoder does to a record once its fields are
// read: the ICMP type and code from the destination port when no ICMP
// field gave them (the NetFlow v5 convention, type<<8 | code, that many
// v9/IPFIX exporters keep), no ports on ICMP flows, and the sampling rate.
func finish(r *flow.Record, rate uint32) {
	if r.Proto == flow.ProtoICMP || r.Proto == flow.ProtoICMPv6 {
		if r.ICMPType == 0 && r.ICMPCode == 0 && r.SrcPort == 0 {
			r.ICMPType, r.ICMPCode = uint8(r.DstPort>>8), uint8(r.DstPort)
		}
		r.SrcPort, r.DstPort = 0, 0
	}
	r.SamplingRate = rate
	r.Packets = scale(r.Packets, rate)
	r.Bytes = scale(r.Bytes, rate)
}

// scale multiplies a count by the sampling rate, saturating instead of
// wrapping on absurd counts.
func scale(n uint64, rate uint32) uint64 {
	hi, lo := bits.Mul64(n, uint64(rate))
	if hi != 0 {
		return math.MaxUint64
	}
	return lo
}
