package replay

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/flowsentry/flowsentry/flow"
)

// File magics, read as a little-endian uint32 from the first four bytes.
const (
	magicPcapMicro    = 0xa1b2c3d4
	magicPcapMicroBE  = 0xd4c3b2a1
	magicPcapNano     = 0xa1b23c4d
	magicPcapNanoBE   = 0x4d3cb2a1
	magicPcapngHeader = 0x0a0d0d0a // section header block type, the same in both byte orders
	magicGzip         = 0x8b1f     // first two bytes only
)

// Packet is one captured packet.
type Packet struct {
	// Time is the capture time in Unix nanoseconds. Packets that carry no
	// time (pcapng simple packet blocks) get the time of the packet before.
	Time int64
	// Data holds the captured bytes, starting with the link-layer header.
	// It is owned by the Capture and valid until the next call to Next.
	Data []byte
	// LinkType is the link-layer header type of Data.
	LinkType layers.LinkType
}

// Capture reads packets from a pcap or pcapng stream, chosen by the
// stream's magic number. It is not safe for concurrent use.
type Capture struct {
	src    *countingReader
	br     *bufio.Reader
	pcap   *pcapgo.Reader
	ng     *pcapgo.NgReader
	format string
	last   int64
}

// countingReader counts the bytes read from r.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// OpenCapture reads the file header of a pcap or pcapng stream. Gzip
// compressed captures are refused; so are pcap files whose link type
// Capture cannot hand to the packet parser (Ethernet, raw IPv4 and IPv6,
// Linux cooked capture are supported). A pcapng file may mix link types;
// packets of unsupported ones are returned and left to the caller.
func OpenCapture(r io.Reader) (*Capture, error) {
	c := &Capture{src: &countingReader{r: r}}
	// pcapgo wraps its input in a bufio.Reader, and bufio.NewReader returns
	// a *bufio.Reader of the default size unchanged: handing it ours keeps
	// one buffer whose fill level gives the exact offset read so far.
	c.br = bufio.NewReader(c.src)
	head, err := c.br.Peek(4)
	if err != nil {
		if len(head) == 0 {
			return nil, errors.New("not a pcap or pcapng file: it is empty")
		}
		return nil, fmt.Errorf("not a pcap or pcapng file: it holds only %d bytes", len(head))
	}
	magic := binary.LittleEndian.Uint32(head)
	switch {
	case magic == magicPcapMicro || magic == magicPcapMicroBE || magic == magicPcapNano || magic == magicPcapNanoBE:
		c.format = "pcap"
		if c.pcap, err = pcapgo.NewReader(c.br); err != nil {
			return nil, fmt.Errorf("pcap file header: %w", err)
		}
		if _, ok := flowLink(c.pcap.LinkType()); !ok {
			return nil, fmt.Errorf("pcap link type %d (%s) is not supported: capture on an Ethernet or raw IP interface, or convert the file (e.g. tcprewrite --dlt=enet)", uint32(c.pcap.LinkType()), c.pcap.LinkType())
		}
	case magic == magicPcapngHeader:
		c.format = "pcapng"
		opts := pcapgo.NgReaderOptions{WantMixedLinkType: true, SkipUnknownVersion: true}
		if c.ng, err = pcapgo.NewNgReader(c.br, opts); err != nil {
			return nil, fmt.Errorf("pcapng section header: %w", err)
		}
	case magic&0xffff == magicGzip:
		return nil, errors.New("not a pcap or pcapng file: it is gzip-compressed, run gunzip on it first")
	default:
		return nil, fmt.Errorf("not a pcap or pcapng file (magic 0x%08x)", binary.BigEndian.Uint32(head))
	}
	return c, nil
}

// Format returns "pcap" or "pcapng".
func (c *Capture) Format() string { return c.format }

// Offset returns how many bytes of the stream have been consumed: after a
// successful Next, the offset of the next record; after a failed one, it
// may point inside the bad record.
func (c *Capture) Offset() int64 { return c.src.n - int64(c.br.Buffered()) }

// Next returns the next packet. It returns io.EOF at the clean end of the
// stream and another error when the stream is cut short or corrupt.
func (c *Capture) Next() (Packet, error) {
	var (
		data []byte
		ci   gopacket.CaptureInfo
		err  error
		link layers.LinkType
	)
	if c.pcap != nil {
		data, ci, err = c.pcap.ZeroCopyReadPacketData()
		link = c.pcap.LinkType()
	} else {
		data, ci, err = c.ng.ZeroCopyReadPacketData()
		if len(ci.AncillaryData) > 0 {
			link, _ = ci.AncillaryData[0].(layers.LinkType)
		}
	}
	if err != nil {
		return Packet{}, err
	}
	if !ci.Timestamp.IsZero() {
		c.last = ci.Timestamp.UnixNano()
	}
	return Packet{Time: c.last, Data: data, LinkType: link}, nil
}

// flowLink maps a capture link type to the packet parser's.
func flowLink(l layers.LinkType) (flow.LinkType, bool) {
	switch l {
	case layers.LinkTypeEthernet:
		return flow.LinkEthernet, true
	case layers.LinkTypeRaw:
		return flow.LinkRaw, true
	case layers.LinkTypeIPv4:
		return flow.LinkIPv4, true
	case layers.LinkTypeIPv6:
		return flow.LinkIPv6, true
	case layers.LinkTypeLinuxSLL:
		return flow.LinkLinuxSLL, true
	}
	return 0, false
}
