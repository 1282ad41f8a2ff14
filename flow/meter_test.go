package flow

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/flowsentry/flowsentry/internal/testcaptures"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// t0 is an arbitrary capture time the meter tests count from.
const t0 = int64(1_619_605_821_000_000_000)

func at(sec float64) int64 { return t0 + int64(sec*float64(time.Second)) }

var (
	macA = net.HardwareAddr{0, 1, 2, 3, 4, 5}
	macB = net.HardwareAddr{0, 1, 2, 3, 4, 6}
)

// frame serialises an Ethernet frame around the given layers.
func frame(t testing.TB, ethType layers.EthernetType, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	for _, l := range ls {
		if tr, ok := l.(interface {
			SetNetworkLayerForChecksum(gopacket.NetworkLayer) error
		}); ok {
			for _, n := range ls {
				if nl, ok := n.(gopacket.NetworkLayer); ok {
					if err := tr.SetNetworkLayerForChecksum(nl); err != nil {
						t.Fatal(err)
					}
				}
			}
		}
	}
	buf := gopacket.NewSerializeBuffer()
	all := append([]gopacket.SerializableLayer{&layers.Ethernet{SrcMAC: macA, DstMAC: macB, EthernetType: ethType}}, ls...)
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, all...); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func ip4(src, dst string, proto layers.IPProtocol) *layers.IPv4 {
	return &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: proto,
		SrcIP: net.ParseIP(src).To4(), DstIP: net.ParseIP(dst).To4()}
}

func tcp4(t testing.TB, src, dst string, sport, dport uint16, flags uint8, payload int) []byte {
	t.Helper()
	tcp := &layers.TCP{SrcPort: layers.TCPPort(sport), DstPort: layers.TCPPort(dport), Window: 1024,
		FIN: flags&TCPFin != 0, SYN: flags&TCPSyn != 0, RST: flags&TCPRst != 0, PSH: flags&TCPPsh != 0,
		ACK: flags&TCPAck != 0, URG: flags&TCPUrg != 0, ECE: flags&TCPEce != 0, CWR: flags&TCPCwr != 0}
	return frame(t, layers.EthernetTypeIPv4, ip4(src, dst, layers.IPProtocolTCP), tcp, gopacket.Payload(make([]byte, payload)))
}

func udp6(t testing.TB, src, dst string, sport, dport uint16, payload int) []byte {
	t.Helper()
	ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolUDP,
		SrcIP: net.ParseIP(src), DstIP: net.ParseIP(dst)}
	udp := &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: layers.UDPPort(dport)}
	return frame(t, layers.EthernetTypeIPv6, ip, udp, gopacket.Payload(make([]byte, payload)))
}

func icmp4(t testing.TB, src, dst string, typ, code uint8) []byte {
	t.Helper()
	icmp := &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(typ, code)}
	return frame(t, layers.EthernetTypeIPv4, ip4(src, dst, layers.IPProtocolICMPv4), icmp, gopacket.Payload(make([]byte, 56)))
}

func icmp6(t testing.TB, src, dst string, typ, code uint8) []byte {
	t.Helper()
	ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolICMPv6,
		SrcIP: net.ParseIP(src), DstIP: net.ParseIP(dst)}
	icmp := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(typ, code)}
	return frame(t, layers.EthernetTypeIPv6, ip, icmp, gopacket.Payload(make([]byte, 12)))
}

// fragment4 is an IPv4 fragment of a UDP datagram: the first one (offset 0,
// MF set) carries the UDP header, later ones only data.
func fragment4(t testing.TB, src, dst string, offset uint16, more bool, payload int) []byte {
	t.Helper()
	ip := ip4(src, dst, layers.IPProtocolUDP)
	ip.FragOffset = offset
	if more {
		ip.Flags = layers.IPv4MoreFragments
	}
	if offset == 0 {
		udp := &layers.UDP{SrcPort: 53, DstPort: 4444, Length: 3000}
		return frame(t, layers.EthernetTypeIPv4, ip, udp, gopacket.Payload(make([]byte, payload)))
	}
	return frame(t, layers.EthernetTypeIPv4, ip, gopacket.Payload(make([]byte, payload)))
}

