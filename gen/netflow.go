package gen

import (
	"github.com/flowsentry/flowsentry/flow"
)

// field is a template entry: information element (v9 field type) and
// length in bytes.
type field struct{ id, length uint16 }

// The information elements the templates use; v9 field types and IPFIX
// information elements share numbers below 128.
const (
	ieOctets        = 1
	iePackets       = 2
	ieProto         = 4
	ieTCPFlags      = 6
	ieSrcPort       = 7
	ieSrc4          = 8
	ieInIf          = 10
	ieDstPort       = 11
	ieDst4          = 12
	ieOutIf         = 14
	ieLastSwitched  = 21
	ieFirstSwitched = 22
	ieSrc6          = 27
	ieDst6          = 28
	ieSamplingV9    = 34
	ieObsDomain     = 149
	ieStartMs       = 152
	ieEndMs         = 153
	ieSamplingIPFIX = 305
	v9ScopeSystem   = 1
)

// Template IDs: data templates for IPv4 and IPv6 flows and the sampling
// options template.
const (
	template4       = 256
	template6       = 257
	templateOptions = 258
)

// The data templates: NetFlow v9 with uptime-relative times, IPFIX with
// absolute milliseconds, a 2-byte tcpControlBits (RFC 7125) and 8-byte
// counters.
var (
	v9Fields4 = []field{
		{ieSrc4, 4}, {ieDst4, 4}, {ieSrcPort, 2}, {ieDstPort, 2}, {ieProto, 1}, {ieTCPFlags, 1},
		{ieInIf, 4}, {ieOutIf, 4}, {iePackets, 4}, {ieOctets, 8}, {ieFirstSwitched, 4}, {ieLastSwitched, 4},
	}
	v9Fields6    = withAddrs6(v9Fields4)
	ipfixFields4 = []field{
		{ieSrc4, 4}, {ieDst4, 4}, {ieSrcPort, 2}, {ieDstPort, 2}, {ieProto, 1}, {ieTCPFlags, 2},
		{ieInIf, 4}, {ieOutIf, 4}, {iePackets, 8}, {ieOctets, 8}, {ieStartMs, 8}, {ieEndMs, 8},
	}
	ipfixFields6 = withAddrs6(ipfixFields4)
)

// withAddrs6 returns fields with the IPv4 address elements replaced by
// their IPv6 counterparts.
func withAddrs6(fields []field) []field {
	out := make([]field, len(fields))
	for i, f := range fields {
		switch f.id {
		case ieSrc4:
			f = field{ieSrc6, 16}
		case ieDst4:
			f = field{ieDst6, 16}
		}
		out[i] = f
	}
	return out
}

// recordSize is the size of a data record of the template.
func recordSize(fields []field) int {
	n := 0
	for _, f := range fields {
		n += int(f.length)
	}
	return n
}

// dataTemplate returns the template ID and fields of the data records.
func (g *Generator) dataTemplate() (uint16, []field) {
	v4 := g.cfg.SrcPrefix.Addr().Is4()
	switch {
	case g.cfg.Protocol == NetFlowV9 && v4:
		return template4, v9Fields4
	case g.cfg.Protocol == NetFlowV9:
		return template6, v9Fields6
	case v4:
		return template4, ipfixFields4
	}
	return template6, ipfixFields6
}

// maxSize is the size of the largest datagram the configuration produces.
func (c Config) maxSize() int {
	g := Generator{cfg: c}
	_, fields := g.dataTemplate()
	n := c.Records
	switch c.Protocol {
	case NetFlowV5:
		return 24 + 48*n
	case NetFlowV9:
		// header, template, options template (padded), options data, data
		return 20 + 8 + 4*len(fields) + 20 + 12 + pad4(4+n*recordSize(fields))
	case IPFIX:
		return 16 + 8 + 4*len(fields) + 18 + 12 + 4 + n*recordSize(fields)
	}
	return sflowMaxSize(c)
}

// pad4 rounds n up to a multiple of 4.
func pad4(n int) int { return (n + 3) &^ 3 }

