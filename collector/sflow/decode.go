package sflow

import (
	"encoding/binary"
	"net/netip"

	"github.com/flowsentry/flowsentry/flow"
)

// Sample and record formats of enterprise 0 (sflow_version_5.txt). A
// data_format is enterprise<<12 | format, so vendor formats never match.
const (
	sampleFlow            = 1
	sampleCounter         = 2
	sampleExpandedFlow    = 3
	sampleExpandedCounter = 4

	recordRawHeader  = 1
	recordSampledIP4 = 3
	recordSampledIP6 = 4

	counterGeneric = 1
)

// Fixed sizes of the parts Decode reads.
const (
	flowSampleSize         = 32 // sequence, source, rate, pool, drops, input, output, count
	expandedFlowSampleSize = 44 // sequence, source type and index, rate, pool, drops, input and output as format+value, count
	counterSampleSize      = 12 // sequence, source, count
	expandedCounterSize    = 16 // sequence, source type and index, count
	rawHeaderSize          = 16 // protocol, frame length, stripped, header length
	sampledIP4Size         = 32
	sampledIP6Size         = 56
	genericCounterSize     = 88
)

// Header protocols of a raw packet header record.
const (
	headerEthernet = 1
	headerIPv4     = 11
	headerIPv6     = 12
)

func u32(b []byte) uint32 { return binary.BigEndian.Uint32(b) }

// Decode decodes one datagram received at now (Unix ns), appending flow
// records to b.Records and interface counters to b.Counters. A datagram is
// taken whole or not at all: on error (a preallocated *flow.DecodeError),
// nothing is appended and Stats is zero.
func (d *Decoder) Decode(now int64, payload []byte, b *flow.Batch) (Stats, error) {
	nRecords, nCounters := len(b.Records), len(b.Counters)
	st, err := decode(now, payload, b, d.Samples)
	if err != nil {
		b.Records, b.Counters = b.Records[:nRecords], b.Counters[:nCounters]
		return Stats{}, err
	}
	return st, nil
}

// decode decodes a datagram; samples, when not nil, is offered the raw
// headers.
func decode(now int64, p []byte, b *flow.Batch, samples SampleSink) (st Stats, err error) {
	if len(p) < 8 {
		return st, errTruncated
	}
	if u32(p) != 5 {
		return st, errVersion
	}
	var agent netip.Addr
	switch u32(p[4:]) {
	case 1:
		if len(p) < 12 {
			return st, errTruncated
		}
		agent, p = netip.AddrFrom4([4]byte(p[8:12])), p[12:]
	case 2:
		if len(p) < 24 {
			return st, errTruncated
		}
		agent, p = netip.AddrFrom16([16]byte(p[8:24])), p[24:]
	default:
		return st, errAddressType
	}
	// Sub-agent ID, sequence number, uptime, sample count.
	if len(p) < 16 {
		return st, errTruncated
	}
	n := u32(p[12:])
	p = p[16:]
	if uint64(n) > uint64(len(p)/8) {
		return st, errSampleCount
	}
	for range n {
		format, s, rest, err := next(p, errSampleLength)
		if err != nil {
			return st, err
		}
		p = rest
		st.Samples++
		added := false
		switch format {
		case sampleFlow, sampleExpandedFlow:
			st.FlowSamples++
			added, err = decodeFlowSample(now, agent, s, format == sampleExpandedFlow, b, samples)
			if added {
				st.Records++
			}
		case sampleCounter, sampleExpandedCounter:
			st.CounterSamples++
			var c int
			c, err = decodeCounterSample(now, agent, s, format == sampleExpandedCounter, b)
			st.Counters += c
			added = c > 0
		}
		if err != nil {
			return st, err
		}
		if !added {
			st.Skipped++
		}
	}
	return st, nil
}

