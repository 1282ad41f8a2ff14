package netflow

import (
	"encoding/binary"
	"math"
	"net/netip"

	"github.com/flowsentry/flowsentry/flow"
)

// Information element numbers (IANA IPFIX registry; 1-127 are the NetFlow
// v9 field types) the decoders read.
const (
	ieOctetDeltaCount          = 1
	iePacketDeltaCount         = 2
	ieProtocolIdentifier       = 4
	ieTCPControlBits           = 6
	ieSourceTransportPort      = 7
	ieSourceIPv4Address        = 8
	ieIngressInterface         = 10
	ieDestinationTransportPort = 11
	ieDestinationIPv4Address   = 12
	ieEgressInterface          = 14
	ieFlowEndSysUpTime         = 21
	ieFlowStartSysUpTime       = 22
	iePostOctetDeltaCount      = 23
	iePostPacketDeltaCount     = 24
	ieSourceIPv6Address        = 27
	ieDestinationIPv6Address   = 28
	ieICMPTypeCodeIPv4         = 32
	ieSamplingInterval         = 34
	ieSamplerID                = 48
	ieSamplerRandomInterval    = 50
	ieOctetTotalCount          = 85
	iePacketTotalCount         = 86
	ieFragmentOffset           = 88
	ieICMPTypeCodeIPv6         = 139
	ieFlowStartSeconds         = 150
	ieFlowEndSeconds           = 151
	ieFlowStartMilliseconds    = 152
	ieFlowEndMilliseconds      = 153
	ieFlowStartMicroseconds    = 154
	ieFlowEndMicroseconds      = 155
	ieFlowStartNanoseconds     = 156
	ieFlowEndNanoseconds       = 157
	ieFlowStartDeltaMicros     = 158
	ieFlowEndDeltaMicros       = 159
	ieSystemInitTimeMillis     = 160
	ieICMPTypeIPv4             = 176
	ieICMPCodeIPv4             = 177
	ieICMPTypeIPv6             = 178
	ieICMPCodeIPv6             = 179
	ieFragmentFlags            = 197
	ieIngressPhysicalInterface = 252
	ieEgressPhysicalInterface  = 253
	ieSelectorID               = 302
	ieSamplingPacketInterval   = 305
	ieSamplingPacketSpace      = 306
	ieSamplingSize             = 309
	ieSamplingPopulation       = 310
)

// varLength is the field length that announces an IPFIX variable-length
// field. NetFlow v9 has none, but no v9 field can be 65535 bytes long
// either, so both versions read it the same way.
const varLength = 0xffff

// fragmentMF is the "more fragments" bit of fragmentFlags (bit 2 counting
// from the most significant bit).
const fragmentMF = 0x20

// slotID names a value a record can give; a template's layout says where
// each one sits.
type slotID uint8

const (
	sSrc4 slotID = iota
	sDst4
	sSrc6
	sDst6
	sSrcPort
	sDstPort
	sProto
	sTCPFlags
	sInIf
	sOutIf
	sBytes
	sPackets
	sICMPTypeCode
	sICMPType
	sICMPCode
	sFragFlags
	sFragOffset
	sStart
	sEnd
	sSysInit
	sSamplerID
	sInterval
	sRandom
	sPacketInterval
	sPacketSpace
	sSampleSize
	sPopulation
	numSlots
	noSlot = numSlots
)

// slot is where a value sits in a record; len is 0 when the template
// does not give it.
type slot struct {
	off, len uint16
}

// layout holds every slot of a template.
type layout [numSlots]slot

// timeEncoding says how a template gives a start or end time.
type timeEncoding uint8

const (
	timeNone    timeEncoding = iota
	timeSeconds              // flowStart/EndSeconds
	timeMillis               // flowStart/EndMilliseconds
	timeNTP                  // flowStart/EndMicro/Nanoseconds: NTP format
	timeDelta                // flowStart/EndDeltaMicroseconds before export
	timeUptime               // NetFlow v9 sysUptime ms, from the header
	timeSysUp                // IPFIX sysUpTime ms, from systemInitTimeMilliseconds
)

