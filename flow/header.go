package flow

import (
	"encoding/binary"
	"net/netip"
)

// LinkType says where a captured or sampled packet starts.
type LinkType uint8

// The link types ParseHeader understands. The zero value is not one of
// them, so a forgotten link type is an error rather than a silent guess.
const (
	// LinkEthernet is an Ethernet II frame, possibly with stacked VLAN
	// tags (802.1Q, 802.1ad QinQ) and an MPLS label stack before the IP
	// header (pcap LINKTYPE_ETHERNET, sFlow header protocol 1).
	LinkEthernet LinkType = iota + 1
	// LinkIPv4 is a packet that starts with its IPv4 header (sFlow header
	// protocol 11).
	LinkIPv4
	// LinkIPv6 is a packet that starts with its IPv6 header (sFlow header
	// protocol 12).
	LinkIPv6
	// LinkRaw is a packet that starts with an IP header of either version,
	// told apart by the first nibble (pcap LINKTYPE_RAW).
	LinkRaw
	// LinkLinuxSLL is a Linux "cooked" capture with its 16-byte header
	// (pcap LINKTYPE_LINUX_SLL, what capturing on the "any" interface gives).
	LinkLinuxSLL
)

// Errors ParseHeader returns. They are preallocated so that bad packets cost
// no allocation; their Reason is the metric label.
var (
	// ErrHeaderTruncated means the packet ends before the end of the fixed
	// IP header.
	ErrHeaderTruncated = &DecodeError{Reason: "header_truncated",
		Msg: "packet header ends before the end of the IP header: the exporter's sampled header size or the capture snap length is too small"}
	// ErrNotIP means the packet carries something else than IPv4 or IPv6
	// (ARP, LLDP, an MPLS pseudowire ...); such packets make no flow.
	ErrNotIP = &DecodeError{Reason: "not_ip",
		Msg: "packet carries no IPv4 or IPv6 header (ARP, LLDP or another protocol): only IP traffic makes flows"}
	// ErrIPVersion means the IP version field does not match what the
	// link layer announced (or is neither 4 nor 6).
	ErrIPVersion = &DecodeError{Reason: "ip_version",
		Msg: "IP version field is not the one the link layer announced (4 or 6): the packet is corrupt or the link type is wrong"}
	// ErrIPHeaderLength means an IPv4 header length field below 5 words.
	ErrIPHeaderLength = &DecodeError{Reason: "ip_header_length",
		Msg: "IPv4 header length field is below the minimum of 5 words: the packet is corrupt"}
	// ErrLinkType means the caller passed a link type ParseHeader does not
	// know.
	ErrLinkType = &DecodeError{Reason: "link_type",
		Msg: "unknown link type: use LinkEthernet, LinkIPv4, LinkIPv6, LinkRaw or LinkLinuxSLL"}
)

// EtherTypes and IP protocol numbers only the parser needs.
const (
	etherIPv4      = 0x0800
	etherIPv6      = 0x86dd
	etherVLAN      = 0x8100
	etherQinQ      = 0x88a8
	etherQinQOld   = 0x9100
	etherMPLS      = 0x8847
	etherMPLSMulti = 0x8848

	protoHopByHop = 0
	protoRouting  = 43
	protoFragment = 44
	protoAH       = 51
	protoDestOpts = 60
	protoSCTP     = 132
)

