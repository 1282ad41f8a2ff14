package samples

import (
	"encoding/binary"
	"fmt"
	"io"
	"net/netip"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// ethernetSize is the size of the Ethernet header put in front of raw
// IPv4/IPv6 headers.
const ethernetSize = 14

// WritePCAP writes the headers held for target to w as a pcap file of
// link type Ethernet, oldest first, and returns how many it wrote: 0, and
// only the file header, when none is held. Ethernet headers are written as
// the agent sent them (VLAN tags included); raw IPv4 and IPv6 headers get
// an Ethernet header with zero MAC addresses in front. A packet's captured
// length is its header's, its original length the sampled frame's (less
// what the agent stripped, such as the FCS).
func (s *Store) WritePCAP(w io.Writer, target netip.Addr) (n int, err error) {
	kept := s.packets(target)
	pw := pcapgo.NewWriter(w)
	snap := maxHeaderBytes + ethernetSize
	if s != nil {
		snap = s.cfg.MaxHeaderBytes + ethernetSize
	}
	if err := pw.WriteFileHeader(uint32(snap), layers.LinkTypeEthernet); err != nil {
		return 0, fmt.Errorf("samples: write the pcap header: %w", err)
	}
	var buf []byte
	for _, p := range kept {
		data, wire := p.data, int(p.wire)
		if p.proto != ProtoEthernet {
			buf = append(buf[:0], make([]byte, 12)...)
			buf = binary.BigEndian.AppendUint16(buf, etherType(p.proto))
			data, wire = append(buf, p.data...), wire+ethernetSize
		}
		ci := gopacket.CaptureInfo{Timestamp: time.Unix(0, p.time).UTC(), CaptureLength: len(data), Length: wire}
		if err := pw.WritePacket(ci, data); err != nil {
			return n, fmt.Errorf("samples: write packet %d of %s: %w", n+1, target, err)
		}
		n++
	}
	return n, nil
}

// etherType returns the EtherType of a raw header protocol.
func etherType(proto uint8) uint16 {
	if proto == ProtoIPv6 {
		return uint16(layers.EthernetTypeIPv6)
	}
	return uint16(layers.EthernetTypeIPv4)
}