func arp(t testing.TB) []byte {
	t.Helper()
	return frame(t, layers.EthernetTypeARP, &layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4,
		HwAddressSize: 6, ProtAddressSize: 4, Operation: layers.ARPRequest,
		SourceHwAddress: macA, SourceProtAddress: []byte{10, 0, 0, 1},
		DstHwAddress: make([]byte, 6), DstProtAddress: []byte{10, 0, 0, 2}})
}

// rec is a meter record with the fields every meter record shares set.
func rec(src, dst string, proto uint8, sport, dport uint16, start, end float64, packets, bytes uint64) Record {
	return Record{
		Start: at(start), End: at(end),
		Src: netip.MustParseAddr(src), Dst: netip.MustParseAddr(dst),
		SrcPort: sport, DstPort: dport, Proto: proto,
		Packets: packets, Bytes: bytes, SamplingRate: 1, Source: SourceMeter,
	}
}

func with(r Record, f func(*Record)) Record {
	f(&r)
	return r
}

func TestMeter(t *testing.T) {
	// step is one call on the meter: a packet at a time (errReason is
	// then the expected error reason, "" for none), an Expire at a time or
	// a Report (want then lists what they return).
	type step struct {
		at        float64
		pkt       []byte
		expire    bool
		report    bool
		errReason string
		want      []Record
	}
	const a, b = "192.0.2.1", "198.51.100.7"
	syn := tcp4(t, a, b, 40000, 80, TCPSyn, 0)
	ack := tcp4(t, a, b, 40000, 80, TCPAck, 100)
	finAck := tcp4(t, a, b, 40000, 80, TCPFin|TCPAck, 0)
	reply := tcp4(t, b, a, 80, 40000, TCPSyn|TCPAck, 0)
	other := func(port uint16) []byte { return tcp4(t, a, b, port, 80, TCPSyn, 0) }
	continued := func(r Record) Record { r.Continued = true; return r }

	cases := []struct {
		name      string
		cfg       MeterConfig
		steps     []step
		wantFlush []Record
		wantStats MeterStats
	}{
		{
			name: "flags are OR-ed and each direction is a flow",
			steps: []step{
				{at: 0, pkt: syn}, {at: 0.5, pkt: reply}, {at: 1, pkt: ack}, {at: 2, pkt: finAck},
				{at: 10, expire: true},
			},
			wantFlush: []Record{
				with(rec(a, b, ProtoTCP, 40000, 80, 0, 2, 3, 40+140+40), func(r *Record) { r.TCPFlags = TCPSyn | TCPAck | TCPFin }),
				with(rec(b, a, ProtoTCP, 80, 40000, 0.5, 0.5, 1, 40), func(r *Record) { r.TCPFlags = TCPSyn | TCPAck }),
			},
			wantStats: MeterStats{Packets: 4},
		},
		{
			name: "inactive timeout on the capture clock",
			steps: []step{
				{at: 0, pkt: syn}, {at: 5, pkt: ack},
				{at: 19.9, expire: true},
				{at: 20, expire: true, want: []Record{
					with(rec(a, b, ProtoTCP, 40000, 80, 0, 5, 2, 180), func(r *Record) { r.TCPFlags = TCPSyn | TCPAck }),
				}},
				{at: 21, pkt: finAck},
			},
			wantFlush: []Record{
				with(rec(a, b, ProtoTCP, 40000, 80, 21, 21, 1, 40), func(r *Record) { r.TCPFlags = TCPFin | TCPAck }),
			},
			wantStats: MeterStats{Packets: 3},
		},
		{
			name: "active timeout splits a long flow",
			cfg:  MeterConfig{ActiveTimeout: 30 * time.Second, InactiveTimeout: 15 * time.Second},
			steps: []step{
				{at: 0, pkt: syn}, {at: 10, pkt: ack}, {at: 20, pkt: ack},
				{at: 29, expire: true},
				{at: 30, expire: true, want: []Record{
					with(rec(a, b, ProtoTCP, 40000, 80, 0, 20, 3, 320), func(r *Record) { r.TCPFlags = TCPSyn | TCPAck }),
				}},
				{at: 31, pkt: ack}, {at: 40, pkt: finAck},
			},
			wantFlush: []Record{
				with(rec(a, b, ProtoTCP, 40000, 80, 31, 40, 2, 180), func(r *Record) { r.TCPFlags = TCPFin | TCPAck }),
			},
			wantStats: MeterStats{Packets: 5},
		},
		{
			name: "fragments: the first keeps the ports, the others make a port-0 flow",
			steps: []step{
				{at: 0, pkt: fragment4(t, b, a, 0, true, 1472)},
				{at: 0, pkt: fragment4(t, b, a, 185, true, 1480)},
				{at: 0.1, pkt: fragment4(t, b, a, 370, false, 40)},
			},
			wantFlush: []Record{
				with(rec(b, a, ProtoUDP, 53, 4444, 0, 0, 1, 1500), func(r *Record) { r.Fragment = true }),
				with(rec(b, a, ProtoUDP, 0, 0, 0, 0.1, 2, 1500+60), func(r *Record) { r.Fragment = true }),
			},
			wantStats: MeterStats{Packets: 3},
		},
		{
			name: "ICMP type and code tell flows apart",
			steps: []step{
				{at: 0, pkt: icmp4(t, a, b, 8, 0)}, {at: 1, pkt: icmp4(t, a, b, 8, 0)},
				{at: 2, pkt: icmp4(t, a, b, 3, 3)},
				{at: 3, pkt: icmp6(t, "2001:db8::1", "2001:db8::2", 128, 0)},
			},
			wantFlush: []Record{
				with(rec(a, b, ProtoICMP, 0, 0, 0, 1, 2, 2*84), func(r *Record) { r.ICMPType = 8 }),
				with(rec(a, b, ProtoICMP, 0, 0, 2, 2, 1, 84), func(r *Record) { r.ICMPType, r.ICMPCode = 3, 3 }),
				with(rec("2001:db8::1", "2001:db8::2", ProtoICMPv6, 0, 0, 3, 3, 1, 40+4+12), func(r *Record) { r.ICMPType = 128 }),
			},
			wantStats: MeterStats{Packets: 4},
		},
		{
			name: "IPv6 counts the payload length plus the fixed header",
			steps: []step{
				{at: 0, pkt: udp6(t, "2001:db8::1", "2001:db8::53", 5353, 53, 100)},
				{at: 0.2, pkt: udp6(t, "2001:db8::1", "2001:db8::53", 5353, 53, 20)},
			},
			wantFlush: []Record{
				rec("2001:db8::1", "2001:db8::53", ProtoUDP, 5353, 53, 0, 0.2, 2, 148+68),
			},
			wantStats: MeterStats{Packets: 2},
		},
		{
			name: "the least recently seen flow is evicted when the table is full",
			cfg:  MeterConfig{MaxFlows: 2},
			steps: []step{
				{at: 0, pkt: other(1)}, {at: 1, pkt: other(2)}, {at: 2, pkt: other(1)},
				{at: 3, pkt: other(3)},
				{at: 3, expire: true, want: []Record{
					with(rec(a, b, ProtoTCP, 2, 80, 1, 1, 1, 40), func(r *Record) { r.TCPFlags = TCPSyn }),
				}},
			},
			wantFlush: []Record{
				with(rec(a, b, ProtoTCP, 1, 80, 0, 2, 2, 80), func(r *Record) { r.TCPFlags = TCPSyn }),
				with(rec(a, b, ProtoTCP, 3, 80, 3, 3, 1, 40), func(r *Record) { r.TCPFlags = TCPSyn }),
			},
			wantStats: MeterStats{Packets: 4, Evicted: 1},
		},
		{
			name: "non-IP and truncated packets are skipped",
			steps: []step{
				{at: 0, pkt: arp(t), errReason: "not_ip"},
				{at: 0, pkt: syn[:20], errReason: "header_truncated"},
				{at: 0, pkt: nil, errReason: "header_truncated"},
				{at: 1, pkt: syn},
			},
			wantFlush: []Record{
				with(rec(a, b, ProtoTCP, 40000, 80, 1, 1, 1, 40), func(r *Record) { r.TCPFlags = TCPSyn }),
			},
			wantStats: MeterStats{Packets: 1, Skipped: 3},
		},
		{
			name: "reports carry the packets since the last one; the timeout emits nothing more",
			steps: []step{
				{at: 0, pkt: syn}, {at: 0.5, pkt: ack},
				{report: true, want: []Record{
					with(rec(a, b, ProtoTCP, 40000, 80, 0, 0.5, 2, 180), func(r *Record) { r.TCPFlags = TCPSyn | TCPAck }),
				}},
				{at: 1.5, pkt: ack},
				{report: true, want: []Record{
					continued(with(rec(a, b, ProtoTCP, 40000, 80, 1.5, 1.5, 1, 140), func(r *Record) { r.TCPFlags = TCPSyn | TCPAck })),
				}},
				{report: true},
				{at: 16.4, expire: true},
				{at: 16.5, expire: true},
			},
			wantStats: MeterStats{Packets: 3},
		},
		{
			name: "a reported flow's later packets come at the flush",
			steps: []step{
				{at: 0, pkt: syn},
				{report: true, want: []Record{
					with(rec(a, b, ProtoTCP, 40000, 80, 0, 0, 1, 40), func(r *Record) { r.TCPFlags = TCPSyn }),
				}},
				{at: 2, pkt: finAck}, {at: 3, pkt: finAck},
			},
			wantFlush: []Record{
				continued(with(rec(a, b, ProtoTCP, 40000, 80, 2, 3, 2, 80), func(r *Record) { r.TCPFlags = TCPSyn | TCPFin | TCPAck })),
			},
			wantStats: MeterStats{Packets: 3},
		},
		{
			name: "a report covers the flows with new packets, most recent first",
			cfg:  MeterConfig{ActiveTimeout: 30 * time.Second},
			steps: []step{
				{at: 0, pkt: other(1)}, {at: 0.2, pkt: other(2)}, {at: 0.4, pkt: other(3)},
				{report: true, want: []Record{
					with(rec(a, b, ProtoTCP, 3, 80, 0.4, 0.4, 1, 40), func(r *Record) { r.TCPFlags = TCPSyn }),
					with(rec(a, b, ProtoTCP, 2, 80, 0.2, 0.2, 1, 40), func(r *Record) { r.TCPFlags = TCPSyn }),
					with(rec(a, b, ProtoTCP, 1, 80, 0, 0, 1, 40), func(r *Record) { r.TCPFlags = TCPSyn }),
				}},
				{at: 1, pkt: other(1)}, {at: 1.1, pkt: other(1)},
				{report: true, want: []Record{
					continued(with(rec(a, b, ProtoTCP, 1, 80, 1, 1.1, 2, 80), func(r *Record) { r.TCPFlags = TCPSyn })),
				}},
				// The active timeout runs from the flow's first packet,
				// not from its last report.
				{at: 29, pkt: other(1)},
				{at: 30, expire: true, want: []Record{
					continued(with(rec(a, b, ProtoTCP, 1, 80, 29, 29, 1, 40), func(r *Record) { r.TCPFlags = TCPSyn })),
				}},
			},
			wantStats: MeterStats{Packets: 6},
		},
		{
			name: "packets out of time order widen the flow",
			steps: []step{
				{at: 5, pkt: ack}, {at: 4, pkt: syn}, {at: 6, pkt: finAck},
			},
			wantFlush: []Record{
				with(rec(a, b, ProtoTCP, 40000, 80, 4, 6, 3, 220), func(r *Record) { r.TCPFlags = TCPSyn | TCPAck | TCPFin }),
			},
			wantStats: MeterStats{Packets: 3},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := NewMeter(c.cfg)
			for i, s := range c.steps {
				if s.expire || s.report {
					var got []Record
					if s.expire {
						got = m.Expire(at(s.at), nil)
					} else {
						got = m.Report(nil)
					}
					if diff := cmp.Diff(got, s.want, cmpopts.EquateEmpty(), cmpopts.EquateComparable(netip.Addr{})); diff != "" {
						t.Errorf("step %d: Expire(%v s) or Report (-got +want):\n%s", i, s.at, diff)
					}
					continue
				}
				err := m.Packet(at(s.at), s.pkt, LinkEthernet)
				var reason string
				if de := (*DecodeError)(nil); errors.As(err, &de) {
					reason = de.Reason
				} else if err != nil {
					t.Fatalf("step %d: Packet returned %T %v, want a *DecodeError", i, err, err)
				}
				if reason != s.errReason {
					t.Errorf("step %d: Packet error reason %q, want %q", i, reason, s.errReason)
				}
			}
			got := m.Flush(nil)
			if diff := cmp.Diff(got, c.wantFlush, cmpopts.EquateEmpty(), cmpopts.EquateComparable(netip.Addr{})); diff != "" {
				t.Errorf("Flush (-got +want):\n%s", diff)
			}
			if diff := cmp.Diff(m.Stats(), c.wantStats); diff != "" {
				t.Errorf("Stats (-got +want):\n%s", diff)
			}
			if more := m.Flush(nil); len(more) != 0 {
				t.Errorf("second Flush returned %d records, want none", len(more))
			}
		})
	}
}

