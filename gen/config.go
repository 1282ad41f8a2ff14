package gen

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"net/netip"

	"github.com/flowsentry/flowsentry/flow"
)

// Protocol is an export format the generator encodes.
type Protocol uint8

// The export formats.
const (
	NetFlowV5 Protocol = iota + 1
	NetFlowV9
	IPFIX
	SFlow
)

// protocolNames are the names ParseProtocol accepts, in Protocol order.
var protocolNames = [...]string{NetFlowV5: "v5", NetFlowV9: "v9", IPFIX: "ipfix", SFlow: "sflow"}

// String returns the name ParseProtocol accepts ("v5", "v9", "ipfix",
// "sflow").
func (p Protocol) String() string {
	if p == 0 || int(p) >= len(protocolNames) {
		return fmt.Sprintf("protocol(%d)", p)
	}
	return protocolNames[p]
}

// ParseProtocol returns the protocol named s: "v5", "v9", "ipfix" or
// "sflow".
func ParseProtocol(s string) (Protocol, error) {
	for p, name := range protocolNames {
		if name != "" && name == s {
			return Protocol(p), nil
		}
	}
	return 0, fmt.Errorf("gen: unknown protocol %q: use v5, v9, ipfix or sflow", s)
}

// source is the flow.Source of records of protocol p.
func (p Protocol) source() flow.Source {
	switch p {
	case NetFlowV5:
		return flow.SourceNetFlowV5
	case NetFlowV9:
		return flow.SourceNetFlowV9
	case IPFIX:
		return flow.SourceIPFIX
	case SFlow:
		return flow.SourceSFlow
	}
	return flow.SourceUnknown
}

// Config says what the generator encodes. Zero values mean the defaults
// documented on each field, so Config{Protocol: NetFlowV9} is usable.
type Config struct {
	// Protocol is the export format.
	Protocol Protocol
	// Records is the number of flow records per datagram (for sFlow, flow
	// samples of one packet each); 0 means 30, or 10 for sFlow. NetFlow v5
	// allows at most 30.
	Records int
	// SrcPrefix and DstPrefix hold the source and destination addresses;
	// both of one family (IPv6 needs v9, IPFIX or sFlow). Zero means
	// 10.0.0.0/16 and 198.18.0.0/15.
	SrcPrefix, DstPrefix netip.Prefix
	// SrcAddrs and DstAddrs are the numbers of distinct source and
	// destination addresses, the first ones of each prefix after its
	// network address; 0 means 100 and 1000.
	SrcAddrs, DstAddrs int
	// Ports are the destination ports, drawn uniformly; nil means 80, 443,
	// 53, 123, 22. Source ports are drawn from 32768-60999.
	Ports []uint16
	// Protocols are the IP protocols, drawn uniformly; nil means TCP and
	// UDP. Protocols other than TCP and UDP have zero ports.
	Protocols []uint8
	// Interfaces is the number of exporter interfaces (ifIndex 1 to N) that
	// records and counter samples refer to; 0 means 4.
	Interfaces int
	// SamplingRate is the 1-in-N packet sampling rate announced (v5 header,
	// v9/IPFIX sampling options, sFlow samples); 0 means 1 (unsampled).
	// NetFlow v5 allows at most 16383.
	SamplingRate uint32
	// RefreshEvery is how often templates (v9, IPFIX: data and options
	// templates, and the sampling options data when sampled) and interface
	// counter samples (sFlow) are sent: in the first datagram, then every
	// RefreshEvery datagrams; 0 means 20.
	RefreshEvery int
	// Seed makes the sequence of records reproducible.
	Seed uint64
	// Exporter is the sFlow agent address and the Exporter of the records
	// Records reports (NetFlow collectors use the UDP source, so send from
	// this address); zero means 127.0.0.1.
	Exporter netip.Addr
	// Domain is the NetFlow v9 source ID, IPFIX observation domain or sFlow
	// sub-agent ID.
	Domain uint32
}

// maxDatagram is the largest UDP payload over IPv4.
const maxDatagram = 65507

// withDefaults returns c with zero values replaced by the defaults, or an
// error saying which field is unusable and how to fix it.
func (c Config) withDefaults() (Config, error) {
	if c.Protocol < NetFlowV5 || c.Protocol > SFlow {
		return c, fmt.Errorf("gen: protocol %d unknown: use NetFlowV5, NetFlowV9, IPFIX or SFlow", c.Protocol)
	}
	if c.Records == 0 {
		c.Records = 30
		if c.Protocol == SFlow {
			c.Records = 10
		}
	}
	if !c.SrcPrefix.IsValid() {
		c.SrcPrefix = netip.MustParsePrefix("10.0.0.0/16")
	}
	if !c.DstPrefix.IsValid() {
		c.DstPrefix = netip.MustParsePrefix("198.18.0.0/15")
	}
	c.SrcPrefix, c.DstPrefix = c.SrcPrefix.Masked(), c.DstPrefix.Masked()
	if c.SrcAddrs == 0 {
		c.SrcAddrs = 100
	}
	if c.DstAddrs == 0 {
		c.DstAddrs = 1000
	}
	if c.Ports == nil {
		c.Ports = []uint16{80, 443, 53, 123, 22}
	}
	if c.Protocols == nil {
		c.Protocols = []uint8{flow.ProtoTCP, flow.ProtoUDP}
	}
	if c.Interfaces == 0 {
		c.Interfaces = 4
	}
	if c.SamplingRate == 0 {
		c.SamplingRate = 1
	}
	if c.RefreshEvery == 0 {
		c.RefreshEvery = 20
	}
	if !c.Exporter.IsValid() {
		c.Exporter = netip.AddrFrom4([4]byte{127, 0, 0, 1})
	}
	c.Exporter = c.Exporter.Unmap()
	return c, c.check()
}