// field is one field of a template record as received.
type field struct {
	ie     uint16
	length uint16
	// unmapped is set for enterprise-specific IPFIX fields and NetFlow v9
	// scope fields, whose numbers are not information elements.
	unmapped bool
}

// step is one field of a template with variable-length fields, for
// locating the slots of each record: the slot it fills or noSlot, and its
// length or varLength. Consecutive fixed-length fields that fill no slot
// are merged.
type step struct {
	slot   slotID
	length uint32
}

// template is a compiled template. It is immutable once published, except
// for refreshed, which is written under the Templates write lock.
type template struct {
	layout layout
	// steps is set only for templates with variable-length fields, whose
	// slot offsets change from record to record.
	steps []step
	// minLen is the length of the shortest record: fixed lengths plus one
	// byte per variable-length field. It is at least 1; it is the length
	// of every record when steps is nil.
	minLen     int
	start, end timeEncoding
	// options marks an options template, whose records feed the sampling
	// state instead of becoming flow records.
	options bool
	// addressed is set when records carry a source and a destination
	// address of one family; records of other data templates are dropped.
	addressed bool
	// dual is set when records carry both IPv4 and IPv6 address pairs; the
	// IPv6 pair wins when it is not all zeros.
	dual bool
	// hasRate is set when records carry sampling parameters of their own.
	hasRate bool
	// raw is the template record as received, to recognise a template sent
	// again unchanged without compiling it.
	raw       []byte
	refreshed int64
	// dm and id say where the cache files the template, links its place
	// in the eviction orders; they change under the write lock.
	dm    *domain
	id    uint16
	links [2]link
}

// ieSet is a set of information element numbers below 512 (every element
// the layout reads is below 512).
type ieSet [8]uint64

func (s *ieSet) add(ie uint16) {
	if ie < 512 {
		s[ie>>6] |= 1 << (ie & 63)
	}
}

func (s *ieSet) has(ie uint16) bool {
	return ie < 512 && s[ie>>6]&(1<<(ie&63)) != 0
}

// first returns the first of ies present in s, or 0.
func (s *ieSet) first(ies ...uint16) uint16 {
	for _, ie := range ies {
		if s.has(ie) {
			return ie
		}
	}
	return 0
}

// sources are the elements compile chose where a template offers several
// for one value.
type sources struct {
	v4, v6                              bool
	bytes, packets, in, out, start, end uint16
}

