package flow

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"

	"github.com/flowsentry/flowsentry/internal/testcaptures"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// readFrames returns every frame of an Ethernet capture named relative to
// the captures folder.
func readFrames(tb testing.TB, name string) [][]byte {
	tb.Helper()
	frames, link := testcaptures.Frames(tb, name)
	if link != layers.LinkTypeEthernet {
		tb.Fatalf("%s: link type %v, want Ethernet", name, link)
	}
	return frames
}

// referenceHeader decodes a frame with gopacket's layers into the fields
// ParseHeader fills. ok is false when gopacket finds no IP layer.
func referenceHeader(frame []byte) (want Record, l3Len int, ok bool) {
	pkt := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.Default)
	for _, l := range pkt.Layers() {
		switch l := l.(type) {
		case *layers.IPv4:
			if ok {
				return want, l3Len, ok // tunnelled: only the outer header counts
			}
			ok = true
			want.Src = netip.AddrFrom4([4]byte(l.SrcIP.To4()))
			want.Dst = netip.AddrFrom4([4]byte(l.DstIP.To4()))
			want.Proto = uint8(l.Protocol)
			want.Fragment = l.Flags&layers.IPv4MoreFragments != 0 || l.FragOffset != 0
			l3Len = int(l.Length)
			if want.Fragment && l.FragOffset == 0 {
				// gopacket stops at any fragment; the first one has the ports.
				referenceTransport(l.Payload, l.Protocol.LayerType(), &want)
				return want, l3Len, ok
			}
		case *layers.IPv6:
			if ok {
				return want, l3Len, ok
			}
			ok = true
			want.Src = netip.AddrFrom16([16]byte(l.SrcIP.To16()))
			want.Dst = netip.AddrFrom16([16]byte(l.DstIP.To16()))
			want.Proto = uint8(l.NextHeader)
			l3Len = int(l.Length) + 40
		case *layers.IPv6HopByHop:
			want.Proto = uint8(l.NextHeader)
		case *layers.IPv6Routing:
			want.Proto = uint8(l.NextHeader)
		case *layers.IPv6Destination:
			want.Proto = uint8(l.NextHeader)
		case *layers.IPv6Fragment:
			want.Proto = uint8(l.NextHeader)
			want.Fragment = l.MoreFragments || l.FragmentOffset != 0
			if l.FragmentOffset == 0 {
				referenceTransport(l.Payload, l.NextHeader.LayerType(), &want)
			}
			return want, l3Len, ok
		default:
			if referenceLayer(l, &want) {
				return want, l3Len, ok
			}
		}
	}
	return want, l3Len, ok
}

func referenceTransport(payload []byte, first gopacket.LayerType, want *Record) {
	for _, l := range gopacket.NewPacket(payload, first, gopacket.Default).Layers() {
		if referenceLayer(l, want) {
			return
		}
	}
}

// referenceLayer copies what a transport layer holds into want and reports
// whether l was one.
func referenceLayer(l gopacket.Layer, want *Record) bool {
	switch l := l.(type) {
	case *layers.TCP:
		want.SrcPort, want.DstPort = uint16(l.SrcPort), uint16(l.DstPort)
		for _, f := range []struct {
			set bool
			bit uint8
		}{{l.FIN, TCPFin}, {l.SYN, TCPSyn}, {l.RST, TCPRst}, {l.PSH, TCPPsh}, {l.ACK, TCPAck}, {l.URG, TCPUrg}, {l.ECE, TCPEce}, {l.CWR, TCPCwr}} {
			if f.set {
				want.TCPFlags |= f.bit
			}
		}
	case *layers.UDP:
		want.SrcPort, want.DstPort = uint16(l.SrcPort), uint16(l.DstPort)
	case *layers.SCTP:
		want.SrcPort, want.DstPort = uint16(l.SrcPort), uint16(l.DstPort)
	case *layers.ICMPv4:
		want.ICMPType, want.ICMPCode = l.TypeCode.Type(), l.TypeCode.Code()
	case *layers.ICMPv6:
		want.ICMPType, want.ICMPCode = l.TypeCode.Type(), l.TypeCode.Code()
	default:
		return false
	}
	return true
}

