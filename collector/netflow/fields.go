package netflow

import (
	"encoding/binary"
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

// kind says what a plan step does with a field's bytes.
type kind uint8

const (
	kSkip    kind = iota // fixed-length bytes nobody reads
	kSkipVar             // one variable-length field nobody reads
	kSrc4
	kDst4
	kSrc6
	kDst6
	kSrc6Alt // IPv6 source of a template that also has IPv4 addresses
	kDst6Alt
	kSrcPort
	kDstPort
	kProto
	kTCPFlags
	kInIf
	kOutIf
	kBytes
	kPackets
	kICMPTypeCode
	kICMPType
	kICMPCode
	kFragFlags
	kFragOffset
	kStartSeconds
	kEndSeconds
	kStartMillis
	kEndMillis
	kStartNTP
	kEndNTP
	kStartDelta
	kEndDelta
	kStartUptime // NetFlow v9: sysUptime ms, relative to the header
	kEndUptime
	kStartSysUp // IPFIX: sysUpTime ms, relative to systemInitTimeMilliseconds
	kEndSysUp
	kSysInit
	kSamplerID
	kSamplingInterval
	kRandomInterval
	kPacketInterval
	kPacketSpace
	kSampleSize
	kSamplePopulation
)

// field is one field of a template record as received.
type field struct {
	ie     uint16
	length uint16
	// unmapped is set for enterprise-specific IPFIX fields and NetFlow v9
	// scope fields, whose numbers are not information elements.
	unmapped bool
}

// op is one step of a template's plan.
type op struct {
	kind kind
	// length is the byte length of the step: one field, several merged
	// skipped fields, or varLength for kSkipVar.
	length uint32
}

// template is a compiled template. It is immutable once published, except
// for refreshed, which is written under the Templates write lock.
type template struct {
	ops []op
	// minLen is the length of the shortest record: fixed lengths plus one
	// byte per variable-length field. It is at least 1.
	minLen int
	// options marks an options template, whose records feed the sampling
	// state instead of becoming flow records.
	options bool
	// addressed is set when records carry a source and a destination
	// address of one family; records of other data templates are dropped.
	addressed bool
	// dual is set when records carry both IPv4 and IPv6 address pairs; the
	// IPv6 pair wins when it is not all zeros.
	dual       bool
	hasSampler bool
	hasRate    bool
	hasSysInit bool
	sysUp      bool
	// raw is the template record as received, to recognise a template sent
	// again unchanged without compiling it.
	raw       []byte
	refreshed int64
}

// ieSet is a set of information element numbers below 512 (every element
// the plan reads is below 512).
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

// compile turns the fields of a template record into a plan. Where a
// template offers several sources for one value, one is chosen once here:
// octet/packet counts from the delta counts, else the total counts, else
// the NetFlow v9 OUT_ counts; start and end times from the most precise
// absolute time, else the delta to the export time, else the sysUpTime
// offsets; interfaces from ingress/egressInterface, else the physical
// interfaces.
func compile(fields []field, ipfix, options bool) (*template, error) {
	var present ieSet
	for _, f := range fields {
		if !f.unmapped {
			present.add(f.ie)
		}
	}
	v4 := present.has(ieSourceIPv4Address) && present.has(ieDestinationIPv4Address)
	v6 := present.has(ieSourceIPv6Address) && present.has(ieDestinationIPv6Address)
	bytesIE := present.first(ieOctetDeltaCount, ieOctetTotalCount, iePostOctetDeltaCount)
	packetsIE := present.first(iePacketDeltaCount, iePacketTotalCount, iePostPacketDeltaCount)
	inIE := present.first(ieIngressInterface, ieIngressPhysicalInterface)
	outIE := present.first(ieEgressInterface, ieEgressPhysicalInterface)
	startIE := present.first(ieFlowStartNanoseconds, ieFlowStartMicroseconds, ieFlowStartMilliseconds,
		ieFlowStartSeconds, ieFlowStartDeltaMicros, ieFlowStartSysUpTime)
	endIE := present.first(ieFlowEndNanoseconds, ieFlowEndMicroseconds, ieFlowEndMilliseconds,
		ieFlowEndSeconds, ieFlowEndDeltaMicros, ieFlowEndSysUpTime)

	t := &template{
		options:   options,
		addressed: !options && (v4 || v6),
		dual:      !options && v4 && v6,
		ops:       make([]op, 0, len(fields)),
	}
	total := 0
	for _, f := range fields {
		k := kSkip
		if !f.unmapped {
			k = fieldKind(f.ie, ipfix, options, v4, v6, bytesIE, packetsIE, inIE, outIE, startIE, endIE)
		}
		if f.length == varLength {
			if k != kSkip {
				return nil, errFieldLength
			}
			t.ops = append(t.ops, op{kind: kSkipVar, length: varLength})
			total++
			continue
		}
		if k != kSkip && !lengthOK(k, f.length) {
			return nil, errFieldLength
		}
		total += int(f.length)
		switch k {
		case kSamplerID:
			t.hasSampler = true
		case kSamplingInterval, kRandomInterval, kPacketInterval, kSampleSize, kSamplePopulation:
			t.hasRate = true
		case kSysInit:
			t.hasSysInit = true
		case kStartSysUp, kEndSysUp:
			t.sysUp = true
		}
		if k == kSkip && len(t.ops) > 0 && t.ops[len(t.ops)-1].kind == kSkip {
			t.ops[len(t.ops)-1].length += uint32(f.length)
			continue
		}
		t.ops = append(t.ops, op{kind: k, length: uint32(f.length)})
	}
	if total == 0 {
		return nil, errZeroLength
	}
	t.minLen = total
	return t, nil
}

// fieldKind maps one information element to its plan step, given the
// sources compile chose.
func fieldKind(ie uint16, ipfix, options, v4, v6 bool, bytesIE, packetsIE, inIE, outIE, startIE, endIE uint16) kind {
	// Options records only feed the sampling state.
	switch ie {
	case ieSamplerID, ieSelectorID:
		return kSamplerID
	case ieSamplingInterval:
		return kSamplingInterval
	case ieSamplerRandomInterval:
		return kRandomInterval
	case ieSamplingPacketInterval:
		return kPacketInterval
	case ieSamplingPacketSpace:
		return kPacketSpace
	case ieSamplingSize:
		return kSampleSize
	case ieSamplingPopulation:
		return kSamplePopulation
	case ieSystemInitTimeMillis:
		if ipfix {
			return kSysInit
		}
		return kSkip
	}
	if options || ie == 0 {
		// 0 is no element, and the value of the chosen sources that are
		// absent.
		return kSkip
	}
	switch ie {
	case ieSourceIPv4Address:
		if v4 {
			return kSrc4
		}
	case ieDestinationIPv4Address:
		if v4 {
			return kDst4
		}
	case ieSourceIPv6Address:
		switch {
		case v4 && v6:
			return kSrc6Alt
		case v6:
			return kSrc6
		}
	case ieDestinationIPv6Address:
		switch {
		case v4 && v6:
			return kDst6Alt
		case v6:
			return kDst6
		}
	case ieSourceTransportPort:
		return kSrcPort
	case ieDestinationTransportPort:
		return kDstPort
	case ieProtocolIdentifier:
		return kProto
	case ieTCPControlBits:
		return kTCPFlags
	case ieICMPTypeCodeIPv4, ieICMPTypeCodeIPv6:
		return kICMPTypeCode
	case ieICMPTypeIPv4, ieICMPTypeIPv6:
		return kICMPType
	case ieICMPCodeIPv4, ieICMPCodeIPv6:
		return kICMPCode
	case ieFragmentFlags:
		return kFragFlags
	case ieFragmentOffset:
		return kFragOffset
	}
	switch ie {
	case bytesIE:
		return kBytes
	case packetsIE:
		return kPackets
	case inIE:
		return kInIf
	case outIE:
		return kOutIf
	case startIE:
		return startKind(ie, ipfix)
	case endIE:
		return endKind(ie, ipfix)
	}
	return kSkip
}

func startKind(ie uint16, ipfix bool) kind {
	switch ie {
	case ieFlowStartSeconds:
		return kStartSeconds
	case ieFlowStartMilliseconds:
		return kStartMillis
	case ieFlowStartMicroseconds, ieFlowStartNanoseconds:
		return kStartNTP
	case ieFlowStartDeltaMicros:
		return kStartDelta
	}
	if ipfix {
		return kStartSysUp
	}
	return kStartUptime
}

func endKind(ie uint16, ipfix bool) kind {
	switch ie {
	case ieFlowEndSeconds:
		return kEndSeconds
	case ieFlowEndMilliseconds:
		return kEndMillis
	case ieFlowEndMicroseconds, ieFlowEndNanoseconds:
		return kEndNTP
	case ieFlowEndDeltaMicros:
		return kEndDelta
	}
	if ipfix {
		return kEndSysUp
	}
	return kEndUptime
}

// lengthOK says whether a field of length n can hold the value k reads.
// Numbers may use reduced-size encoding (RFC 7011 section 6.2).
func lengthOK(k kind, n uint16) bool {
	switch k {
	case kSrc4, kDst4:
		return n == 4
	case kSrc6, kDst6, kSrc6Alt, kDst6Alt:
		return n == 16
	case kStartNTP, kEndNTP:
		return n == 8
	case kFragFlags:
		return n == 1
	}
	return n >= 1 && n <= 8
}

// extras holds what a record's fields say beyond the flow.Record itself.
type extras struct {
	src6, dst6       netip.Addr
	sampler          uint64
	sampling         samplingFields
	startUp, endUp   uint64
	sysInit          uint64
	startSet, endSet bool
}

// msgContext is what the message header says about its records.
type msgContext struct {
	key      domainKey
	exportNs int64
	// uptime is the NetFlow v9 header's sysUptime in milliseconds.
	uptime uint32
	source flow.Source
}

// decodeRecord walks t's plan over one record at the start of b, filling r
// and x. It returns the record's length, or -1 when the record runs past
// the end of b.
func (t *template) decodeRecord(b []byte, c *msgContext, r *flow.Record, x *extras) int {
	pos := 0
	for _, o := range t.ops {
		if o.kind == kSkipVar {
			if pos >= len(b) {
				return -1
			}
			n := int(b[pos])
			pos++
			if n == 255 {
				if pos+2 > len(b) {
					return -1
				}
				n = int(binary.BigEndian.Uint16(b[pos:]))
				pos += 2
			}
			if n > len(b)-pos {
				return -1
			}
			pos += n
			continue
		}
		n := int(o.length)
		if n > len(b)-pos {
			return -1
		}
		v := b[pos : pos+n]
		pos += n
		switch o.kind {
		case kSkip:
		case kSrc4:
			r.Src = netip.AddrFrom4([4]byte(v))
		case kDst4:
			r.Dst = netip.AddrFrom4([4]byte(v))
		case kSrc6:
			r.Src = netip.AddrFrom16([16]byte(v))
		case kDst6:
			r.Dst = netip.AddrFrom16([16]byte(v))
		case kSrc6Alt:
			x.src6 = netip.AddrFrom16([16]byte(v))
		case kDst6Alt:
			x.dst6 = netip.AddrFrom16([16]byte(v))
		case kSrcPort:
			r.SrcPort = uint16(uintBE(v))
		case kDstPort:
			r.DstPort = uint16(uintBE(v))
		case kProto:
			r.Proto = uint8(uintBE(v))
		case kTCPFlags:
			r.TCPFlags |= uint8(uintBE(v))
		case kInIf:
			r.InIf = uint32(uintBE(v))
		case kOutIf:
			r.OutIf = uint32(uintBE(v))
		case kBytes:
			r.Bytes = uintBE(v)
		case kPackets:
			r.Packets = uintBE(v)
		case kICMPTypeCode:
			tc := uintBE(v)
			r.ICMPType, r.ICMPCode = uint8(tc>>8), uint8(tc)
		case kICMPType:
			r.ICMPType = uint8(uintBE(v))
		case kICMPCode:
			r.ICMPCode = uint8(uintBE(v))
		case kFragFlags:
			r.Fragment = r.Fragment || v[0]&fragmentMF != 0
		case kFragOffset:
			r.Fragment = r.Fragment || uintBE(v) != 0
		case kStartSeconds:
			r.Start = int64(uintBE(v)) * 1e9
		case kEndSeconds:
			r.End = int64(uintBE(v)) * 1e9
		case kStartMillis:
			r.Start = int64(uintBE(v)) * 1e6
		case kEndMillis:
			r.End = int64(uintBE(v)) * 1e6
		case kStartNTP:
			r.Start = ntpToUnixNano(binary.BigEndian.Uint64(v))
		case kEndNTP:
			r.End = ntpToUnixNano(binary.BigEndian.Uint64(v))
		case kStartDelta:
			r.Start = c.exportNs - int64(uintBE(v))*1e3
		case kEndDelta:
			r.End = c.exportNs - int64(uintBE(v))*1e3
		case kStartUptime:
			r.Start = uptimeToUnixNano(c.exportNs, c.uptime, uint32(uintBE(v)))
		case kEndUptime:
			r.End = uptimeToUnixNano(c.exportNs, c.uptime, uint32(uintBE(v)))
		case kStartSysUp:
			x.startUp, x.startSet = uintBE(v), true
		case kEndSysUp:
			x.endUp, x.endSet = uintBE(v), true
		case kSysInit:
			x.sysInit = uintBE(v)
		case kSamplerID:
			x.sampler = uintBE(v)
		case kSamplingInterval:
			x.sampling.interval = uintBE(v)
		case kRandomInterval:
			x.sampling.random = uintBE(v)
		case kPacketInterval:
			x.sampling.packetInterval = uintBE(v)
		case kPacketSpace:
			x.sampling.packetSpace, x.sampling.spaceSet = uintBE(v), true
		case kSampleSize:
			x.sampling.size = uintBE(v)
		case kSamplePopulation:
			x.sampling.population = uintBE(v)
		}
	}
	return pos
}

// uintBE reads a big-endian unsigned number of 1 to 8 bytes.
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
