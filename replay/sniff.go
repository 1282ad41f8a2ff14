package replay

import "encoding/binary"

// Header sizes of the export protocols.
const (
	v5Header     = 24
	v5Record     = 48
	v5MaxRecords = 30 // what Cisco documents; the header's count never exceeds it
	v9Header     = 20
	ipfixHeader  = 16
	setHeader    = 4
	sflowHeader4 = 28 // with an IPv4 agent address
	sflowHeader6 = 40 // with an IPv6 agent address
)

// sniff tells whether a UDP payload sent to a port that is not configured
// is an export datagram, by its content alone: the version field and a
// header that agrees with the datagram's length down to the byte. It
// returns portNetFlow, portSFlow or portMeter. Random payloads (DNS IDs,
// SNMP's ASN.1, ISAKMP cookies) pass the version check now and then, so
// the structure has to fit too:
//   - NetFlow v5: a record count of 1 to 30 and a length of exactly 24 +
//     48 × count bytes;
//   - NetFlow v9: at least one flowset, flowset IDs 0, 1 or 256 and above,
//     each flowset at least 4 bytes long, the flowsets filling the datagram
//     exactly;
//   - IPFIX: the message length equal to the datagram's, set IDs 2, 3 or
//     256 and above, the sets (at least one) filling the message exactly;
//   - sFlow v5: an IPv4 or IPv6 agent, at least one sample, and the
//     samples' lengths filling the datagram exactly.
func sniff(p []byte) uint8 {
	if len(p) < 4 {
		return portMeter
	}
	be := binary.BigEndian
	switch be.Uint16(p) {
	case 5:
		n := int(be.Uint16(p[2:]))
		if n >= 1 && n <= v5MaxRecords && len(p) == v5Header+v5Record*n {
			return portNetFlow
		}
	case 9:
		if len(p) > v9Header && setsFill(p[v9Header:], 0, 1) {
			return portNetFlow
		}
	case 10:
		if len(p) > ipfixHeader && int(be.Uint16(p[2:])) == len(p) && setsFill(p[ipfixHeader:], 2, 3) {
			return portNetFlow
		}
	case 0:
		if sflowFits(p) {
			return portSFlow
		}
	}
	return portMeter
}

// setsFill reports whether b is a sequence of NetFlow v9 flowsets or IPFIX
// sets, with nothing left over, each of ID template, options or 256 and
// above and of length at least 4.
func setsFill(b []byte, template, options uint16) bool {
	for len(b) > 0 {
		if len(b) < setHeader {
			return false
		}
		id, n := binary.BigEndian.Uint16(b), int(binary.BigEndian.Uint16(b[2:]))
		if id != template && id != options && id < 256 || n < setHeader || n > len(b) {
			return false
		}
		b = b[n:]
	}
	return true
}

// sflowFits reports whether p is an sFlow v5 datagram whose samples fill
// it exactly.
func sflowFits(p []byte) bool {
	be := binary.BigEndian
	if len(p) < sflowHeader4 || be.Uint32(p) != 5 {
		return false
	}
	var head int
	switch be.Uint32(p[4:]) {
	case 1:
		head = sflowHeader4
	case 2:
		head = sflowHeader6
	default:
		return false
	}
	if len(p) < head {
		return false
	}
	n := be.Uint32(p[head-4:])
	if n == 0 {
		return false
	}
	b := p[head:]
	for ; n > 0; n-- {
		if len(b) < 8 {
			return false
		}
		l := be.Uint32(b[4:])
		if l%4 != 0 || uint64(l) > uint64(len(b)-8) {
			return false
		}
		b = b[8+l:]
	}
	return len(b) == 0
}