// headerSummary shows that a capture exercises what its test case claims.
type headerSummary struct {
	Frames, VLANTagged, IPv6, Fragments, WithPorts, ICMP, FlagCombos int
	Errors                                                           map[string]int
}

func TestParseHeaderCaptures(t *testing.T) {
	tests := []struct {
		name string
		file string
		want headerSummary
	}{
		{
			name: "VLAN-tagged SYN scan",
			file: "attacks/scans/masscan_tcp_0_1000_20190821.pcap",
			want: headerSummary{Frames: 1005, VLANTagged: 1005, WithPorts: 1005, FlagCombos: 2},
		},
		{
			name: "VLAN-tagged UDP scan",
			file: "attacks/scans/masscan_udp_0_1000_20190821.pcap",
			want: headerSummary{Frames: 1001, VLANTagged: 1001, WithPorts: 1001},
		},
		{
			name: "DNS amplification with fragments and some IPv6",
			file: "attacks/ddos/amp.dns.RRSIG.fragmented.pcap",
			want: headerSummary{Frames: 4412, IPv6: 15, Fragments: 1209, WithPorts: 3678, ICMP: 7, FlagCombos: 8},
		},
		{
			name: "every TCP flag combination",
			file: "attacks/anomalies/tcp_one_way_all_flags.pcap",
			want: headerSummary{Frames: 63, WithPorts: 63, FlagCombos: 63},
		},
		{
			// The four first fragments hold 16 bytes of TCP header: too
			// short for ports (gopacket agrees).
			name: "fragment flood",
			file: "attacks/anomalies/ip_fragmented_garbage.pcap",
			want: headerSummary{Frames: 1252, Fragments: 1252},
		},
		{
			name: "ICMP sweep",
			file: "attacks/scans/hs-icmpScan.pcap",
			want: headerSummary{Frames: 512, ICMP: 512},
		},
		{
			name: "small LAN scan with ARP",
			file: "attacks/scans/tcp_scan.pcapng",
			want: headerSummary{Frames: 30, WithPorts: 18, FlagCombos: 7, Errors: map[string]int{"not_ip": 12}},
		},
		{
			name: "nmap probes",
			file: "attacks/scans/nmap_80_all.pcap",
			want: headerSummary{Frames: 431, WithPorts: 425, ICMP: 6, FlagCombos: 8},
		},
		{
			name: "IPv6 transport",
			file: "flow-exports/vendor/sflow-print-v6.pcap",
			want: headerSummary{Frames: 25, IPv6: 25, WithPorts: 25},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := headerSummary{Errors: map[string]int{}}
			combos := map[uint8]bool{}
			for i, frame := range readFrames(t, tt.file) {
				var r Record
				l3Len, err := ParseHeader(frame, LinkEthernet, &r)
				want, wantL3, ok := referenceHeader(frame)
				got.Frames++
				if et := binary.BigEndian.Uint16(frame[12:]); et == etherVLAN {
					got.VLANTagged++
				}
				if err != nil {
					var de *DecodeError
					if !errors.As(err, &de) {
						t.Fatalf("frame %d: error %v is not a *DecodeError", i, err)
					}
					got.Errors[de.Reason]++
					if ok {
						t.Errorf("frame %d: %v, but gopacket decodes %+v", i, err, want)
					}
					continue
				}
				if !ok {
					t.Errorf("frame %d: parsed %+v, but gopacket finds no IP layer", i, r)
					continue
				}
				if diff := cmp.Diff(r, want, cmpopts.EquateComparable(netip.Addr{})); diff != "" {
					t.Errorf("frame %d: record (-got +want):\n%s", i, diff)
				}
				if l3Len != wantL3 {
					t.Errorf("frame %d: l3Len %d, want %d", i, l3Len, wantL3)
				}
				if r.Src.Is6() {
					got.IPv6++
				}
				if r.Fragment {
					got.Fragments++
				}
				if r.SrcPort != 0 || r.DstPort != 0 {
					got.WithPorts++
				}
				if r.Proto == ProtoICMP || r.Proto == ProtoICMPv6 {
					got.ICMP++
				}
				if r.Proto == ProtoTCP && r.SrcPort != 0 {
					combos[r.TCPFlags] = true
				}
			}
			got.FlagCombos = len(combos)
			if tt.want.Errors == nil {
				tt.want.Errors = map[string]int{}
			}
			if diff := cmp.Diff(got, tt.want); diff != "" {
				t.Errorf("summary (-got +want):\n%s", diff)
			}
		})
	}
}