func TestNewMeterConfig(t *testing.T) {
	def := DefaultMeterConfig()
	cases := []struct {
		name string
		cfg  MeterConfig
		want MeterConfig
	}{
		{"zero takes the defaults", MeterConfig{}, def},
		{"negative takes the defaults", MeterConfig{ActiveTimeout: -1, InactiveTimeout: -1, MaxFlows: -1}, def},
		{"set values are kept", MeterConfig{ActiveTimeout: time.Minute, InactiveTimeout: time.Second, MaxFlows: 10},
			MeterConfig{ActiveTimeout: time.Minute, InactiveTimeout: time.Second, MaxFlows: 10}},
		{"MaxFlows is capped", MeterConfig{MaxFlows: 1 << 40},
			MeterConfig{ActiveTimeout: def.ActiveTimeout, InactiveTimeout: def.InactiveTimeout, MaxFlows: 1<<31 - 1}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if diff := cmp.Diff(NewMeter(c.cfg).Config(), c.want); diff != "" {
				t.Errorf("(-got +want):\n%s", diff)
			}
		})
	}
}

// TestMeterCapture meters a real SYN flood and checks the totals against an
// independent count made with gopacket, and the number of flows against
// softflowd's export of the same file.
func TestMeterCapture(t *testing.T) {
	path := filepath.Join(testcaptures.Dir(t), "attacks", "ddos", "pkt.TCP.synflood.spoofed.pcap")
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	m := NewMeter(DefaultMeterConfig())
	var (
		out         []Record
		wantPackets uint64
		wantBytes   uint64
		nextExpiry  int64
		eth         layers.Ethernet
		ip          layers.IPv4
		decoded     []gopacket.LayerType
	)
	parser := gopacket.NewDecodingLayerParser(layers.LayerTypeEthernet, &eth, &ip)
	parser.IgnoreUnsupported = true // stop after the IP header
	for {
		data, ci, err := r.ReadPacketData()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		ts := ci.Timestamp.UnixNano()
		if ts >= nextExpiry {
			out = m.Expire(ts, out)
			nextExpiry = ts - ts%int64(time.Second) + int64(time.Second)
		}
		if err := m.Packet(ts, data, LinkEthernet); err != nil {
			t.Fatalf("packet at %v: %v", ci.Timestamp, err)
		}
		if err := parser.DecodeLayers(data, &decoded); err != nil {
			t.Fatalf("gopacket: %v", err)
		}
		wantPackets++
		wantBytes += uint64(ip.Length)
	}
	out = m.Flush(out)

	var gotPackets, gotBytes uint64
	for _, r := range out {
		gotPackets += r.Packets
		gotBytes += r.Bytes
	}
	// softflowd (README of the captures) makes 37,669 flows from this file:
	// that is the number of distinct 5-tuples, and no 5-tuple repeats after
	// more than a second, so the 15 s inactive timeout splits none of them.
	got := struct{ Packets, Bytes, Flows uint64 }{gotPackets, gotBytes, uint64(len(out))}
	want := struct{ Packets, Bytes, Flows uint64 }{37841, wantBytes, 37669}
	if wantPackets != 37841 {
		t.Errorf("gopacket read %d packets, want 37841", wantPackets)
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("totals (-got +want):\n%s", diff)
	}
}