// appendV5 encodes a NetFlow v5 datagram.
func (g *Generator) appendV5(dst []byte, now int64) []byte {
	n := g.cfg.Records
	up := g.uptime(now)
	dst = be.AppendUint16(dst, 5)
	dst = be.AppendUint16(dst, uint16(n))
	dst = be.AppendUint32(dst, up)
	dst = be.AppendUint32(dst, uint32(now/1e9))
	dst = be.AppendUint32(dst, uint32(now%1e9))
	dst = be.AppendUint32(dst, g.sent)
	dst = append(dst, 0, 0) // engine type and ID
	var interval uint16
	if g.cfg.SamplingRate > 1 {
		interval = 1<<14 | uint16(g.cfg.SamplingRate) // mode 1: 1-in-N packets
	}
	dst = be.AppendUint16(dst, interval)
	for range n {
		f := g.next()
		last := up - f.endAgo
		first := last - f.durMs
		r := &f.rec
		dst = appendAddr(dst, r.Src)
		dst = appendAddr(dst, r.Dst)
		dst = be.AppendUint32(dst, 0) // next hop
		dst = be.AppendUint16(dst, uint16(r.InIf))
		dst = be.AppendUint16(dst, uint16(r.OutIf))
		dst = be.AppendUint32(dst, uint32(r.Packets))
		dst = be.AppendUint32(dst, uint32(r.Bytes))
		dst = be.AppendUint32(dst, first)
		dst = be.AppendUint32(dst, last)
		dst = be.AppendUint16(dst, r.SrcPort)
		dst = be.AppendUint16(dst, r.DstPort)
		dst = append(dst, 0, r.TCPFlags, r.Proto, 0) // pad, flags, protocol, ToS
		dst = append(dst, 0, 0, 0, 0, 0, 0, 0, 0)    // AS numbers, masks, pad
		r.Start = now - int64(up-first)*1e6
		r.End = now - int64(up-last)*1e6
		scale(r)
		g.records = append(g.records, *r)
	}
	g.sent += uint32(n)
	return dst
}

// appendV9 encodes a NetFlow v9 datagram: templates and sampling options
// when refresh is set, then one data flowset.
func (g *Generator) appendV9(dst []byte, now int64, refresh bool) []byte {
	start := len(dst)
	up := g.uptime(now)
	secs := now / 1e9
	dst = be.AppendUint16(dst, 9)
	dst = be.AppendUint16(dst, 0) // record count, set at the end
	dst = be.AppendUint32(dst, up)
	dst = be.AppendUint32(dst, uint32(secs))
	dst = be.AppendUint32(dst, g.datagrams)
	dst = be.AppendUint32(dst, g.cfg.Domain)
	id, fields := g.dataTemplate()
	count := g.cfg.Records
	if refresh {
		dst = appendTemplateSet(dst, 0, id, fields)
		count++
		if g.cfg.SamplingRate > 1 {
			dst = be.AppendUint16(dst, 1) // options template flowset
			dst = be.AppendUint16(dst, 20)
			dst = be.AppendUint16(dst, templateOptions)
			dst = be.AppendUint16(dst, 4) // scope length in bytes
			dst = be.AppendUint16(dst, 4) // options length in bytes
			dst = appendField(dst, field{v9ScopeSystem, 4})
			dst = appendField(dst, field{ieSamplingV9, 4})
			dst = append(dst, 0, 0) // padding
			dst = g.appendSamplingData(dst)
			count += 2
		}
	}
	setStart := len(dst)
	dst = be.AppendUint16(dst, id)
	dst = be.AppendUint16(dst, 0) // length, set below
	base := secs * 1e9
	for range g.cfg.Records {
		f := g.next()
		last := up - f.endAgo
		first := last - f.durMs
		dst = appendRecord(dst, fields, &f.rec, uint64(first), uint64(last))
		f.rec.Start = base - int64(up-first)*1e6
		f.rec.End = base - int64(up-last)*1e6
		scale(&f.rec)
		g.records = append(g.records, f.rec)
	}
	for (len(dst)-setStart)%4 != 0 {
		dst = append(dst, 0)
	}
	be.PutUint16(dst[setStart+2:], uint16(len(dst)-setStart))
	be.PutUint16(dst[start+2:], uint16(count))
	g.sent += uint32(g.cfg.Records)
	return dst
}