// Builders for hand-made packets that the captures lack.

func cat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func be16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }

// ethHdr builds an Ethernet header whose first EtherType is types[0]; every
// further type comes as a 4-byte tag (VLAN TCI 0x0064, then the type).
func ethHdr(types ...uint16) []byte {
	h := cat(make([]byte, 12), be16(types[0]))
	for _, t := range types[1:] {
		h = cat(h, be16(0x0064), be16(t))
	}
	return h
}

var (
	v4a, v4b = netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("198.51.100.2")
	v6a, v6b = netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::2")
)

// ipv4Hdr builds an IPv4 header of ihlWords words (options zeroed).
func ipv4Hdr(proto uint8, fragField uint16, ihlWords uint8, total uint16) []byte {
	h := make([]byte, int(ihlWords)*4)
	if len(h) < 20 {
		h = make([]byte, 20)
	}
	h[0] = 0x40 | ihlWords
	binary.BigEndian.PutUint16(h[2:], total)
	binary.BigEndian.PutUint16(h[6:], fragField)
	h[8], h[9] = 64, proto
	copy(h[12:], v4a.AsSlice())
	copy(h[16:], v4b.AsSlice())
	return h
}

func ipv6Hdr(next uint8, payloadLen uint16) []byte {
	h := make([]byte, 40)
	h[0] = 0x60
	binary.BigEndian.PutUint16(h[4:], payloadLen)
	h[6], h[7] = next, 64
	copy(h[8:], v6a.AsSlice())
	copy(h[24:], v6b.AsSlice())
	return h
}

// extHdr builds an IPv6 extension header of size bytes (a multiple of 8,
// or of 4 for AH) with the length byte encoded as lenByte.
func extHdr(next uint8, lenByte uint8, size int) []byte {
	h := make([]byte, size)
	h[0], h[1] = next, lenByte
	return h
}

func fragHdr(next uint8, offset uint16, more bool) []byte {
	h := make([]byte, 8)
	h[0] = next
	f := offset << 3
	if more {
		f |= 1
	}
	binary.BigEndian.PutUint16(h[2:], f)
	return h
}

func tcpHdr(sp, dp uint16, flags uint8) []byte {
	h := cat(be16(sp), be16(dp), make([]byte, 16))
	h[12], h[13] = 0x50, flags
	return h
}

func udpHdr(sp, dp, length uint16) []byte {
	return cat(be16(sp), be16(dp), be16(length), be16(0))
}