// FuzzMeter meters arbitrary bytes as a packet twice, then once cut in
// half. Whatever the input: no panic, a rejected packet is a *DecodeError
// and changes nothing, and the flushed flows hold every accepted packet,
// each with at most the largest IP length (IPv6 payload length + 40).
func FuzzMeter(f *testing.F) {
	f.Add(tcp4(f, "192.0.2.1", "198.51.100.7", 1, 2, TCPSyn, 10), uint8(LinkEthernet))
	f.Add(fragment4(f, "192.0.2.1", "198.51.100.7", 185, true, 8), uint8(LinkEthernet))
	f.Add(udp6(f, "2001:db8::1", "2001:db8::2", 1, 2, 3)[14:], uint8(LinkIPv6))
	f.Add(arp(f), uint8(LinkEthernet))
	f.Fuzz(func(t *testing.T, data []byte, link uint8) {
		m := NewMeter(MeterConfig{MaxFlows: 2})
		var accepted uint64
		for i, p := range [][]byte{data, data, data[:len(data)/2]} {
			before := m.Stats()
			err := m.Packet(t0+int64(i), p, LinkType(link))
			after := m.Stats()
			if err != nil {
				if _, ok := err.(*DecodeError); !ok {
					t.Fatalf("error %T %v, want a *DecodeError", err, err)
				}
				if after.Packets != before.Packets || after.Flows != before.Flows {
					t.Fatalf("rejected packet changed the meter: %+v -> %+v", before, after)
				}
				continue
			}
			accepted++
		}
		var packets uint64
		for _, r := range m.Flush(nil) {
			packets += r.Packets
			if r.Bytes > r.Packets*(65535+40) || r.Source != SourceMeter || r.SamplingRate != 1 {
				t.Fatalf("record %+v", r)
			}
		}
		if packets != accepted || m.Stats().Packets != accepted {
			t.Fatalf("flows hold %d packets, stats say %d, want %d", packets, m.Stats().Packets, accepted)
		}
	})
}

