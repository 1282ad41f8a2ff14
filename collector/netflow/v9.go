package netflow

import (
	"encoding/binary"
	"net/netip"

	"github.com/flowsentry/flowsentry/flow"
)

// v9HeaderLen is the length of the NetFlow v9 header: version, count,
// sysUptime, unix secs, sequence number, source ID.
const v9HeaderLen = 20

// v9 set IDs: 0 holds templates, 1 options templates; data sets use the
// template ID, 256 and up.
var v9Sets = setIDs{template: 0, options: 1}

// decodeV9 decodes a NetFlow v9 datagram. The header count is not trusted:
// exporters disagree on what it counts, so the sets are read to the end of
// the datagram.
func (d *Decoder) decodeV9(exporter netip.Addr, now int64, p []byte, out []flow.Record, st *Stats) ([]flow.Record, error) {
	if len(p) < v9HeaderLen {
		return out, errTruncated
	}
	c := msgContext{
		key:      domainKey{exporter: exporter, domain: binary.BigEndian.Uint32(p[16:]), version: 9},
		exportNs: int64(binary.BigEndian.Uint32(p[8:])) * 1e9,
		uptime:   binary.BigEndian.Uint32(p[4:]),
		source:   flow.SourceNetFlowV9,
	}
	return d.decodeSets(&c, now, p[v9HeaderLen:], out, st)
}

// v9Templates learns the records of a NetFlow v9 template set (template
// ID, field count, fields) or options template set (template ID, scope
// length, option length in bytes, scope fields, option fields). Scope field
// types (system, interface, line card, cache, template) are not
// information elements and are not read. The caller holds the write lock.
func (d *Decoder) v9Templates(dm *domain, options bool, body []byte, now int64, st *Stats) error {
	for {
		var id uint16
		var n int
		d.fields = d.fields[:0]
		if options {
			if len(body) < 6 {
				return nil
			}
			id = binary.BigEndian.Uint16(body)
			scopeLen := int(binary.BigEndian.Uint16(body[2:]))
			optionLen := int(binary.BigEndian.Uint16(body[4:]))
			n = 6 + scopeLen + optionLen
			if scopeLen%4 != 0 || optionLen%4 != 0 || n > len(body) {
				return errTemplateLength
			}
			d.fields = appendV9Fields(d.fields, body[6:6+scopeLen], true)
			d.fields = appendV9Fields(d.fields, body[6+scopeLen:n], false)
		} else {
			if len(body) < 4 {
				return nil
			}
			id = binary.BigEndian.Uint16(body)
			n = 4 + 4*int(binary.BigEndian.Uint16(body[2:]))
			if n > len(body) {
				return errTemplateLength
			}
			d.fields = appendV9Fields(d.fields, body[4:n], false)
		}
		if id < 256 {
			return errTemplateID
		}
		if err := d.t.learn(dm, id, body[:n], d.fields, false, options, now, st); err != nil {
			return err
		}
		body = body[n:]
	}
}

// appendV9Fields appends the (type, length) pairs of b, whose length is a
// multiple of 4.
func appendV9Fields(dst []field, b []byte, unmapped bool) []field {
	for ; len(b) >= 4; b = b[4:] {
		dst = append(dst, field{
			ie:       binary.BigEndian.Uint16(b),
			length:   binary.BigEndian.Uint16(b[2:]),
			unmapped: unmapped,
		})
	}
	return dst
}
