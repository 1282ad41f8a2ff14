package replay

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/flowsentry/flowsentry/flow"
)

// reference is what gopacket alone finds in an Ethernet capture: the
// replay's totals are checked against it.
type reference struct {
	Packets uint64 // packets in the file
	IPBytes uint64 // sum of the IP total lengths of the IP packets
	Seconds int    // distinct whole seconds holding packets
	// Ticked is the number of distinct seconds from one holding packets
	// up to 11 s after it: the seconds replay ticks at, with the default
	// rates window of 10 s.
	Ticked int
	Last   int64 // time of the last packet, Unix ns
}

func ipTotals(t testing.TB, path string) reference {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var src gopacket.PacketDataSource
	if r, err := pcapgo.NewReader(bytes.NewReader(raw)); err == nil {
		src = r
	} else if r, err := pcapgo.NewNgReader(bytes.NewReader(raw), pcapgo.DefaultNgReaderOptions); err == nil {
		src = r
	} else {
		t.Fatalf("%s: gopacket reads neither pcap nor pcapng: %v", path, err)
	}
	var (
		eth     layers.Ethernet
		dot1q   layers.Dot1Q
		ip4     layers.IPv4
		ip6     layers.IPv6
		decoded []gopacket.LayerType
	)
	parser := gopacket.NewDecodingLayerParser(layers.LayerTypeEthernet, &eth, &dot1q, &ip4, &ip6)
	parser.IgnoreUnsupported = true
	var ref reference
	seconds := map[int64]bool{}
	for {
		data, ci, err := src.ReadPacketData()
		if errors.Is(err, io.EOF) {
			ref.Seconds = len(seconds)
			ticked := map[int64]bool{}
			for s := range seconds {
				for d := range int64(12) {
					ticked[s+d] = true
				}
			}
			ref.Ticked = len(ticked)
			return ref
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		ref.Packets++
		ref.Last = max(ref.Last, ci.Timestamp.UnixNano())
		seconds[ci.Timestamp.Unix()] = true
		_ = parser.DecodeLayers(data, &decoded) // stops at the first layer it does not know
		for _, l := range decoded {
			switch l {
			case layers.LayerTypeIPv4:
				ref.IPBytes += uint64(ip4.Length)
			case layers.LayerTypeIPv6:
				ref.IPBytes += uint64(ip6.Length) + 40
			}
		}
	}
}

// testSink records what a replay hands over and checks the Sink contract.
type testSink struct {
	t        testing.TB
	records  []flow.Record
	counters int
	advances []int64
	// polls are the times of Poll; clock the last time of Advance or
	// Poll, which must never decrease.
	polls []int64
	clock int64
	// cuts is, for each Poll and Advance, the number of records handed
	// over before it, and times its time.
	cuts  []int
	times []int64
}

func (s *testSink) Process(b *flow.Batch) {
	if len(b.Records) > flow.BatchSize {
		s.t.Errorf("batch of %d records, want at most %d", len(b.Records), flow.BatchSize)
	}
	if len(b.Records)+len(b.Counters) == 0 {
		s.t.Error("empty batch")
	}
	s.records = append(s.records, b.Records...)
	s.counters += len(b.Counters)
	b.Release()
}

func (s *testSink) Advance(now int64) {
	if n := len(s.advances); n > 0 && now < s.advances[n-1] {
		s.t.Errorf("Advance(%d) after Advance(%d): the clock went back", now, s.advances[n-1])
	}
	s.moved("Advance", now)
	s.advances = append(s.advances, now)
}

func (s *testSink) Poll(now int64) {
	if len(s.advances) == 0 {
		s.t.Errorf("Poll(%d) before any Advance", now)
	}
	s.moved("Poll", now)
	s.polls = append(s.polls, now)
}

// moved checks that the clock does not go back across Advance and Poll.
func (s *testSink) moved(op string, now int64) {
	if len(s.advances)+len(s.polls) == 0 {
		s.clock = now // a new Run
	}
	if now < s.clock {
		s.t.Errorf("%s(%d) after the clock reached %d: the clock went back", op, now, s.clock)
	}
	s.clock = now
	s.cuts = append(s.cuts, len(s.records))
	s.times = append(s.times, now)
}

// totals sums the records' packets and bytes.
func (s *testSink) totals() (packets, bytes uint64) {
	for _, r := range s.records {
		packets += r.Packets
		bytes += r.Bytes
	}
	return packets, bytes
}

// synPacket is an IPv4 TCP SYN (no link-layer header) from src to dst:25.
func synPacket(t testing.TB, src, dst string, sport uint16) []byte {
	t.Helper()
	ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolTCP,
		SrcIP: net.ParseIP(src).To4(), DstIP: net.ParseIP(dst).To4()}
	tcp := &layers.TCP{SrcPort: layers.TCPPort(sport), DstPort: 25, SYN: true, Window: 1024}
	if err := tcp.SetNetworkLayerForChecksum(ip); err != nil {
		t.Fatal(err)
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ip, tcp); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// withLink puts a link-layer header of type link in front of an IPv4
// packet.
func withLink(t testing.TB, link layers.LinkType, ip []byte) []byte {
	t.Helper()
	switch link {
	case layers.LinkTypeRaw, layers.LinkTypeIPv4:
		return ip
	case layers.LinkTypeEthernet:
		return append([]byte{0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 6, 0x08, 0x00}, ip...)
	case layers.LinkTypeLinuxSLL:
		// Packet type "to us", ARPHRD_ETHER, 6-byte address, protocol IPv4.
		return append([]byte{0, 0, 0, 1, 0, 6, 0, 1, 2, 3, 4, 5, 0, 0, 0x08, 0x00}, ip...)
	case layers.LinkTypePPP:
		return append([]byte{0xff, 0x03, 0x00, 0x21}, ip...)
	}
	t.Fatalf("no test header for link type %v", link)
	return nil
}

// stamped is a packet and its capture time for the capture writers.
type stamped struct {
	at   time.Duration // after tBase
	data []byte
}

// tBase is the capture time synthetic captures start at.
var tBase = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

// writePcap writes a pcap file of link type link.
func writePcap(t testing.TB, link layers.LinkType, pkts []stamped) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := pcapgo.NewWriterNanos(&buf)
	if err := w.WriteFileHeader(65535, link); err != nil {
		t.Fatal(err)
	}
	for _, p := range pkts {
		ci := gopacket.CaptureInfo{Timestamp: tBase.Add(p.at), CaptureLength: len(p.data), Length: len(p.data)}
		if err := w.WritePacket(ci, p.data); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

// writePcapng writes a pcapng file with one interface per link type; the
// packets of pkts[i] go to interface i.
func writePcapng(t testing.TB, links []layers.LinkType, pkts [][]stamped) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := pcapgo.NewNgWriterInterface(&buf, pcapgo.NgInterface{LinkType: links[0], SnapLength: 65535}, pcapgo.DefaultNgWriterOptions)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range links[1:] {
		if _, err := w.AddInterface(pcapgo.NgInterface{LinkType: l, SnapLength: 65535}); err != nil {
			t.Fatal(err)
		}
	}
	for i, ps := range pkts {
		for _, p := range ps {
			ci := gopacket.CaptureInfo{Timestamp: tBase.Add(p.at), CaptureLength: len(p.data), Length: len(p.data), InterfaceIndex: i}
			if err := w.WritePacket(ci, p.data); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// udpPacket is an IPv4 UDP datagram (no link-layer header).
func udpPacket(t testing.TB, src, dst string, dport uint16, payload []byte) []byte {
	t.Helper()
	ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolUDP,
		SrcIP: net.ParseIP(src).To4(), DstIP: net.ParseIP(dst).To4()}
	udp := &layers.UDP{SrcPort: 40000, DstPort: layers.UDPPort(dport)}
	if err := udp.SetNetworkLayerForChecksum(ip); err != nil {
		t.Fatal(err)
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ip, udp, gopacket.Payload(payload)); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