// BenchmarkMeterPacket measures Packet on Ethernet/IPv4/TCP SYN frames:
// "hit" adds to 4,096 existing flows, "churn" makes a new flow with every
// packet, cycling through 4,096 flows in a table bounded to 2,048, so each
// packet also evicts one.
// Both must report 0 allocs/op.
//
//	go test ./flow -run '^$' -bench BenchmarkMeterPacket -benchmem -count=6 -cpu 1,2 | tee new.txt
//	benchstat old.txt new.txt
func BenchmarkMeterPacket(b *testing.B) {
	const flows = 4096
	pkts := make([][]byte, flows)
	for i := range pkts {
		pkts[i] = tcp4(b, net.IPv4(10, byte(i>>16), byte(i>>8), byte(i)).String(), "10.10.10.10", 1024+uint16(i%1000), 25565, TCPSyn, 0)
	}
	b.Run("hit", func(b *testing.B) {
		m := NewMeter(MeterConfig{MaxFlows: flows})
		var out []Record
		ts := t0
		for _, p := range pkts {
			if err := m.Packet(ts, p, LinkEthernet); err != nil {
				b.Fatal(err)
			}
		}
		i := 0
		for b.Loop() {
			ts += 1000
			if err := m.Packet(ts, pkts[i%flows], LinkEthernet); err != nil {
				b.Fatal(err)
			}
			i++
			if i%flows == 0 {
				out = m.Expire(ts, out[:0])
			}
		}
	})
	b.Run("churn", func(b *testing.B) {
		m := NewMeter(MeterConfig{MaxFlows: flows / 2})
		var out []Record
		ts := t0
		i := 0
		for b.Loop() {
			ts += 1000
			if err := m.Packet(ts, pkts[i%flows], LinkEthernet); err != nil {
				b.Fatal(err)
			}
			i++
			if i%flows == 0 {
				out = m.Expire(ts, out[:0])
			}
		}
	})
}