func TestParseHeaderCrafted(t *testing.T) {
	tcp := tcpHdr(40000, 443, TCPSyn)
	udp := udpHdr(5353, 53, 8)
	v4tcp := Record{Src: v4a, Dst: v4b, Proto: ProtoTCP, SrcPort: 40000, DstPort: 443, TCPFlags: TCPSyn}
	v4udp := Record{Src: v4a, Dst: v4b, Proto: ProtoUDP, SrcPort: 5353, DstPort: 53}
	v6tcp := Record{Src: v6a, Dst: v6b, Proto: ProtoTCP, SrcPort: 40000, DstPort: 443, TCPFlags: TCPSyn}
	v6udp := Record{Src: v6a, Dst: v6b, Proto: ProtoUDP, SrcPort: 5353, DstPort: 53}
	tests := []struct {
		name    string
		data    []byte
		link    LinkType
		want    Record
		wantL3  int
		wantErr error
	}{
		{
			name: "QinQ 802.1ad over 802.1Q",
			data: cat(ethHdr(etherQinQ, etherVLAN, etherIPv4), ipv4Hdr(6, 0, 5, 40), tcp),
			link: LinkEthernet, want: v4tcp, wantL3: 40,
		},
		{
			name: "old QinQ 0x9100",
			data: cat(ethHdr(etherQinQOld, etherVLAN, etherIPv4), ipv4Hdr(17, 0, 5, 28), udp),
			link: LinkEthernet, want: v4udp, wantL3: 28,
		},
		{
			name: "MPLS label stack",
			data: cat(ethHdr(etherMPLS), []byte{0, 1, 0, 64, 0, 2, 1, 64}, ipv4Hdr(17, 0, 5, 28), udp),
			link: LinkEthernet, want: v4udp, wantL3: 28,
		},
		{
			name: "MPLS pseudowire control word",
			data: cat(ethHdr(etherMPLS), []byte{0, 1, 1, 64}, make([]byte, 4), ethHdr(etherIPv4)),
			link: LinkEthernet, wantErr: ErrNotIP,
		},
		{
			name: "MPLS stack cut",
			data: cat(ethHdr(etherMPLS), []byte{0, 1, 0, 64}),
			link: LinkEthernet, wantErr: ErrHeaderTruncated,
		},
		{
			name: "Linux cooked capture",
			data: cat(make([]byte, 14), be16(etherIPv6), ipv6Hdr(17, 8), udp),
			link: LinkLinuxSLL, want: v6udp, wantL3: 48,
		},
		{
			name: "raw IPv4",
			data: cat(ipv4Hdr(6, 0, 5, 40), tcp),
			link: LinkRaw, want: v4tcp, wantL3: 40,
		},
		{
			name: "raw IPv6",
			data: cat(ipv6Hdr(6, 20), tcp),
			link: LinkRaw, want: v6tcp, wantL3: 60,
		},
		{
			name: "IPv6 where IPv4 was announced",
			data: cat(ipv6Hdr(6, 20), tcp),
			link: LinkIPv4, wantErr: ErrIPVersion,
		},
		{
			name: "version 5 in a raw packet",
			data: []byte{0x50, 0, 0, 20},
			link: LinkRaw, wantErr: ErrIPVersion,
		},
		{
			name: "IPv4 options",
			data: cat(ipv4Hdr(6, 0, 7, 48), tcp),
			link: LinkIPv4, want: v4tcp, wantL3: 48,
		},
		{
			name: "IPv4 header length below 5 words",
			data: cat([]byte{0x44}, ipv4Hdr(6, 0, 5, 40)[1:], tcp),
			link: LinkIPv4, wantErr: ErrIPHeaderLength,
		},
		{
			name: "IPv4 options cut after the addresses",
			data: ipv4Hdr(6, 0, 15, 80)[:30],
			link: LinkIPv4, want: Record{Src: v4a, Dst: v4b, Proto: ProtoTCP}, wantL3: 80,
		},
		{
			name: "first IPv4 fragment keeps its ports",
			data: cat(ethHdr(etherIPv4), ipv4Hdr(17, 0x2000, 5, 1500), udp),
			link: LinkEthernet, want: Record{Src: v4a, Dst: v4b, Proto: ProtoUDP, SrcPort: 5353, DstPort: 53, Fragment: true}, wantL3: 1500,
		},
		{
			name: "later IPv4 fragment has no ports",
			data: cat(ethHdr(etherIPv4), ipv4Hdr(6, 185, 5, 40), tcp),
			link: LinkEthernet, want: Record{Src: v4a, Dst: v4b, Proto: ProtoTCP, Fragment: true}, wantL3: 40,
		},
		{
			name: "segmentation offload leaves total length 0",
			data: cat(ipv4Hdr(6, 0, 5, 0), tcp),
			link: LinkIPv4, want: v4tcp, wantL3: 0,
		},
		{
			name: "TCP header cut keeps the addresses",
			data: cat(ipv4Hdr(6, 0, 5, 40), tcp[:10]),
			link: LinkIPv4, want: Record{Src: v4a, Dst: v4b, Proto: ProtoTCP}, wantL3: 40,
		},
		{
			name: "Ethernet padding is not transport",
			data: cat(ipv4Hdr(6, 0, 5, 30), tcp[:10], tcp[10:]),
			link: LinkIPv4, want: Record{Src: v4a, Dst: v4b, Proto: ProtoTCP}, wantL3: 30,
		},
		{
			name: "SCTP",
			data: cat(ipv4Hdr(132, 0, 5, 32), be16(2905), be16(2906), make([]byte, 8)),
			link: LinkIPv4, want: Record{Src: v4a, Dst: v4b, Proto: 132, SrcPort: 2905, DstPort: 2906}, wantL3: 32,
		},
		{
			name: "ICMP echo request",
			data: cat(ipv4Hdr(1, 0, 5, 28), []byte{8, 0, 0, 0, 0, 1, 0, 1}),
			link: LinkIPv4, want: Record{Src: v4a, Dst: v4b, Proto: ProtoICMP, ICMPType: 8}, wantL3: 28,
		},
		{
			name: "ICMPv6 destination unreachable",
			data: cat(ipv6Hdr(58, 8), []byte{1, 4, 0, 0, 0, 0, 0, 0}),
			link: LinkIPv6, want: Record{Src: v6a, Dst: v6b, Proto: ProtoICMPv6, ICMPType: 1, ICMPCode: 4}, wantL3: 48,
		},
		{
			name: "IPv6 hop-by-hop, routing and destination options",
			data: cat(ipv6Hdr(protoHopByHop, 60), extHdr(protoRouting, 0, 8), extHdr(protoDestOpts, 1, 16), extHdr(6, 1, 16), tcp),
			link: LinkIPv6, want: v6tcp, wantL3: 100,
		},
		{
			name: "IPv6 authentication header",
			data: cat(ipv6Hdr(protoAH, 44), extHdr(6, 4, 24), tcp),
			link: LinkIPv6, want: v6tcp, wantL3: 84,
		},
		{
			name: "first IPv6 fragment keeps its ports",
			data: cat(ipv6Hdr(protoFragment, 1400), fragHdr(17, 0, true), udp),
			link: LinkIPv6, want: Record{Src: v6a, Dst: v6b, Proto: ProtoUDP, SrcPort: 5353, DstPort: 53, Fragment: true}, wantL3: 1440,
		},
		{
			name: "later IPv6 fragment has no ports",
			data: cat(ipv6Hdr(protoFragment, 16), fragHdr(17, 181, false), udp),
			link: LinkIPv6, want: Record{Src: v6a, Dst: v6b, Proto: ProtoUDP, Fragment: true}, wantL3: 56,
		},
		{
			name: "IPv6 stops at ESP",
			data: cat(ipv6Hdr(50, 16), make([]byte, 16)),
			link: LinkIPv6, want: Record{Src: v6a, Dst: v6b, Proto: 50}, wantL3: 56,
		},
		{
			name: "IPv6 extension header cut",
			data: cat(ipv6Hdr(protoHopByHop, 64), extHdr(6, 0, 8)[:4]),
			link: LinkIPv6, want: Record{Src: v6a, Dst: v6b, Proto: protoHopByHop}, wantL3: 104,
		},
		{
			name: "IPv6 extension header longer than the packet",
			data: cat(ipv6Hdr(protoDestOpts, 8), extHdr(6, 9, 8), tcp),
			link: LinkIPv6, want: Record{Src: v6a, Dst: v6b, Proto: ProtoTCP}, wantL3: 48,
		},
		{
			name: "IPv6 jumbogram",
			data: cat(ipv6Hdr(protoHopByHop, 0), extHdr(17, 0, 8), udp),
			link: LinkIPv6, want: v6udp, wantL3: 0,
		},
		{
			name: "ARP",
			data: cat(ethHdr(0x0806), make([]byte, 28)),
			link: LinkEthernet, wantErr: ErrNotIP,
		},
		{
			name: "Ethernet header cut",
			data: make([]byte, 13),
			link: LinkEthernet, wantErr: ErrHeaderTruncated,
		},
		{
			name: "VLAN tag cut",
			data: cat(ethHdr(etherVLAN), []byte{0, 1}),
			link: LinkEthernet, wantErr: ErrHeaderTruncated,
		},
		{
			name: "IPv4 header cut",
			data: cat(ethHdr(etherIPv4), ipv4Hdr(6, 0, 5, 40)[:19]),
			link: LinkEthernet, wantErr: ErrHeaderTruncated,
		},
		{
			name: "IPv6 header cut",
			data: ipv6Hdr(6, 20)[:39],
			link: LinkIPv6, wantErr: ErrHeaderTruncated,
		},
		{
			name: "nothing after the Ethernet header",
			data: ethHdr(etherIPv4),
			link: LinkEthernet, wantErr: ErrHeaderTruncated,
		},
		{
			name: "Linux cooked header cut",
			data: make([]byte, 15),
			link: LinkLinuxSLL, wantErr: ErrHeaderTruncated,
		},
		{
			name: "empty raw packet",
			link: LinkRaw, wantErr: ErrHeaderTruncated,
		},
		{
			name: "unknown link type",
			data: cat(ipv4Hdr(6, 0, 5, 40), tcp),
			link: 0, wantErr: ErrLinkType,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Stale values from a previous packet must not survive.
			r := Record{Start: 1, End: 2, Packets: 3, Src: v4b, SrcPort: 9, TCPFlags: 0xff, ICMPType: 3, Fragment: true}
			l3Len, err := ParseHeader(tt.data, tt.link, &r)
			if err != tt.wantErr {
				t.Fatalf("error %v, want %v", err, tt.wantErr)
			}
			want := tt.want
			want.Start, want.End, want.Packets = 1, 2, 3
			if diff := cmp.Diff(r, want, cmpopts.EquateComparable(netip.Addr{})); diff != "" {
				t.Errorf("record (-got +want):\n%s", diff)
			}
			if l3Len != tt.wantL3 {
				t.Errorf("l3Len %d, want %d", l3Len, tt.wantL3)
			}
		})
	}
}