// compile turns the fields of a template record into a layout. Where a
// template offers several sources for one value, one is chosen here:
// octet/packet counts from the delta counts, else the total counts, else
// the NetFlow v9 OUT_ counts; start and end times from the most precise
// absolute time, else the delta to the export time, else the sysUpTime
// offsets; interfaces from ingress/egressInterface, else the physical
// interfaces. When an element comes twice, the last one counts.
func compile(fields []field, ipfix, options bool) (*template, error) {
	var present ieSet
	for _, f := range fields {
		if !f.unmapped {
			present.add(f.ie)
		}
	}
	src := sources{
		v4:      present.has(ieSourceIPv4Address) && present.has(ieDestinationIPv4Address),
		v6:      present.has(ieSourceIPv6Address) && present.has(ieDestinationIPv6Address),
		bytes:   present.first(ieOctetDeltaCount, ieOctetTotalCount, iePostOctetDeltaCount),
		packets: present.first(iePacketDeltaCount, iePacketTotalCount, iePostPacketDeltaCount),
		in:      present.first(ieIngressInterface, ieIngressPhysicalInterface),
		out:     present.first(ieEgressInterface, ieEgressPhysicalInterface),
		start: present.first(ieFlowStartNanoseconds, ieFlowStartMicroseconds, ieFlowStartMilliseconds,
			ieFlowStartSeconds, ieFlowStartDeltaMicros, ieFlowStartSysUpTime),
		end: present.first(ieFlowEndNanoseconds, ieFlowEndMicroseconds, ieFlowEndMilliseconds,
			ieFlowEndSeconds, ieFlowEndDeltaMicros, ieFlowEndSysUpTime),
	}
	t := &template{
		options:   options,
		addressed: !options && (src.v4 || src.v6),
		dual:      !options && src.v4 && src.v6,
	}
	if !options {
		t.start, t.end = timeEncodingOf(src.start, ipfix), timeEncodingOf(src.end, ipfix)
	}
	var steps []step
	variable := false
	pos := 0
	for _, f := range fields {
		s := noSlot
		if !f.unmapped {
			s = slotOf(f.ie, ipfix, options, &src)
		}
		if f.length == varLength {
			if s != noSlot {
				return nil, errFieldLength
			}
			variable = true
			steps = append(steps, step{slot: noSlot, length: varLength})
			pos++
			continue
		}
		if s != noSlot {
			if !lengthOK(s, f.length, t.start == timeNTP, t.end == timeNTP) {
				return nil, errFieldLength
			}
			t.layout[s] = slot{off: uint16(min(pos, math.MaxUint16)), len: f.length}
			t.hasRate = t.hasRate || s == sInterval || s == sRandom || s == sPacketInterval ||
				s == sSampleSize || s == sPopulation
		}
		pos += int(f.length)
		if k := len(steps) - 1; s == noSlot && k >= 0 && steps[k].slot == noSlot && steps[k].length != varLength {
			steps[k].length += uint32(f.length)
			continue
		}
		steps = append(steps, step{slot: s, length: uint32(f.length)})
	}
	if pos == 0 {
		return nil, errZeroLength
	}
	t.minLen = pos
	if variable {
		t.steps = steps
	}
	return t, nil
}

// slotOf maps one information element to the slot it fills, given the
// sources compile chose, or noSlot.
func slotOf(ie uint16, ipfix, options bool, src *sources) slotID {
	// Options records only feed the sampling state.
	switch ie {
	case ieSamplerID, ieSelectorID:
		return sSamplerID
	case ieSamplingInterval:
		return sInterval
	case ieSamplerRandomInterval:
		return sRandom
	case ieSamplingPacketInterval:
		return sPacketInterval
	case ieSamplingPacketSpace:
		return sPacketSpace
	case ieSamplingSize:
		return sSampleSize
	case ieSamplingPopulation:
		return sPopulation
	case ieSystemInitTimeMillis:
		if ipfix {
			return sSysInit
		}
		return noSlot
	}
	if options || ie == 0 {
		// 0 is no element, and the value of the chosen sources that are
		// absent.
		return noSlot
	}
	switch ie {
	case ieSourceIPv4Address:
		if src.v4 {
			return sSrc4
		}
	case ieDestinationIPv4Address:
		if src.v4 {
			return sDst4
		}
	case ieSourceIPv6Address:
		if src.v6 {
			return sSrc6
		}
	case ieDestinationIPv6Address:
		if src.v6 {
			return sDst6
		}
	case ieSourceTransportPort:
		return sSrcPort
	case ieDestinationTransportPort:
		return sDstPort
	case ieProtocolIdentifier:
		return sProto
	case ieTCPControlBits:
		return sTCPFlags
	case ieICMPTypeCodeIPv4, ieICMPTypeCodeIPv6:
		return sICMPTypeCode
	case ieICMPTypeIPv4, ieICMPTypeIPv6:
		return sICMPType
	case ieICMPCodeIPv4, ieICMPCodeIPv6:
		return sICMPCode
	case ieFragmentFlags:
		return sFragFlags
	case ieFragmentOffset:
		return sFragOffset
	}
	switch ie {
	case src.bytes:
		return sBytes
	case src.packets:
		return sPackets
	case src.in:
		return sInIf
	case src.out:
		return sOutIf
	case src.start:
		return sStart
	case src.end:
		return sEnd
	}
	return noSlot
}

