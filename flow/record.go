// Package flow holds the flow record that every stage downstream of the
// collector works on, the batches that carry records between stages, the
// packet header parser shared by the sFlow decoder and the packet meter, and
// the packet meter that turns captured packets into flows like a probe does.
package flow

import (
	"net/netip"
)

// TCP flag bits as they appear in the TCP header and in Record.TCPFlags.
const (
	TCPFin uint8 = 0x01
	TCPSyn uint8 = 0x02
	TCPRst uint8 = 0x04
	TCPPsh uint8 = 0x08
	TCPAck uint8 = 0x10
	TCPUrg uint8 = 0x20
	TCPEce uint8 = 0x40
	TCPCwr uint8 = 0x80
)

// IP protocol numbers used across the code base.
const (
	ProtoICMP   uint8 = 1
	ProtoTCP    uint8 = 6
	ProtoUDP    uint8 = 17
	ProtoICMPv6 uint8 = 58
)

// Source says which export protocol (or the packet meter) produced a record.
type Source uint8

// The sources a record can come from.
const (
	SourceUnknown Source = iota
	SourceNetFlowV5
	SourceNetFlowV9
	SourceIPFIX
	SourceSFlow
	SourceMeter
)

// String returns the metric label of the source.
func (s Source) String() string {
	switch s {
	case SourceNetFlowV5:
		return "netflow5"
	case SourceNetFlowV9:
		return "netflow9"
	case SourceIPFIX:
		return "ipfix"
	case SourceSFlow:
		return "sflow5"
	case SourceMeter:
		return "meter"
	}
	return "unknown"
}

// Record is one unidirectional flow. It has a fixed size and holds no
// pointers other than those inside netip.Addr, so slices of records can be
// reset and reused without allocation.
//
// Packets and Bytes are already multiplied by SamplingRate; SamplingRate is
// kept so that later stages can tell estimates from exact counts. Bytes are
// layer-3 bytes (the IP total length), as NetFlow and IPFIX report them.
type Record struct {
	// Start and End are the first and last packet times in Unix nanoseconds.
	Start, End int64
	// Exporter is the address of the device that exported the record (the
	// sFlow agent address, or the UDP source for NetFlow and IPFIX).
	Exporter netip.Addr
	// InIf and OutIf are the input and output ifIndex; 0 means unknown.
	InIf, OutIf uint32
	// Src and Dst are the source and destination addresses.
	Src, Dst netip.Addr
	// SrcPort and DstPort are the transport ports; 0 for protocols without.
	SrcPort, DstPort uint16
	// Packets and Bytes are the scaled counts.
	Packets, Bytes uint64
	// SamplingRate is the 1-in-N packet sampling rate; 1 means unsampled.
	SamplingRate uint32
	// Proto is the IP protocol number.
	Proto uint8
	// TCPFlags is the OR of the TCP flags of every packet of the flow.
	TCPFlags uint8
	// ICMPType and ICMPCode are set for ICMP and ICMPv6 flows.
	ICMPType, ICMPCode uint8
	// Fragment is true when the source reported the flow as IP fragments
	// (a packet with MF set or a non-zero fragment offset).
	Fragment bool
	// Continued is true when the record carries more packets of a flow
	// that an earlier record already reported (the packet meter's interim
	// reports): it is not a new flow, so it counts no new connection and
	// no flow update, only its packets and bytes.
	Continued bool
	// Source is the export protocol the record came from.
	Source Source
}

// IfCounters are the interface counters an sFlow counter sample carries
// (generic interface counters, RFC 2233 style). They update the exporter
// interface inventory.
type IfCounters struct {
	// Time is when the collector received the sample, in Unix nanoseconds.
	Time int64
	// Exporter is the sFlow agent address.
	Exporter netip.Addr
	// IfIndex is the interface the counters belong to.
	IfIndex uint32
	// Speed is the interface speed in bits per second.
	Speed uint64
	// InOctets, OutOctets, InPackets and OutPackets are the interface's
	// cumulative counters (unicast + multicast + broadcast packets).
	InOctets, OutOctets, InPackets, OutPackets uint64
	// InErrors, OutErrors, InDiscards and OutDiscards are cumulative.
	InErrors, OutErrors, InDiscards, OutDiscards uint32
}
