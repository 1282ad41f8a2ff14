package replaytest

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// Packet is one packet a test puts in a capture.
type Packet struct {
	// Time is when it was captured.
	Time time.Time
	// Src and Dst are the addresses (IPv4 or IPv6 alike).
	Src, Dst netip.Addr
	// Proto is the IP protocol: TCP (6) and UDP (17) get their header,
	// any other protocol a bare payload.
	Proto            uint8
	SrcPort, DstPort uint16
	// Flags are the TCP flags (flow.TCPSyn …).
	Flags uint8
	// Payload is the number of payload bytes (zeros).
	Payload int
	// Data, when set, is the payload itself (an export datagram to a
	// collector port, say); Payload is then ignored.
	Data []byte
	// MoreFragments and FragOffset (in 8-byte units) make an IPv4
	// fragment; a fragment with an offset carries no transport header.
	MoreFragments bool
	FragOffset    uint16
}

// Capture gathers packets and writes them as an Ethernet pcap file.
type Capture struct {
	Packets []Packet
}

// Add appends packets.
func (c *Capture) Add(p ...Packet) { c.Packets = append(c.Packets, p...) }

// Write writes the capture into the test's temporary folder and returns
// its path.
func (c *Capture) Write(tb testing.TB) string {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "capture.pcap")
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	w := pcapgo.NewWriter(f)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		tb.Fatal(err)
	}
	buf := gopacket.NewSerializeBuffer()
	for i, p := range c.Packets {
		if err := encode(buf, p); err != nil {
			tb.Fatalf("packet %d: %v", i, err)
		}
		data := buf.Bytes()
		ci := gopacket.CaptureInfo{Timestamp: p.Time, CaptureLength: len(data), Length: len(data)}
		if err := w.WritePacket(ci, data); err != nil {
			tb.Fatal(err)
		}
	}
	return path
}

func encode(buf gopacket.SerializeBuffer, p Packet) error {
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	eth := &layers.Ethernet{SrcMAC: []byte{2, 0, 0, 0, 0, 1}, DstMAC: []byte{2, 0, 0, 0, 0, 2}}
	var ip gopacket.SerializableLayer
	var netLayer gopacket.NetworkLayer
	proto := layers.IPProtocol(p.Proto)
	if p.Src.Is4() {
		eth.EthernetType = layers.EthernetTypeIPv4
		v4 := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: proto, SrcIP: p.Src.AsSlice(), DstIP: p.Dst.AsSlice(), FragOffset: p.FragOffset}
		if p.MoreFragments {
			v4.Flags = layers.IPv4MoreFragments
		}
		ip, netLayer = v4, v4
	} else {
		eth.EthernetType = layers.EthernetTypeIPv6
		v6 := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: proto, SrcIP: p.Src.AsSlice(), DstIP: p.Dst.AsSlice()}
		ip, netLayer = v6, v6
	}
	payload := gopacket.Payload(make([]byte, p.Payload))
	if p.Data != nil {
		payload = gopacket.Payload(p.Data)
	}
	list := []gopacket.SerializableLayer{eth, ip}
	switch {
	case p.FragOffset != 0:
	case p.Proto == 6:
		tcp := &layers.TCP{SrcPort: layers.TCPPort(p.SrcPort), DstPort: layers.TCPPort(p.DstPort), Window: 1024, DataOffset: 5,
			FIN: p.Flags&0x01 != 0, SYN: p.Flags&0x02 != 0, RST: p.Flags&0x04 != 0, PSH: p.Flags&0x08 != 0,
			ACK: p.Flags&0x10 != 0, URG: p.Flags&0x20 != 0, ECE: p.Flags&0x40 != 0, CWR: p.Flags&0x80 != 0}
		_ = tcp.SetNetworkLayerForChecksum(netLayer)
		list = append(list, tcp)
	case p.Proto == 17:
		udp := &layers.UDP{SrcPort: layers.UDPPort(p.SrcPort), DstPort: layers.UDPPort(p.DstPort)}
		_ = udp.SetNetworkLayerForChecksum(netLayer)
		list = append(list, udp)
	}
	list = append(list, payload)
	return gopacket.SerializeLayers(buf, opts, list...)
}