// timeEncodingOf says how element ie gives a time.
func timeEncodingOf(ie uint16, ipfix bool) timeEncoding {
	switch ie {
	case 0:
		return timeNone
	case ieFlowStartSeconds, ieFlowEndSeconds:
		return timeSeconds
	case ieFlowStartMilliseconds, ieFlowEndMilliseconds:
		return timeMillis
	case ieFlowStartMicroseconds, ieFlowEndMicroseconds, ieFlowStartNanoseconds, ieFlowEndNanoseconds:
		return timeNTP
	case ieFlowStartDeltaMicros, ieFlowEndDeltaMicros:
		return timeDelta
	}
	if ipfix {
		return timeSysUp
	}
	return timeUptime
}

// lengthOK says whether a field of length n can hold the value of slot s.
// Numbers may use reduced-size encoding (RFC 7011 section 6.2); NTP
// timestamps may not.
func lengthOK(s slotID, n uint16, startNTP, endNTP bool) bool {
	switch {
	case s == sSrc4 || s == sDst4:
		return n == 4
	case s == sSrc6 || s == sDst6:
		return n == 16
	case s == sStart && startNTP, s == sEnd && endNTP:
		return n == 8
	case s == sFragFlags:
		return n == 1
	}
	return n >= 1 && n <= 8
}

// msgContext is what the message header says about its records.
type msgContext struct {
	key      domainKey
	exportNs int64
	// uptime is the NetFlow v9 header's sysUptime in milliseconds.
	uptime uint32
	source flow.Source
}

// locate fills l with the slots of the record at the start of b, for a
// template with variable-length fields, and returns the record's length,
// or -1 when the record runs past the end of b.
func (t *template) locate(b []byte, l *layout) int {
	*l = t.layout
	pos := 0
	for _, s := range t.steps {
		n := int(s.length)
		if s.length == varLength {
			if pos >= len(b) {
				return -1
			}
			n = int(b[pos])
			pos++
			if n == 255 {
				if pos+2 > len(b) {
					return -1
				}
				n = int(binary.BigEndian.Uint16(b[pos:]))
				pos += 2
			}
		}
		if n > len(b)-pos {
			return -1
		}
		if s.slot != noSlot {
			l[s.slot].off = uint16(pos)
		}
		pos += n
	}
	return pos
}

// num reads the number in slot s of rec, 0 when the template lacks it.
func (l *layout) num(rec []byte, s slotID) uint64 {
	sl := l[s]
	return uintBE(rec[sl.off : sl.off+sl.len])
}

// has says whether the template gives slot s.
func (l *layout) has(s slotID) bool { return l[s].len != 0 }

// record fills r from rec, one record laid out as l says. dm gives the
// system init time when the record is timed in IPFIX sysUpTime and does
// not carry one.
func (t *template) record(rec []byte, l *layout, c *msgContext, dm *domain, r *flow.Record) {
	if l.has(sSrc4) {
		r.Src = netip.AddrFrom4([4]byte(rec[l[sSrc4].off:]))
		r.Dst = netip.AddrFrom4([4]byte(rec[l[sDst4].off:]))
	}
	if l.has(sSrc6) {
		src := netip.AddrFrom16([16]byte(rec[l[sSrc6].off:]))
		dst := netip.AddrFrom16([16]byte(rec[l[sDst6].off:]))
		if !t.dual || !src.IsUnspecified() || !dst.IsUnspecified() {
			r.Src, r.Dst = src, dst
		}
	}
	r.SrcPort = uint16(l.num(rec, sSrcPort))
	r.DstPort = uint16(l.num(rec, sDstPort))
	r.Proto = uint8(l.num(rec, sProto))
	r.TCPFlags = uint8(l.num(rec, sTCPFlags))
	r.InIf = uint32(l.num(rec, sInIf))
	r.OutIf = uint32(l.num(rec, sOutIf))
	r.Bytes = l.num(rec, sBytes)
	r.Packets = l.num(rec, sPackets)
	if l.has(sICMPTypeCode) {
		tc := l.num(rec, sICMPTypeCode)
		r.ICMPType, r.ICMPCode = uint8(tc>>8), uint8(tc)
	}
	if l.has(sICMPType) {
		r.ICMPType = uint8(l.num(rec, sICMPType))
	}
	if l.has(sICMPCode) {
		r.ICMPCode = uint8(l.num(rec, sICMPCode))
	}
	if l.has(sFragFlags) || l.has(sFragOffset) {
		r.Fragment = l.num(rec, sFragFlags)&fragmentMF != 0 || l.num(rec, sFragOffset) != 0
	}
	if t.start != timeNone {
		r.Start = timeAt(t.start, l.num(rec, sStart), rec, l, c, dm, r.Start)
	}
	if t.end != timeNone {
		r.End = timeAt(t.end, l.num(rec, sEnd), rec, l, c, dm, r.End)
	}
}

