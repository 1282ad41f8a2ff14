package netflow

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/flowsentry/flowsentry/flow"
)

// benchRecords is the number of records per benchmark datagram.
const benchRecords = 30

// benchDecode decodes payload in a loop, after setup datagrams taught the
// templates, and reports the time per record.
func benchDecode(b *testing.B, exporter netip.Addr, setup [][]byte, payload []byte) {
	dec := NewDecoder(NewTemplates(DefaultConfig()))
	for _, p := range setup {
		if _, _, err := dec.Decode(exporter, 0, p, nil); err != nil {
			b.Fatal(err)
		}
	}
	out := make([]flow.Record, 0, 2*benchRecords)
	out, st, err := dec.Decode(exporter, 0, payload, out)
	if err != nil || st.Records != benchRecords {
		b.Fatalf("%d records, %v; want %d", st.Records, err, benchRecords)
	}
	b.SetBytes(int64(len(payload)))
	for b.Loop() {
		out, _, _ = dec.Decode(exporter, 0, payload, out[:0])
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchRecords), "ns/record")
}

var (
	benchExporter = netip.MustParseAddr("192.0.2.1")
	benchSrc      = netip.MustParseAddr("198.51.100.1")
	benchDst      = netip.MustParseAddr("203.0.113.1")
)

// softflowdSpecs is the layout of softflowd's IPv4 template: addresses,
// start and end (sysUptime for v9, milliseconds for IPFIX), counts,
// interfaces, direction, end reason, ports, protocol, flags, IP version,
// TOS.
func softflowdSpecs(ipfix bool) []spec {
	start, end := spec{ieFlowStartSysUpTime, 4, 0}, spec{ieFlowEndSysUpTime, 4, 0}
	if ipfix {
		start, end = spec{ieFlowStartMilliseconds, 8, 0}, spec{ieFlowEndMilliseconds, 8, 0}
	}
	return []spec{
		{ieSourceIPv4Address, 4, 0}, {ieDestinationIPv4Address, 4, 0}, start, end,
		{ieOctetDeltaCount, 4, 0}, {iePacketDeltaCount, 4, 0}, {ieIngressInterface, 4, 0}, {ieEgressInterface, 4, 0},
		{61, 1, 0}, {136, 1, 0}, {ieSourceTransportPort, 2, 0}, {ieDestinationTransportPort, 2, 0},
		{ieProtocolIdentifier, 1, 0}, {ieTCPControlBits, 1, 0}, {60, 1, 0}, {5, 1, 0},
	}
}

// softflowdRecords returns benchRecords records for softflowdSpecs.
func softflowdRecords(ipfix bool) [][]byte {
	out := make([][]byte, benchRecords)
	for i := range out {
		var start, end any = uint32(90_000 + i), uint32(95_000 + i)
		if ipfix {
			start, end = uint64(1_700_000_000_000+i), uint64(1_700_000_005_000+i)
		}
		out[i] = rec(benchSrc, benchDst, start, end, uint32(40*(i+1)), uint32(i+1), uint32(1), uint32(2),
			uint8(0), uint8(1), uint16(40000+i), uint16(443), uint8(6), uint8(0x12), uint8(4), uint8(0))
	}
	return out
}