// check validates a configuration with defaults applied.
func (c Config) check() error {
	var errs []error
	if c.Records < 1 {
		errs = append(errs, fmt.Errorf("gen: records per datagram %d must be at least 1", c.Records))
	}
	if c.Protocol == NetFlowV5 && c.Records > 30 {
		errs = append(errs, fmt.Errorf("gen: records per datagram %d exceed NetFlow v5's limit of 30: lower Records", c.Records))
	}
	if c.SrcPrefix.Addr().Is4() != c.DstPrefix.Addr().Is4() {
		errs = append(errs, fmt.Errorf("gen: source prefix %s and destination prefix %s are of different families: use two IPv4 or two IPv6 prefixes", c.SrcPrefix, c.DstPrefix))
	}
	if c.Protocol == NetFlowV5 && !c.SrcPrefix.Addr().Is4() {
		errs = append(errs, fmt.Errorf("gen: NetFlow v5 carries only IPv4 but the prefixes are IPv6: use v9, IPFIX or sFlow, or IPv4 prefixes"))
	}
	errs = append(errs, checkAddrs("source", c.SrcPrefix, c.SrcAddrs), checkAddrs("destination", c.DstPrefix, c.DstAddrs))
	if len(c.Ports) == 0 {
		errs = append(errs, errors.New("gen: ports are empty: give at least one destination port, or nil for the defaults"))
	}
	if len(c.Protocols) == 0 {
		errs = append(errs, errors.New("gen: protocols are empty: give at least one IP protocol, or nil for the defaults"))
	}
	if c.Interfaces < 1 || c.Interfaces > 65535 {
		errs = append(errs, fmt.Errorf("gen: interfaces %d out of range: use 1 to 65535", c.Interfaces))
	}
	if c.Protocol == NetFlowV5 && c.SamplingRate > 0x3fff {
		errs = append(errs, fmt.Errorf("gen: sampling rate %d exceeds NetFlow v5's 14-bit limit of 16383", c.SamplingRate))
	}
	if c.RefreshEvery < 1 {
		errs = append(errs, fmt.Errorf("gen: refresh interval %d datagrams must be at least 1", c.RefreshEvery))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if n := c.maxSize(); n > maxDatagram {
		return fmt.Errorf("gen: %d records make datagrams of up to %d bytes, more than the %d a UDP datagram holds: lower Records", c.Records, n, maxDatagram)
	}
	return nil
}

// checkAddrs checks that n distinct addresses fit in p.
func checkAddrs(what string, p netip.Prefix, n int) error {
	if n < 1 {
		return fmt.Errorf("gen: %d %s addresses: use at least 1", n, what)
	}
	if avail := usable(p); uint64(n) > avail {
		return fmt.Errorf("gen: %d %s addresses do not fit in %s, which holds %d: use a shorter prefix or fewer addresses", n, what, p, avail)
	}
	return nil
}

// usable is the number of addresses of p the generator uses: all but the
// network and broadcast addresses when there are at least four, capped at
// 2^63.
func usable(p netip.Prefix) uint64 {
	hostBits := p.Addr().BitLen() - p.Bits()
	if hostBits >= 63 {
		return 1 << 63
	}
	n := uint64(1) << hostBits
	if hostBits >= 2 {
		n -= 2
	}
	return n
}

// nthAddr returns the i-th address the generator uses in p (masked).
func nthAddr(p netip.Prefix, i uint64) netip.Addr {
	if p.Addr().BitLen()-p.Bits() >= 2 {
		i++ // skip the network address
	}
	if p.Addr().Is4() {
		a := p.Addr().As4()
		binary.BigEndian.PutUint32(a[:], binary.BigEndian.Uint32(a[:])+uint32(i))
		return netip.AddrFrom4(a)
	}
	a := p.Addr().As16()
	lo, c := bits.Add64(binary.BigEndian.Uint64(a[8:]), i, 0)
	binary.BigEndian.PutUint64(a[:8], binary.BigEndian.Uint64(a[:8])+c)
	binary.BigEndian.PutUint64(a[8:], lo)
	return netip.AddrFrom16(a)
}