// ParseHeader parses the headers of one packet (possibly truncated, as sFlow
// header samples are) into r: Src, Dst, Proto, SrcPort, DstPort, TCPFlags
// (of this packet), ICMPType, ICMPCode and Fragment, all of which it resets
// first. It returns the IP total length (layer-3 bytes, from the IP header:
// IPv4 total length, IPv6 payload length + 40), which is 0 when the header
// states no usable length (TCP segmentation offload leaves an IPv4 total
// length of 0; IPv6 jumbograms carry theirs in an option). It returns an
// error (a preallocated *DecodeError) when no IP header can be read. It does
// not touch Start, End, Exporter or the counts.
//
// Ports and TCP flags are read only when the whole fixed transport header
// is there and only from first fragments; otherwise they stay 0 while the
// addresses are kept. ParseHeader does not allocate.
func ParseHeader(data []byte, link LinkType, r *Record) (l3Len int, err error) {
	r.Src, r.Dst = netip.Addr{}, netip.Addr{}
	r.SrcPort, r.DstPort = 0, 0
	r.Proto, r.TCPFlags, r.ICMPType, r.ICMPCode = 0, 0, 0, 0
	r.Fragment = false
	l3Len, l4, err := parseIP(data, link, r)
	if err != nil {
		return 0, err
	}
	switch r.Proto {
	case ProtoTCP:
		if len(l4) >= 20 {
			r.SrcPort, r.DstPort = ports(l4)
			r.TCPFlags = l4[13]
		}
	case ProtoUDP:
		if len(l4) >= 8 {
			r.SrcPort, r.DstPort = ports(l4)
		}
	case protoSCTP:
		if len(l4) >= 12 {
			r.SrcPort, r.DstPort = ports(l4)
		}
	case ProtoICMP, ProtoICMPv6:
		// Type, code and checksum are the part common to every message.
		if len(l4) >= 4 {
			r.ICMPType, r.ICMPCode = l4[0], l4[1]
		}
	}
	return l3Len, nil
}

// UDPPayload returns the IP source address, the UDP destination port and
// the UDP payload of a packet, when it is an unfragmented UDP datagram over
// IPv4 or IPv6 captured whole; ok is false otherwise. No allocation;
// payload aliases data.
func UDPPayload(data []byte, link LinkType) (src netip.Addr, dstPort uint16, payload []byte, ok bool) {
	var r Record
	_, l4, err := parseIP(data, link, &r)
	if err != nil || r.Proto != ProtoUDP || r.Fragment || len(l4) < 8 {
		return netip.Addr{}, 0, nil, false
	}
	ulen := int(binary.BigEndian.Uint16(l4[4:]))
	if ulen < 8 || ulen > len(l4) {
		return netip.Addr{}, 0, nil, false
	}
	return r.Src, binary.BigEndian.Uint16(l4[2:]), l4[8:ulen:ulen], true
}

// L3Offset returns where the IP header starts in data: after the link-layer
// header, VLAN tags and MPLS labels. The sFlow decoder uses it to tell the
// link-layer overhead from the IP length of a sampled frame.
func L3Offset(data []byte, link LinkType) (int, error) {
	off, _, err := l3Start(data, link)
	return off, err
}

// l3Start returns the offset of the IP header and the IP version the link
// layer announces (0 when only the first nibble tells).
func l3Start(data []byte, link LinkType) (off int, version uint8, err error) {
	var etherType uint16
	switch link {
	case LinkIPv4:
		return 0, 4, nil
	case LinkIPv6:
		return 0, 6, nil
	case LinkRaw:
		return 0, 0, nil
	case LinkLinuxSLL:
		if len(data) < 16 {
			return 0, 0, ErrHeaderTruncated
		}
		off, etherType = 16, binary.BigEndian.Uint16(data[14:])
	case LinkEthernet:
		if len(data) < 14 {
			return 0, 0, ErrHeaderTruncated
		}
		off, etherType = 14, binary.BigEndian.Uint16(data[12:])
	default:
		return 0, 0, ErrLinkType
	}
	for etherType == etherVLAN || etherType == etherQinQ || etherType == etherQinQOld {
		if len(data) < off+4 {
			return 0, 0, ErrHeaderTruncated
		}
		etherType = binary.BigEndian.Uint16(data[off+2:])
		off += 4
	}
	switch etherType {
	case etherIPv4:
		return off, 4, nil
	case etherIPv6:
		return off, 6, nil
	case etherMPLS, etherMPLSMulti:
		// Pop labels down to the bottom of the stack; what follows carries
		// no type, so the IP version nibble has to tell.
		for {
			if len(data) < off+4 {
				return 0, 0, ErrHeaderTruncated
			}
			bottom := data[off+2]&1 == 1
			off += 4
			if bottom {
				break
			}
		}
		if len(data) > off {
			if v := data[off] >> 4; v != 4 && v != 6 {
				return 0, 0, ErrNotIP
			}
		}
		return off, 0, nil
	}
	return 0, 0, ErrNotIP
}

