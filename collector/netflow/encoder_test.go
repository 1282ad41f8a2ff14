package netflow

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// spec is one field specifier of a test template; pen, when set, makes it
// an IPFIX enterprise-specific field.
type spec struct {
	ie, length uint16
	pen        uint32
}

// msg builds a NetFlow v9 or IPFIX datagram for tests.
type msg struct {
	version uint16
	domain  uint32
	export  uint32 // unix seconds
	uptime  uint32 // NetFlow v9 sysUptime, ms
	sets    []byte
}

func v9Msg(domain uint32) *msg {
	return &msg{version: 9, domain: domain, export: 1_700_000_000, uptime: 100_000}
}

func ipfixMsg(domain uint32) *msg {
	return &msg{version: 10, domain: domain, export: 1_700_000_000}
}

// set appends a set with the given ID and body.
func (m *msg) set(id uint16, body []byte) *msg {
	m.sets = binary.BigEndian.AppendUint16(m.sets, id)
	m.sets = binary.BigEndian.AppendUint16(m.sets, uint16(4+len(body)))
	m.sets = append(m.sets, body...)
	return m
}

func appendSpecs(b []byte, specs []spec) []byte {
	for _, s := range specs {
		ie := s.ie
		if s.pen != 0 {
			ie |= enterpriseBit
		}
		b = binary.BigEndian.AppendUint16(b, ie)
		b = binary.BigEndian.AppendUint16(b, s.length)
		if s.pen != 0 {
			b = binary.BigEndian.AppendUint32(b, s.pen)
		}
	}
	return b
}

// raw appends bytes after the sets, for malformed sets.
func (m *msg) raw(b ...byte) *msg {
	m.sets = append(m.sets, b...)
	return m
}

// template appends a template set holding one template record.
func (m *msg) template(id uint16, specs ...spec) *msg {
	b := binary.BigEndian.AppendUint16(nil, id)
	b = binary.BigEndian.AppendUint16(b, uint16(len(specs)))
	b = appendSpecs(b, specs)
	if m.version == 9 {
		return m.set(v9Sets.template, b)
	}
	return m.set(ipfixSets.template, b)
}

// optionsTemplate appends an options template set holding one record. In
// NetFlow v9 the scope specifiers use scope types (1 = system).
func (m *msg) optionsTemplate(id uint16, scopes []spec, options ...spec) *msg {
	b := binary.BigEndian.AppendUint16(nil, id)
	if m.version == 9 {
		b = binary.BigEndian.AppendUint16(b, uint16(4*len(scopes)))
		b = binary.BigEndian.AppendUint16(b, uint16(4*len(options)))
		b = appendSpecs(appendSpecs(b, scopes), options)
		return m.set(v9Sets.options, b)
	}
	b = binary.BigEndian.AppendUint16(b, uint16(len(scopes)+len(options)))
	b = binary.BigEndian.AppendUint16(b, uint16(len(scopes)))
	b = appendSpecs(appendSpecs(b, scopes), options)
	return m.set(ipfixSets.options, b)
}

// withdraw appends an IPFIX template withdrawal (set 2, or 3 for options).
func (m *msg) withdraw(options bool, id uint16) *msg {
	b := binary.BigEndian.AppendUint16(nil, id)
	b = binary.BigEndian.AppendUint16(b, 0)
	if options {
		return m.set(ipfixSets.options, b)
	}
	return m.set(ipfixSets.template, b)
}

// data appends a data set of records.
func (m *msg) data(id uint16, records ...[]byte) *msg {
	var b []byte
	for _, r := range records {
		b = append(b, r...)
	}
	return m.set(id, b)
}

// bytes returns the datagram.
func (m *msg) bytes() []byte {
	var b []byte
	b = binary.BigEndian.AppendUint16(b, m.version)
	if m.version == 9 {
		b = binary.BigEndian.AppendUint16(b, 0) // count, not read
		b = binary.BigEndian.AppendUint32(b, m.uptime)
		b = binary.BigEndian.AppendUint32(b, m.export)
		b = binary.BigEndian.AppendUint32(b, 1) // sequence
		b = binary.BigEndian.AppendUint32(b, m.domain)
	} else {
		b = binary.BigEndian.AppendUint16(b, uint16(ipfixHeaderLen+len(m.sets)))
		b = binary.BigEndian.AppendUint32(b, m.export)
		b = binary.BigEndian.AppendUint32(b, 1) // sequence
		b = binary.BigEndian.AppendUint32(b, m.domain)
	}
	return append(b, m.sets...)
}

// rec encodes values big-endian, back to back: uint8, uint16, uint32,
// uint64, netip.Addr (4 or 16 bytes), []byte as is, string as an IPFIX
// variable-length field.
func rec(values ...any) []byte {
	var b []byte
	for _, v := range values {
		switch v := v.(type) {
		case uint8:
			b = append(b, v)
		case uint16:
			b = binary.BigEndian.AppendUint16(b, v)
		case uint32:
			b = binary.BigEndian.AppendUint32(b, v)
		case uint64:
			b = binary.BigEndian.AppendUint64(b, v)
		case netip.Addr:
			b = append(b, v.AsSlice()...)
		case []byte:
			b = append(b, v...)
		case string:
			if len(v) < 255 {
				b = append(b, byte(len(v)))
			} else {
				b = append(b, 255)
				b = binary.BigEndian.AppendUint16(b, uint16(len(v)))
			}
			b = append(b, v...)
		default:
			panic(fmt.Sprintf("rec: unsupported %T", v))
		}
	}
	return b
}

// v5Record is the part of a NetFlow v5 record tests set.
type v5Record struct {
	src, dst         netip.Addr
	in, out          uint16
	packets, octets  uint32
	first, last      uint32
	srcPort, dstPort uint16
	flags, proto     uint8
}

// v5Datagram builds a NetFlow v5 datagram (export time 1700000000.5 s,
// sysUptime 100000 ms); count is written as given.
func v5Datagram(count uint16, sampling uint16, records ...v5Record) []byte {
	var b []byte
	b = binary.BigEndian.AppendUint16(b, 5)
	b = binary.BigEndian.AppendUint16(b, count)
	b = binary.BigEndian.AppendUint32(b, 100_000)
	b = binary.BigEndian.AppendUint32(b, 1_700_000_000)
	b = binary.BigEndian.AppendUint32(b, 500_000_000)
	b = binary.BigEndian.AppendUint32(b, 1) // sequence
	b = append(b, 0, 0)                     // engine type, ID
	b = binary.BigEndian.AppendUint16(b, sampling)
	for _, r := range records {
		b = append(b, r.src.AsSlice()...)
		b = append(b, r.dst.AsSlice()...)
		b = append(b, 0, 0, 0, 0) // next hop
		b = binary.BigEndian.AppendUint16(b, r.in)
		b = binary.BigEndian.AppendUint16(b, r.out)
		b = binary.BigEndian.AppendUint32(b, r.packets)
		b = binary.BigEndian.AppendUint32(b, r.octets)
		b = binary.BigEndian.AppendUint32(b, r.first)
		b = binary.BigEndian.AppendUint32(b, r.last)
		b = binary.BigEndian.AppendUint16(b, r.srcPort)
		b = binary.BigEndian.AppendUint16(b, r.dstPort)
		b = append(b, 0, r.flags, r.proto, 0) // pad, flags, proto, tos
		b = append(b, 0, 0, 0, 0, 0, 0, 0, 0) // AS, masks, pad
	}
	return b
}
