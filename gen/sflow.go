package gen

import (
	"github.com/flowsentry/flowsentry/flow"
)

// maxCounterSamples is the number of interface counter samples a
// refreshing sFlow datagram carries at most; the interfaces take turns.
const maxCounterSamples = 8

// sFlow constants: formats of samples and records, header protocol.
const (
	sflowFlowSample    = 1
	sflowCounterSample = 2
	sflowRawHeader     = 1
	sflowGenericIf     = 1
	sflowEthernet      = 1
	genericIfLen       = 88
	ifSpeed            = 10_000_000_000
	ethHeaderLen       = 14
	fcsLen             = 4
)

// sflowMaxSize is the size of the largest sFlow datagram of c.
func sflowMaxSize(c Config) int {
	agent := 4
	if !c.Exporter.Is4() {
		agent = 16
	}
	ipHdr := 20
	if !c.SrcPrefix.Addr().Is4() {
		ipHdr = 40
	}
	flowSample := 8 + 32 + 8 + 16 + pad4(ethHeaderLen+ipHdr+20)
	counterSample := 8 + 12 + 8 + genericIfLen
	return 24 + agent + c.Records*flowSample + min(c.Interfaces, maxCounterSamples)*counterSample
}

// appendSFlow encodes an sFlow v5 datagram: Records flow samples of one
// packet each, with its Ethernet/IP/transport headers, and interface
// counter samples when refresh is set.
func (g *Generator) appendSFlow(dst []byte, now int64, refresh bool) []byte {
	nCounters := 0
	if refresh {
		nCounters = min(g.cfg.Interfaces, maxCounterSamples)
	}
	dst = be.AppendUint32(dst, 5)
	if g.cfg.Exporter.Is4() {
		dst = be.AppendUint32(dst, 1)
	} else {
		dst = be.AppendUint32(dst, 2)
	}
	dst = appendAddr(dst, g.cfg.Exporter)
	dst = be.AppendUint32(dst, g.cfg.Domain)
	dst = be.AppendUint32(dst, g.datagrams+1)
	dst = be.AppendUint32(dst, g.uptime(now))
	dst = be.AppendUint32(dst, uint32(g.cfg.Records+nCounters))
	for range g.cfg.Records {
		dst = g.appendFlowSample(dst, now)
	}
	for i := range nCounters {
		dst = g.appendCounterSample(dst, now, (g.nextCounter+i)%g.cfg.Interfaces)
	}
	g.nextCounter = (g.nextCounter + nCounters) % g.cfg.Interfaces
	return dst
}

// appendFlowSample appends a flow sample of one packet.
func (g *Generator) appendFlowSample(dst []byte, now int64) []byte {
	f := g.next()
	r := &f.rec
	rate := g.cfg.SamplingRate
	ipHdr, l4Hdr := 20, 0
	if !r.Src.Is4() {
		ipHdr = 40
	}
	switch r.Proto {
	case flow.ProtoTCP:
		l4Hdr = 20
	case flow.ProtoUDP:
		l4Hdr = 8
	}
	ipLen := max(int(r.Bytes/r.Packets), ipHdr+l4Hdr)
	hdrLen := ethHeaderLen + ipHdr + l4Hdr

	in := &g.ifaces[r.InIf-1]
	in.flowSeq++
	in.pool += rate
	in.inOctets += uint64(ipLen) * uint64(rate)
	in.inPkts += rate
	out := &g.ifaces[r.OutIf-1]
	out.outOctets += uint64(ipLen) * uint64(rate)
	out.outPkts += rate

	dst = be.AppendUint32(dst, sflowFlowSample)
	dst = be.AppendUint32(dst, uint32(32+8+16+pad4(hdrLen)))
	dst = be.AppendUint32(dst, in.flowSeq)
	dst = be.AppendUint32(dst, r.InIf) // source ID: type 0, ifIndex
	dst = be.AppendUint32(dst, rate)
	dst = be.AppendUint32(dst, in.pool)
	dst = be.AppendUint32(dst, 0) // drops
	dst = be.AppendUint32(dst, r.InIf)
	dst = be.AppendUint32(dst, r.OutIf)
	dst = be.AppendUint32(dst, 1) // one record
	dst = be.AppendUint32(dst, sflowRawHeader)
	dst = be.AppendUint32(dst, uint32(16+pad4(hdrLen)))
	dst = be.AppendUint32(dst, sflowEthernet)
	dst = be.AppendUint32(dst, uint32(ethHeaderLen+ipLen+fcsLen)) // frame length
	dst = be.AppendUint32(dst, fcsLen)                            // stripped
	dst = be.AppendUint32(dst, uint32(hdrLen))
	dst = appendPacketHeader(dst, r, ipLen, uint16(in.flowSeq))
	for i := hdrLen; i%4 != 0; i++ {
		dst = append(dst, 0)
	}

	r.Start, r.End = now, now
	r.Packets = uint64(rate)
	r.Bytes = uint64(ipLen) * uint64(rate)
	g.records = append(g.records, *r)
	return dst
}

