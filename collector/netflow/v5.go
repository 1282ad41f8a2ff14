package netflow

import (
	"encoding/binary"
	"net/netip"

	"github.com/flowsentry/flowsentry/flow"
)

// NetFlow v5 layout: a 24-byte header (version, count, sysUptime, unix
// secs, unix nsecs, sequence, engine type, engine ID, sampling interval)
// then count fixed 48-byte records.
const (
	v5HeaderLen = 24
	v5RecordLen = 48
)

// decodeV5 decodes a NetFlow v5 datagram. The header's sampling interval
// holds a 2-bit mode and a 14-bit interval; the interval is the rate.
func decodeV5(exporter netip.Addr, p []byte, out []flow.Record) ([]flow.Record, error) {
	if len(p) < v5HeaderLen {
		return out, errTruncated
	}
	count := int(binary.BigEndian.Uint16(p[2:]))
	if v5HeaderLen+count*v5RecordLen > len(p) {
		return out, errCount
	}
	uptime := binary.BigEndian.Uint32(p[4:])
	exportNs := int64(binary.BigEndian.Uint32(p[8:]))*1e9 + int64(binary.BigEndian.Uint32(p[12:]))
	rate := uint32(binary.BigEndian.Uint16(p[22:]) & 0x3fff)
	if rate == 0 {
		rate = 1
	}
	for i := range count {
		b := p[v5HeaderLen+i*v5RecordLen:][:v5RecordLen]
		out = append(out, flow.Record{
			Start:    uptimeToUnixNano(exportNs, uptime, binary.BigEndian.Uint32(b[24:])),
			End:      uptimeToUnixNano(exportNs, uptime, binary.BigEndian.Uint32(b[28:])),
			Exporter: exporter,
			InIf:     uint32(binary.BigEndian.Uint16(b[12:])),
			OutIf:    uint32(binary.BigEndian.Uint16(b[14:])),
			Src:      netip.AddrFrom4([4]byte(b[0:4])),
			Dst:      netip.AddrFrom4([4]byte(b[4:8])),
			SrcPort:  binary.BigEndian.Uint16(b[32:]),
			DstPort:  binary.BigEndian.Uint16(b[34:]),
			Packets:  uint64(binary.BigEndian.Uint32(b[16:])),
			Bytes:    uint64(binary.BigEndian.Uint32(b[20:])),
			TCPFlags: b[37],
			Proto:    b[38],
			Source:   flow.SourceNetFlowV5,
		})
		finish(&out[len(out)-1], rate)
	}
	return out, nil
}