func TestL3Offset(t *testing.T) {
	tests := []struct {
		name    string
		data    []byte
		link    LinkType
		want    int
		wantErr error
	}{
		{name: "Ethernet", data: ethHdr(etherIPv6), link: LinkEthernet, want: 14},
		{name: "two VLAN tags", data: ethHdr(etherQinQ, etherVLAN, etherIPv4), link: LinkEthernet, want: 22},
		{name: "MPLS", data: cat(ethHdr(etherVLAN, etherMPLS), []byte{0, 1, 0, 64, 0, 2, 1, 64, 0x45}), link: LinkEthernet, want: 26},
		{name: "Linux cooked", data: cat(make([]byte, 14), be16(etherIPv4)), link: LinkLinuxSLL, want: 16},
		{name: "raw", link: LinkRaw, want: 0},
		{name: "ARP", data: ethHdr(0x0806), link: LinkEthernet, wantErr: ErrNotIP},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := L3Offset(tt.data, tt.link)
			if err != tt.wantErr || got != tt.want {
				t.Errorf("L3Offset = %d, %v; want %d, %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestUDPPayloadCaptures(t *testing.T) {
	tests := []struct {
		name     string
		file     string
		wantPort uint16
		wantOK   int
	}{
		{name: "sFlow over IPv4", file: "flow-exports/vendor/ndpi-sflow.pcap", wantPort: 6343, wantOK: 9},
		{name: "sFlow over IPv6", file: "flow-exports/vendor/sflow-print-v6.pcap", wantPort: 6343, wantOK: 25},
		{name: "IPFIX over IPv6", file: "flow-exports/vendor/pmacct-ta-111-ipfix-cisco-ipv6.pcap", wantPort: 9991, wantOK: 11},
		// 87 IPv4 + 4 IPv6 unfragmented datagrams (tshark); the GRE-tunnelled
		// UDP does not count, nor do the fragmented DNS answers.
		{name: "fragmented DNS answers", file: "attacks/ddos/amp.dns.RRSIG.fragmented.pcap", wantPort: 0, wantOK: 91},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok := 0
			for i, frame := range readFrames(t, tt.file) {
				src, port, payload, gotOK := UDPPayload(frame, LinkEthernet)
				pkt := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.Default)
				var udp *layers.UDP
				isUDP := false
				if ls := pkt.Layers(); pkt.NetworkLayer() != nil {
					for j, l := range ls[:len(ls)-1] {
						if l == pkt.NetworkLayer() {
							udp, isUDP = ls[j+1].(*layers.UDP)
						}
					}
				}
				if gotOK != isUDP {
					t.Fatalf("frame %d: ok %v, gopacket finds UDP %v", i, gotOK, isUDP)
				}
				if !gotOK {
					continue
				}
				ok++
				var wantSrc netip.Addr
				switch ip := pkt.NetworkLayer().(type) {
				case *layers.IPv4:
					wantSrc = netip.AddrFrom4([4]byte(ip.SrcIP.To4()))
				case *layers.IPv6:
					wantSrc = netip.AddrFrom16([16]byte(ip.SrcIP.To16()))
				}
				if src != wantSrc || port != uint16(udp.DstPort) || string(payload) != string(udp.Payload) {
					t.Errorf("frame %d: got %v :%d %d bytes, want %v :%d %d bytes", i, src, port, len(payload), wantSrc, udp.DstPort, len(udp.Payload))
				}
				if tt.wantPort != 0 && port != tt.wantPort {
					t.Errorf("frame %d: port %d, want %d", i, port, tt.wantPort)
				}
			}
			if ok != tt.wantOK {
				t.Errorf("%d UDP datagrams, want %d", ok, tt.wantOK)
			}
		})
	}
}