// appendPacketHeader appends the Ethernet, IP and TCP or UDP headers of a
// packet of r whose IP total length is ipLen.
func appendPacketHeader(dst []byte, r *flow.Record, ipLen int, id uint16) []byte {
	dst = append(dst, 0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01) // dst, src MAC
	ipHdr := 40
	if r.Src.Is4() {
		ipHdr = 20
		dst = be.AppendUint16(dst, 0x0800)
		h := len(dst)
		dst = append(dst, 0x45, 0)
		dst = be.AppendUint16(dst, uint16(ipLen))
		dst = be.AppendUint16(dst, id)
		dst = be.AppendUint16(dst, 0x4000) // don't fragment
		dst = append(dst, 64, r.Proto, 0, 0)
		dst = appendAddr(dst, r.Src)
		dst = appendAddr(dst, r.Dst)
		be.PutUint16(dst[h+10:], ipChecksum(dst[h:h+20]))
	} else {
		dst = be.AppendUint16(dst, 0x86dd)
		dst = append(dst, 0x60, 0, 0, 0)
		dst = be.AppendUint16(dst, uint16(ipLen-40))
		dst = append(dst, r.Proto, 64)
		dst = appendAddr(dst, r.Src)
		dst = appendAddr(dst, r.Dst)
	}
	switch r.Proto {
	case flow.ProtoTCP:
		dst = be.AppendUint16(dst, r.SrcPort)
		dst = be.AppendUint16(dst, r.DstPort)
		dst = be.AppendUint32(dst, uint32(id)) // sequence number
		dst = be.AppendUint32(dst, 0)          // acknowledgment number
		dst = append(dst, 5<<4, r.TCPFlags)
		dst = be.AppendUint16(dst, 65535) // window
		dst = append(dst, 0, 0, 0, 0)     // checksum, urgent pointer
	case flow.ProtoUDP:
		dst = be.AppendUint16(dst, r.SrcPort)
		dst = be.AppendUint16(dst, r.DstPort)
		dst = be.AppendUint16(dst, uint16(ipLen-ipHdr))
		dst = append(dst, 0, 0) // checksum
	}
	return dst
}

// ipChecksum is the IPv4 header checksum of h (whose checksum is zero).
func ipChecksum(h []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(h); i += 2 {
		sum += uint32(be.Uint16(h[i:]))
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}

// appendCounterSample appends a generic interface counter sample of the
// interface at index i and reports it in Counters.
func (g *Generator) appendCounterSample(dst []byte, now int64, i int) []byte {
	st := &g.ifaces[i]
	st.counterSeq++
	n := st.counterSeq
	// Synthetic, distinct values so that a decoder swapping fields is caught.
	inMcast, inBcast, outMcast, outBcast := n, 2*n, 3*n, 4*n
	c := flow.IfCounters{
		Time:        now,
		Exporter:    g.cfg.Exporter,
		IfIndex:     uint32(i + 1),
		Speed:       ifSpeed,
		InOctets:    st.inOctets,
		OutOctets:   st.outOctets,
		InPackets:   uint64(st.inPkts) + uint64(inMcast) + uint64(inBcast),
		OutPackets:  uint64(st.outPkts) + uint64(outMcast) + uint64(outBcast),
		InDiscards:  5 * n,
		InErrors:    6 * n,
		OutDiscards: 7 * n,
		OutErrors:   8 * n,
	}
	dst = be.AppendUint32(dst, sflowCounterSample)
	dst = be.AppendUint32(dst, 12+8+genericIfLen)
	dst = be.AppendUint32(dst, n)
	dst = be.AppendUint32(dst, c.IfIndex) // source ID: type 0, ifIndex
	dst = be.AppendUint32(dst, 1)         // one record
	dst = be.AppendUint32(dst, sflowGenericIf)
	dst = be.AppendUint32(dst, genericIfLen)
	dst = be.AppendUint32(dst, c.IfIndex)
	dst = be.AppendUint32(dst, 6) // ethernetCsmacd
	dst = be.AppendUint64(dst, c.Speed)
	dst = be.AppendUint32(dst, 1) // full duplex
	dst = be.AppendUint32(dst, 3) // admin and operational status up
	dst = be.AppendUint64(dst, c.InOctets)
	dst = be.AppendUint32(dst, st.inPkts)
	dst = be.AppendUint32(dst, inMcast)
	dst = be.AppendUint32(dst, inBcast)
	dst = be.AppendUint32(dst, c.InDiscards)
	dst = be.AppendUint32(dst, c.InErrors)
	dst = be.AppendUint32(dst, 0) // unknown protocols
	dst = be.AppendUint64(dst, c.OutOctets)
	dst = be.AppendUint32(dst, st.outPkts)
	dst = be.AppendUint32(dst, outMcast)
	dst = be.AppendUint32(dst, outBcast)
	dst = be.AppendUint32(dst, c.OutDiscards)
	dst = be.AppendUint32(dst, c.OutErrors)
	dst = be.AppendUint32(dst, 0) // promiscuous mode off
	g.counters = append(g.counters, c)
	return dst
}