// next splits the first XDR item of p (format, length, data) from the rest;
// lengthErr is the error when the length runs past the end of p.
func next(p []byte, lengthErr error) (format uint32, data, rest []byte, err error) {
	if len(p) < 8 {
		return 0, nil, nil, lengthErr
	}
	format, length := u32(p), u32(p[4:])
	if uint64(length) > uint64(len(p)-8) {
		return 0, nil, nil, lengthErr
	}
	end := 8 + int(length)
	return format, p[8:end], p[end:], nil
}

// compactIf returns the ifIndex of a compact interface field: the 2 top
// bits are a format, and only format 0 holds an ifIndex (the others mean a
// dropped packet or several output interfaces).
func compactIf(v uint32) uint32 {
	if v>>30 != 0 {
		return 0
	}
	return v
}

// expandedIf is compactIf for the expanded format, which spells the format
// out in its own word.
func expandedIf(format, value uint32) uint32 {
	if format != 0 {
		return 0
	}
	return value
}

// decodeFlowSample appends the flow record of one flow sample and reports whether
// it did: a sample whose packet is not IP adds nothing. samples, when not
// nil, is offered the raw header of a record made from one.
func decodeFlowSample(now int64, agent netip.Addr, s []byte, expanded bool, b *flow.Batch, samples SampleSink) (bool, error) {
	var rate, in, out, count uint32
	if expanded {
		if len(s) < expandedFlowSampleSize {
			return false, errSampleLength
		}
		rate = u32(s[12:])
		in, out = expandedIf(u32(s[24:]), u32(s[28:])), expandedIf(u32(s[32:]), u32(s[36:]))
		count, s = u32(s[40:]), s[expandedFlowSampleSize:]
	} else {
		if len(s) < flowSampleSize {
			return false, errSampleLength
		}
		rate = u32(s[8:])
		in, out = compactIf(u32(s[20:])), compactIf(u32(s[24:]))
		count, s = u32(s[28:]), s[flowSampleSize:]
	}
	if rate == 0 {
		rate = 1 // some agents send 0 for unsampled traffic
	}
	if uint64(count) > uint64(len(s)/8) {
		return false, errSampleCount
	}
	// The first raw header is preferred; sampled IPv4/IPv6 data is the
	// fall-back for agents that send no header or a non-IP one.
	var header, sampledIP []byte
	var headerProto, frameLength, stripped, sampledFormat uint32
	for range count {
		format, r, rest, err := next(s, errRecordLength)
		if err != nil {
			return false, err
		}
		s = rest
		switch format {
		case recordRawHeader:
			if len(r) < rawHeaderSize || uint64(u32(r[12:])) > uint64(len(r)-rawHeaderSize) {
				return false, errRecordLength
			}
			if header == nil {
				headerProto, frameLength, stripped = u32(r), u32(r[4:]), u32(r[8:])
				header = r[rawHeaderSize : rawHeaderSize+int(u32(r[12:]))]
			}
		case recordSampledIP4, recordSampledIP6:
			if format == recordSampledIP4 && len(r) < sampledIP4Size || format == recordSampledIP6 && len(r) < sampledIP6Size {
				return false, errRecordLength
			}
			if sampledIP == nil {
				sampledIP, sampledFormat = r, format
			}
		}
	}

	b.Records = append(b.Records, flow.Record{
		Start: now, End: now, Exporter: agent, InIf: in, OutIf: out,
		Packets: uint64(rate), SamplingRate: rate, Source: flow.SourceSFlow,
	})
	r := &b.Records[len(b.Records)-1]
	if l3Len, ok := fromHeader(header, headerProto, frameLength, stripped, r); ok {
		r.Bytes = l3Len * uint64(rate)
		if samples != nil {
			// A datagram that turns out corrupt further on is dropped
			// whole, but the header offered here was whole and valid.
			samples.Offer(r.Dst, headerProto, frameLength, stripped, header, now)
		}
		return true, nil
	}
	if sampledIP != nil {
		r.Bytes = fromSampledIP(sampledIP, sampledFormat, r) * uint64(rate)
		return true, nil
	}
	b.Records = b.Records[:len(b.Records)-1]
	return false, nil
}