// timeAt converts a time value v given in encoding e. A sysUpTime offset
// with no system init time to count from keeps the time it had.
func timeAt(e timeEncoding, v uint64, rec []byte, l *layout, c *msgContext, dm *domain, had int64) int64 {
	switch e {
	case timeSeconds:
		return int64(v) * 1e9
	case timeMillis:
		return int64(v) * 1e6
	case timeNTP:
		return ntpToUnixNano(v)
	case timeDelta:
		return c.exportNs - int64(v)*1e3
	case timeUptime:
		return uptimeToUnixNano(c.exportNs, c.uptime, uint32(v))
	}
	switch {
	case l.has(sSysInit):
		return int64(l.num(rec, sSysInit)+v) * 1e6
	case dm.sysInitSet:
		return int64(dm.sysInit+v) * 1e6
	}
	return had
}

// sampling reads the sampling parameters of rec.
func (l *layout) sampling(rec []byte) samplingFields {
	return samplingFields{
		interval:       l.num(rec, sInterval),
		random:         l.num(rec, sRandom),
		packetInterval: l.num(rec, sPacketInterval),
		packetSpace:    l.num(rec, sPacketSpace),
		spaceSet:       l.has(sPacketSpace),
		size:           l.num(rec, sSampleSize),
		population:     l.num(rec, sPopulation),
	}
}

// uintBE reads a big-endian unsigned number of 0 to 8 bytes.
func uintBE(b []byte) uint64 {
	switch len(b) {
	case 1:
		return uint64(b[0])
	case 2:
		return uint64(binary.BigEndian.Uint16(b))
	case 4:
		return uint64(binary.BigEndian.Uint32(b))
	case 8:
		return binary.BigEndian.Uint64(b)
	}
	var v uint64
	for _, c := range b {
		v = v<<8 | uint64(c)
	}
	return v
}

// ntpEpochOffset is the number of seconds from 1900 (the NTP epoch) to
// 1970.
const ntpEpochOffset = 2208988800

// ntpToUnixNano converts an NTP timestamp (32-bit seconds since 1900, 32-bit
// fraction), the encoding of IPFIX dateTimeMicroseconds and
// dateTimeNanoseconds, to Unix nanoseconds.
func ntpToUnixNano(v uint64) int64 {
	secs := int64(v>>32) - ntpEpochOffset
	frac := int64((v & 0xffffffff) * 1e9 >> 32)
	return secs*1e9 + frac
}

// uptimeToUnixNano converts a sysUptime value (milliseconds since the
// exporter booted) to Unix nanoseconds, given the export time and the
// exporter's sysUptime at export. The difference is taken modulo 2^32 and
// read as signed, so that it survives the counter wrapping every 49.7
// days and a first-packet time a little after the export time.
func uptimeToUnixNano(exportNs int64, uptime, at uint32) int64 {
	return exportNs - int64(int32(uptime-at))*1e6
}
