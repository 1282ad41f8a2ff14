package netflow

import (
	"encoding/binary"
	"net/netip"

	"github.com/flowsentry/flowsentry/flow"
)

// ipfixHeaderLen is the length of the IPFIX message header: version,
// length, export time, sequence number, observation domain ID.
const ipfixHeaderLen = 16

// IPFIX set IDs: 2 holds templates, 3 options templates; data sets use the
// template ID, 256 and up.
var ipfixSets = setIDs{template: 2, options: 3}

// enterpriseBit marks an IPFIX field specifier followed by an enterprise
// number.
const enterpriseBit = 0x8000

// decodeIPFIX decodes an IPFIX message. Bytes of the datagram after the
// length the header gives are ignored.
func (d *Decoder) decodeIPFIX(exporter netip.Addr, now int64, p []byte, out []flow.Record, st *Stats) ([]flow.Record, error) {
	if len(p) < ipfixHeaderLen {
		return out, errTruncated
	}
	n := int(binary.BigEndian.Uint16(p[2:]))
	if n < ipfixHeaderLen || n > len(p) {
		return out, errLength
	}
	c := msgContext{
		key:      domainKey{exporter: exporter, domain: binary.BigEndian.Uint32(p[12:]), version: 10},
		exportNs: int64(binary.BigEndian.Uint32(p[4:])) * 1e9,
		source:   flow.SourceIPFIX,
	}
	return d.decodeSets(&c, now, p[ipfixHeaderLen:n], out, st)
}

// ipfixTemplates learns the records of an IPFIX template set (template ID,
// field count, field specifiers) or options template set (template ID,
// field count, scope field count, field specifiers), and applies template
// withdrawals (a record with a field count of 0; template ID 2 or 3
// withdraws all data or options templates). Enterprise-specific fields are
// skipped. The caller holds the write lock.
func (d *Decoder) ipfixTemplates(dm *domain, options bool, body []byte, now int64, st *Stats) error {
	for len(body) >= 4 {
		id := binary.BigEndian.Uint16(body)
		count := int(binary.BigEndian.Uint16(body[2:]))
		if count == 0 {
			switch {
			case id >= 256:
				st.TemplatesWithdrawn += d.t.withdraw(dm, id)
			case id == ipfixSets.template && !options, id == ipfixSets.options && options:
				st.TemplatesWithdrawn += d.t.withdrawAll(dm, options)
			default:
				return errTemplateID
			}
			body = body[4:]
			continue
		}
		pos := 4
		if options {
			if len(body) < 6 {
				return errTemplateLength
			}
			if scope := int(binary.BigEndian.Uint16(body[4:])); scope == 0 || scope > count {
				return errTemplateLength
			}
			pos = 6
		}
		d.fields = d.fields[:0]
		for range count {
			if len(body)-pos < 4 {
				return errTemplateLength
			}
			f := field{ie: binary.BigEndian.Uint16(body[pos:]), length: binary.BigEndian.Uint16(body[pos+2:])}
			pos += 4
			if f.ie&enterpriseBit != 0 {
				if len(body)-pos < 4 {
					return errTemplateLength
				}
				f.ie &^= enterpriseBit
				f.unmapped = true
				pos += 4
			}
			d.fields = append(d.fields, f)
		}
		if id < 256 {
			return errTemplateID
		}
		if err := d.t.learn(dm, id, body[:pos], d.fields, true, options, now, st); err != nil {
			return err
		}
		body = body[pos:]
	}
	return nil
}