// capturePayloads returns a capture's first setup datagrams and a datagram
// with the header of datagram dataIndex and one data set holding its
// first record benchRecords times.
func capturePayloads(b *testing.B, file string, setup, dataIndex int) (netip.Addr, [][]byte, []byte) {
	dgs := readDatagrams(b, file)
	var setupPayloads [][]byte
	for _, dg := range dgs[:setup] {
		setupPayloads = append(setupPayloads, dg.payload)
	}
	p := dgs[dataIndex].payload
	version := binary.BigEndian.Uint16(p)
	hdr := ipfixHeaderLen
	if version == 9 {
		hdr = v9HeaderLen
	}
	// Learn the templates to know the record length of the data set.
	dec := NewDecoder(NewTemplates(DefaultConfig()))
	for _, s := range setupPayloads {
		if _, _, err := dec.Decode(dgs[0].exporter, 0, s, nil); err != nil {
			b.Fatal(err)
		}
	}
	id := binary.BigEndian.Uint16(p[hdr:])
	key := domainKey{exporter: dgs[0].exporter, version: version, domain: binary.BigEndian.Uint32(p[hdr-4:])}
	_, tpl := dec.t.lookup(key, id, 0)
	if tpl == nil {
		b.Fatalf("%s: no template %d for datagram %d", file, id, dataIndex+1)
	}
	first := p[hdr+4 : hdr+4+tpl.minLen]
	var body []byte
	for range benchRecords {
		body = append(body, first...)
	}
	out := append([]byte(nil), p[:hdr]...)
	out = binary.BigEndian.AppendUint16(out, id)
	out = binary.BigEndian.AppendUint16(out, uint16(4+len(body)))
	out = append(out, body...)
	if version == 10 {
		binary.BigEndian.PutUint16(out[2:], uint16(len(out)))
	}
	return dgs[0].exporter, setupPayloads, out
}

// BenchmarkDecodeV5 decodes NetFlow v5 datagrams of 30 records.
//
//	go test -run '^$' -bench . -benchmem -count=6 -cpu 1,2 ./collector/netflow | benchstat -
func BenchmarkDecodeV5(b *testing.B) {
	records := make([]v5Record, benchRecords)
	for i := range records {
		records[i] = v5Record{src: benchSrc, dst: benchDst, in: 1, out: 2, packets: uint32(i + 1), octets: uint32(40 * (i + 1)),
			first: uint32(90_000 + i), last: uint32(95_000 + i), srcPort: uint16(40000 + i), dstPort: 443, flags: 0x12, proto: 6}
	}
	benchDecode(b, benchExporter, nil, v5Datagram(benchRecords, 0, records...))
}

// BenchmarkDecodeV9 decodes NetFlow v9 datagrams of 30 records: with
// softflowd's template, and with a Cisco ASR 9000 template (pmacct-ta-101:
// 32 fields, IPv6 and IPv4 addresses, MPLS labels, sampler ID).
//
//	go test -run '^$' -bench . -benchmem -count=6 -cpu 1,2 ./collector/netflow | benchstat -
func BenchmarkDecodeV9(b *testing.B) {
	b.Run("softflowd", func(b *testing.B) {
		setup := v9Msg(1).template(1024, softflowdSpecs(false)...).bytes()
		benchDecode(b, benchExporter, [][]byte{setup}, v9Msg(1).data(1024, softflowdRecords(false)...).bytes())
	})
	b.Run("cisco", func(b *testing.B) {
		exporter, setup, payload := capturePayloads(b, "vendor/pmacct-ta-101-nfv9-cisco.pcap", 1, 1)
		benchDecode(b, exporter, setup, payload)
	})
}

// BenchmarkDecodeIPFIX decodes IPFIX messages of 30 records: with
// softflowd's template, and with a Cisco template (pmacct-ta-104: IPv6,
// 36 fields, selector ID looked up in the sampling options).
//
//	go test -run '^$' -bench . -benchmem -count=6 -cpu 1,2 ./collector/netflow | benchstat -
func BenchmarkDecodeIPFIX(b *testing.B) {
	b.Run("softflowd", func(b *testing.B) {
		setup := ipfixMsg(1).template(1024, softflowdSpecs(true)...).bytes()
		benchDecode(b, benchExporter, [][]byte{setup}, ipfixMsg(1).data(1024, softflowdRecords(true)...).bytes())
	})
	b.Run("cisco", func(b *testing.B) {
		exporter, setup, payload := capturePayloads(b, "vendor/pmacct-ta-104-ipfix-cisco-ipv6-sampling.pcap", 3, 3)
		benchDecode(b, exporter, setup, payload)
	})
}
