package netflow

import "encoding/binary"

// CarriesTemplates reports whether a NetFlow v9 or IPFIX datagram holds a
// template or options template set (set ID below 256). A collector that
// sheds load decodes such a datagram still: dropping it would leave the
// exporter's data undecodable until its templates come again. It reads
// only the set headers; false for other versions and for a datagram whose
// sets do not fit.
func CarriesTemplates(payload []byte) bool {
	if len(payload) < 2 {
		return false
	}
	var off int
	switch binary.BigEndian.Uint16(payload) {
	case 9:
		off = v9HeaderLen
	case 10:
		off = ipfixHeaderLen
	default:
		return false
	}
	for off+4 <= len(payload) {
		id, n := binary.BigEndian.Uint16(payload[off:]), int(binary.BigEndian.Uint16(payload[off+2:]))
		if id < 256 {
			return true
		}
		if n < 4 {
			return false
		}
		off += n
	}
	return false
}