// parseIP sets Src, Dst, Proto and Fragment from the IP header and returns
// the IP total length and the transport header and payload, cut to the IP
// length (nil for a non-first fragment).
func parseIP(data []byte, link LinkType, r *Record) (l3Len int, l4 []byte, err error) {
	off, version, err := l3Start(data, link)
	if err != nil {
		return 0, nil, err
	}
	ip := data[off:]
	if len(ip) == 0 {
		return 0, nil, ErrHeaderTruncated
	}
	v := ip[0] >> 4
	if version != 0 && v != version {
		return 0, nil, ErrIPVersion
	}
	switch v {
	case 4:
		return parseIPv4(ip, r)
	case 6:
		return parseIPv6(ip, r)
	}
	return 0, nil, ErrIPVersion
}

func parseIPv4(ip []byte, r *Record) (l3Len int, l4 []byte, err error) {
	if len(ip) < 20 {
		return 0, nil, ErrHeaderTruncated
	}
	ihl := int(ip[0]&0x0f) * 4
	if ihl < 20 {
		return 0, nil, ErrIPHeaderLength
	}
	r.Src = netip.AddrFrom4([4]byte(ip[12:16]))
	r.Dst = netip.AddrFrom4([4]byte(ip[16:20]))
	r.Proto = ip[9]
	fragField := binary.BigEndian.Uint16(ip[6:])
	moreFragments, fragOffset := fragField&0x2000 != 0, fragField&0x1fff
	r.Fragment = moreFragments || fragOffset != 0
	total := int(binary.BigEndian.Uint16(ip[2:]))
	if total < ihl {
		total = 0 // segmentation offload or garbage: the length is unknown
	}
	// Ethernet pads short frames: the transport part ends with the IP length.
	end := len(ip)
	if total != 0 && total < end {
		end = total
	}
	if fragOffset != 0 || ihl > end {
		return total, nil, nil
	}
	return total, ip[ihl:end], nil
}

func parseIPv6(ip []byte, r *Record) (l3Len int, l4 []byte, err error) {
	if len(ip) < 40 {
		return 0, nil, ErrHeaderTruncated
	}
	r.Src = netip.AddrFrom16([16]byte(ip[8:24]))
	r.Dst = netip.AddrFrom16([16]byte(ip[24:40]))
	next := ip[6]
	l3Len = int(binary.BigEndian.Uint16(ip[4:])) + 40
	end := len(ip)
	switch {
	case l3Len == 40 && next == protoHopByHop:
		l3Len = 0 // a jumbogram: the length is in a hop-by-hop option
	case l3Len < end:
		end = l3Len
	}
	off := 40
	for {
		if next != protoHopByHop && next != protoRouting && next != protoDestOpts &&
			next != protoFragment && next != protoAH {
			break
		}
		if end < off+8 {
			// The extension header is cut: the upper protocol is unknown.
			r.Proto = next
			return l3Len, nil, nil
		}
		h := ip[off:]
		switch next {
		case protoFragment:
			fragField := binary.BigEndian.Uint16(h[2:])
			r.Fragment = fragField&1 != 0 || fragField>>3 != 0
			if fragField>>3 != 0 {
				r.Proto = h[0]
				return l3Len, nil, nil
			}
			off += 8
		case protoAH:
			off += (int(h[1]) + 2) * 4
		default:
			off += (int(h[1]) + 1) * 8
		}
		next = h[0]
	}
	r.Proto = next
	if off > end {
		return l3Len, nil, nil
	}
	return l3Len, ip[off:end], nil
}

func ports(l4 []byte) (src, dst uint16) {
	return binary.BigEndian.Uint16(l4), binary.BigEndian.Uint16(l4[2:])
}