func TestUDPPayloadCrafted(t *testing.T) {
	body := []byte("payload!")
	tests := []struct {
		name        string
		data        []byte
		link        LinkType
		wantSrc     netip.Addr
		wantPort    uint16
		wantPayload []byte
		wantOK      bool
	}{
		{
			name: "IPv4 with Ethernet padding",
			data: cat(ethHdr(etherIPv4), ipv4Hdr(17, 0, 5, 36), udpHdr(1, 6343, 16), body, make([]byte, 10)),
			link: LinkEthernet, wantSrc: v4a, wantPort: 6343, wantPayload: body, wantOK: true,
		},
		{
			name: "IPv6 over a VLAN",
			data: cat(ethHdr(etherVLAN, etherIPv6), ipv6Hdr(17, 16), udpHdr(1, 2055, 16), body),
			link: LinkEthernet, wantSrc: v6a, wantPort: 2055, wantPayload: body, wantOK: true,
		},
		{name: "first fragment", data: cat(ipv4Hdr(17, 0x2000, 5, 36), udpHdr(1, 2055, 16), body), link: LinkRaw},
		{name: "TCP", data: cat(ipv4Hdr(6, 0, 5, 40), tcpHdr(1, 2055, TCPAck)), link: LinkRaw},
		{name: "cut by the snap length", data: cat(ipv4Hdr(17, 0, 5, 36), udpHdr(1, 2055, 16), body[:4]), link: LinkRaw},
		{name: "UDP length below 8", data: cat(ipv4Hdr(17, 0, 5, 36), udpHdr(1, 2055, 7), body), link: LinkRaw},
		{name: "UDP header cut", data: cat(ipv4Hdr(17, 0, 5, 28), udpHdr(1, 2055, 8)[:6]), link: LinkRaw},
		{name: "ARP", data: cat(ethHdr(0x0806), make([]byte, 28)), link: LinkEthernet},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, port, payload, ok := UDPPayload(tt.data, tt.link)
			if src != tt.wantSrc || port != tt.wantPort || string(payload) != string(tt.wantPayload) || ok != tt.wantOK {
				t.Errorf("UDPPayload = %v, %d, %q, %v; want %v, %d, %q, %v",
					src, port, payload, ok, tt.wantSrc, tt.wantPort, tt.wantPayload, tt.wantOK)
			}
		})
	}
}