// appendIPFIX encodes an IPFIX message: templates and sampling options when
// refresh is set, then one data set.
func (g *Generator) appendIPFIX(dst []byte, now int64, refresh bool) []byte {
	start := len(dst)
	dst = be.AppendUint16(dst, 10)
	dst = be.AppendUint16(dst, 0) // length, set at the end
	dst = be.AppendUint32(dst, uint32(now/1e9))
	dst = be.AppendUint32(dst, g.sent)
	dst = be.AppendUint32(dst, g.cfg.Domain)
	id, fields := g.dataTemplate()
	if refresh {
		dst = appendTemplateSet(dst, 2, id, fields)
		if g.cfg.SamplingRate > 1 {
			dst = be.AppendUint16(dst, 3) // options template set
			dst = be.AppendUint16(dst, 18)
			dst = be.AppendUint16(dst, templateOptions)
			dst = be.AppendUint16(dst, 2) // field count
			dst = be.AppendUint16(dst, 1) // scope field count
			dst = appendField(dst, field{ieObsDomain, 4})
			dst = appendField(dst, field{ieSamplingIPFIX, 4})
			dst = g.appendSamplingData(dst)
		}
	}
	dst = be.AppendUint16(dst, id)
	dst = be.AppendUint16(dst, uint16(4+g.cfg.Records*recordSize(fields)))
	nowMs := uint64(now / 1e6)
	for range g.cfg.Records {
		f := g.next()
		last := nowMs - uint64(f.endAgo)
		first := last - uint64(f.durMs)
		dst = appendRecord(dst, fields, &f.rec, first, last)
		f.rec.Start = int64(first) * 1e6
		f.rec.End = int64(last) * 1e6
		scale(&f.rec)
		g.records = append(g.records, f.rec)
	}
	be.PutUint16(dst[start+2:], uint16(len(dst)-start))
	g.sent += uint32(g.cfg.Records)
	return dst
}

// appendSamplingData appends the options data set that announces the
// sampling rate: scope (source ID or observation domain), then the rate.
func (g *Generator) appendSamplingData(dst []byte) []byte {
	dst = be.AppendUint16(dst, templateOptions)
	dst = be.AppendUint16(dst, 12)
	dst = be.AppendUint32(dst, g.cfg.Domain)
	dst = be.AppendUint32(dst, g.cfg.SamplingRate)
	g.sent++
	return dst
}

// appendTemplateSet appends a template set with one template (set ID 0 for
// NetFlow v9, 2 for IPFIX).
func appendTemplateSet(dst []byte, setID, id uint16, fields []field) []byte {
	dst = be.AppendUint16(dst, setID)
	dst = be.AppendUint16(dst, uint16(8+4*len(fields)))
	dst = be.AppendUint16(dst, id)
	dst = be.AppendUint16(dst, uint16(len(fields)))
	for _, f := range fields {
		dst = appendField(dst, f)
	}
	return dst
}

// appendField appends a template entry.
func appendField(dst []byte, f field) []byte {
	dst = be.AppendUint16(dst, f.id)
	return be.AppendUint16(dst, f.length)
}

// appendRecord appends the data record of r following the template
// fields; first and last are the flow's times as the template encodes them.
func appendRecord(dst []byte, fields []field, r *flow.Record, first, last uint64) []byte {
	for _, f := range fields {
		switch f.id {
		case ieSrc4, ieSrc6:
			dst = appendAddr(dst, r.Src)
		case ieDst4, ieDst6:
			dst = appendAddr(dst, r.Dst)
		case ieSrcPort:
			dst = be.AppendUint16(dst, r.SrcPort)
		case ieDstPort:
			dst = be.AppendUint16(dst, r.DstPort)
		case ieProto:
			dst = append(dst, r.Proto)
		case ieTCPFlags:
			dst = appendUint(dst, uint64(r.TCPFlags), f.length)
		case ieInIf:
			dst = appendUint(dst, uint64(r.InIf), f.length)
		case ieOutIf:
			dst = appendUint(dst, uint64(r.OutIf), f.length)
		case iePackets:
			dst = appendUint(dst, r.Packets, f.length)
		case ieOctets:
			dst = appendUint(dst, r.Bytes, f.length)
		case ieFirstSwitched, ieStartMs:
			dst = appendUint(dst, first, f.length)
		case ieLastSwitched, ieEndMs:
			dst = appendUint(dst, last, f.length)
		}
	}
	return dst
}

// appendUint appends the n low bytes of v, big-endian; n is 1, 2, 4 or 8.
func appendUint(dst []byte, v uint64, n uint16) []byte {
	switch n {
	case 1:
		return append(dst, byte(v))
	case 2:
		return be.AppendUint16(dst, uint16(v))
	case 4:
		return be.AppendUint32(dst, uint32(v))
	}
	return be.AppendUint64(dst, v)
}