// fromHeader fills r from a raw packet header and returns the IP length of
// the sampled packet; ok is false when the header holds no IP packet.
func fromHeader(header []byte, proto, frameLength, stripped uint32, r *flow.Record) (l3Len uint64, ok bool) {
	var link flow.LinkType
	switch proto {
	case headerEthernet:
		link = flow.LinkEthernet
	case headerIPv4:
		link = flow.LinkIPv4
	case headerIPv6:
		link = flow.LinkIPv6
	default:
		return 0, false
	}
	n, err := flow.ParseHeader(header, link, r)
	if err != nil {
		return 0, false
	}
	if n > 0 {
		return uint64(n), true
	}
	// The IP header states no length (segmentation offload, jumbogram):
	// take the frame length less what the agent stripped and the link
	// layer. L3Offset cannot fail where ParseHeader succeeded.
	off, _ := flow.L3Offset(header, link)
	if l2 := uint64(stripped) + uint64(off); uint64(frameLength) > l2 {
		return uint64(frameLength) - l2, true
	}
	return 0, true
}

// fromSampledIP fills r from a sampled IPv4 or IPv6 record and returns the
// IP length it states.
func fromSampledIP(s []byte, format uint32, r *flow.Record) uint64 {
	length, proto := u32(s), u32(s[4:])
	if format == recordSampledIP4 {
		r.Src, r.Dst = netip.AddrFrom4([4]byte(s[8:12])), netip.AddrFrom4([4]byte(s[12:16]))
		s = s[16:]
	} else {
		r.Src, r.Dst = netip.AddrFrom16([16]byte(s[8:24])), netip.AddrFrom16([16]byte(s[24:40]))
		s = s[40:]
	}
	r.Proto = uint8(proto)
	r.SrcPort, r.DstPort = uint16(u32(s)), uint16(u32(s[4:]))
	if r.Proto == flow.ProtoTCP {
		r.TCPFlags = uint8(u32(s[8:]))
	}
	return uint64(length)
}

// decodeCounterSample appends the generic interface counters of one counter
// sample and returns how many sets it appended.
func decodeCounterSample(now int64, agent netip.Addr, s []byte, expanded bool, b *flow.Batch) (int, error) {
	var count uint32
	if expanded {
		if len(s) < expandedCounterSize {
			return 0, errSampleLength
		}
		count, s = u32(s[12:]), s[expandedCounterSize:]
	} else {
		if len(s) < counterSampleSize {
			return 0, errSampleLength
		}
		count, s = u32(s[8:]), s[counterSampleSize:]
	}
	if uint64(count) > uint64(len(s)/8) {
		return 0, errSampleCount
	}
	added := 0
	for range count {
		format, c, rest, err := next(s, errRecordLength)
		if err != nil {
			return added, err
		}
		s = rest
		if format != counterGeneric {
			continue
		}
		if len(c) < genericCounterSize {
			return added, errRecordLength
		}
		// ifIndex, ifType, ifSpeed(64), ifDirection, ifStatus, then the
		// in counters from 24 and the out counters from 56.
		b.Counters = append(b.Counters, flow.IfCounters{
			Time:        now,
			Exporter:    agent,
			IfIndex:     u32(c),
			Speed:       binary.BigEndian.Uint64(c[8:]),
			InOctets:    binary.BigEndian.Uint64(c[24:]),
			InPackets:   uint64(u32(c[32:])) + uint64(u32(c[36:])) + uint64(u32(c[40:])),
			InDiscards:  u32(c[44:]),
			InErrors:    u32(c[48:]),
			OutOctets:   binary.BigEndian.Uint64(c[56:]),
			OutPackets:  uint64(u32(c[64:])) + uint64(u32(c[68:])) + uint64(u32(c[72:])),
			OutDiscards: u32(c[76:]),
			OutErrors:   u32(c[80:]),
		})
		added++
	}
	return added, nil
}