func TestParseHeaderAllocs(t *testing.T) {
	frames := readFrames(t, "attacks/ddos/amp.dns.RRSIG.fragmented.pcap")
	var r Record
	allocs := testing.AllocsPerRun(10, func() {
		for _, f := range frames {
			_, _ = ParseHeader(f, LinkEthernet, &r)
			_, _, _, _ = UDPPayload(f, LinkEthernet)
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per run, want 0", allocs)
	}
}

// fuzzSeedFiles are the captures whose frames seed FuzzParseHeader.
var fuzzSeedFiles = []string{
	"attacks/scans/masscan_tcp_0_1000_20190821.pcap",
	"attacks/ddos/amp.dns.RRSIG.fragmented.pcap",
	"attacks/anomalies/tcp_one_way_all_flags.pcap",
	"attacks/anomalies/ip_fragmented_garbage.pcap",
	"attacks/scans/hs-icmpScan.pcap",
	"attacks/scans/tcp_scan.pcapng",
	"flow-exports/vendor/sflow-print-v6.pcap",
}

func FuzzParseHeader(f *testing.F) {
	for _, name := range fuzzSeedFiles {
		frames := readFrames(f, name)
		for i := 0; i < len(frames); i += 1 + len(frames)/8 {
			f.Add(frames[i], uint8(LinkEthernet))
			if off, err := L3Offset(frames[i], LinkEthernet); err == nil {
				f.Add(frames[i][off:], uint8(LinkRaw))
			}
		}
	}
	f.Fuzz(func(t *testing.T, data []byte, link uint8) {
		var r Record
		l3Len, err := ParseHeader(data, LinkType(link), &r)
		if l3Len < 0 {
			t.Fatalf("l3Len %d", l3Len)
		}
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) || de.Reason == "" {
				t.Fatalf("error %v is not a *DecodeError with a reason", err)
			}
			if r != (Record{}) {
				t.Fatalf("record %+v set on error %v", r, err)
			}
		} else {
			if !r.Src.IsValid() || !r.Dst.IsValid() || r.Src.Is4() != r.Dst.Is4() {
				t.Fatalf("addresses %v, %v", r.Src, r.Dst)
			}
			if r.Src.Is4() && l3Len > 0xffff || l3Len > 0xffff+40 {
				t.Fatalf("l3Len %d beyond the IP length field", l3Len)
			}
			hasPorts := r.Proto == ProtoTCP || r.Proto == ProtoUDP || r.Proto == protoSCTP
			if !hasPorts && (r.SrcPort != 0 || r.DstPort != 0) {
				t.Fatalf("ports %d, %d for protocol %d", r.SrcPort, r.DstPort, r.Proto)
			}
			if r.Proto != ProtoTCP && r.TCPFlags != 0 {
				t.Fatalf("TCP flags %#x for protocol %d", r.TCPFlags, r.Proto)
			}
		}
		src, port, payload, ok := UDPPayload(data, LinkType(link))
		if ok {
			if err != nil || r.Proto != ProtoUDP || r.Fragment || src != r.Src || port != r.DstPort {
				t.Fatalf("UDPPayload %v :%d, ParseHeader %+v, %v", src, port, r, err)
			}
			if len(payload) > 0 && !aliases(payload, data) {
				t.Fatal("payload does not alias data")
			}
		}
	})
}

// aliases reports whether p lies inside data.
func aliases(p, data []byte) bool {
	for i := range data {
		if &data[i] == &p[0] {
			return i+len(p) <= len(data)
		}
	}
	return false
}

// BenchmarkParseHeader parses real frames (VLAN-tagged TCP, fragmented DNS).
//
//	go test ./flow -run '^$' -bench ParseHeader -benchmem -count=6 -cpu 1,2 | tee new.txt
//	benchstat old.txt new.txt
func BenchmarkParseHeader(b *testing.B) {
	frames := append(readFrames(b, "attacks/scans/masscan_tcp_0_1000_20190821.pcap"),
		readFrames(b, "attacks/ddos/amp.dns.RRSIG.fragmented.pcap")...)
	var r Record
	n := 0
	for b.Loop() {
		for _, f := range frames {
			_, _ = ParseHeader(f, LinkEthernet, &r)
		}
		n += len(frames)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/packet")
}
