package sflow

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"

	"github.com/flowsentry/flowsentry/internal/testcaptures"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	gfsflow "github.com/netsampler/goflow2/v2/decoders/sflow"
	protoproducer "github.com/netsampler/goflow2/v2/producer/proto"

	"github.com/flowsentry/flowsentry/flow"
)

// now is the receive time the tests pass to Decode.
const now = int64(1_700_000_000_000_000_000)

var cmpAddr = cmpopts.EquateComparable(netip.Addr{})

// readFrames returns the frames of a capture named relative to the
// captures folder.
func readFrames(tb testing.TB, name string) [][]byte {
	tb.Helper()
	frames, _ := testcaptures.Frames(tb, name)
	return frames
}

// readPayloads returns the UDP payloads of a capture of exports.
func readPayloads(tb testing.TB, name string) [][]byte {
	tb.Helper()
	var payloads [][]byte
	for _, frame := range readFrames(tb, name) {
		if _, _, p, ok := flow.UDPPayload(frame, flow.LinkEthernet); ok {
			payloads = append(payloads, p)
		}
	}
	return payloads
}

// The reference: goflow2 v2.2.6 decodes the datagram; its packet parser
// (producer/proto) reads the raw headers, gopacket the IP length. Where the
// two designs differ on purpose, reference() says so.

// reference decodes a datagram with goflow2 into what Decode should give.
// comparable is false when a header holds something goflow2's packet
// parser reads differently on purpose (see headerComparable); the header
// fields of such a datagram cannot be compared.
func reference(tb testing.TB, payload []byte) (recs []flow.Record, counters []flow.IfCounters, comparable bool, err error) {
	var pkt gfsflow.Packet
	if err := gfsflow.DecodeMessageVersion(bytes.NewBuffer(payload), &pkt); err != nil {
		return nil, nil, false, err
	}
	agent, ok := netip.AddrFromSlice(pkt.AgentIP)
	if !ok {
		tb.Fatalf("goflow2 agent address %v", pkt.AgentIP)
	}
	comparable = true
	for _, s := range pkt.Samples {
		var r flow.Record
		var records []gfsflow.FlowRecord
		switch s := s.(type) {
		case gfsflow.FlowSample:
			// Compact interfaces: 2 format bits; only format 0 is an ifIndex.
			r = flow.Record{InIf: ifIndex(s.Input>>30, s.Input&0x3fffffff), OutIf: ifIndex(s.Output>>30, s.Output&0x3fffffff), SamplingRate: s.SamplingRate}
			records = s.Records
		case gfsflow.ExpandedFlowSample:
			r = flow.Record{InIf: ifIndex(s.InputIfFormat, s.InputIfValue), OutIf: ifIndex(s.OutputIfFormat, s.OutputIfValue), SamplingRate: s.SamplingRate}
			records = s.Records
		case gfsflow.CounterSample:
			for _, c := range s.Records {
				if g, ok := c.Data.(gfsflow.IfCounters); ok {
					counters = append(counters, flow.IfCounters{
						Time: now, Exporter: agent, IfIndex: g.IfIndex, Speed: g.IfSpeed,
						InOctets:    g.IfInOctets,
						InPackets:   uint64(g.IfInUcastPkts) + uint64(g.IfInMulticastPkts) + uint64(g.IfInBroadcastPkts),
						InDiscards:  g.IfInDiscards,
						InErrors:    g.IfInErrors,
						OutOctets:   g.IfOutOctets,
						OutPackets:  uint64(g.IfOutUcastPkts) + uint64(g.IfOutMulticastPkts) + uint64(g.IfOutBroadcastPkts),
						OutDiscards: g.IfOutDiscards,
						OutErrors:   g.IfOutErrors,
					})
				}
			}
			continue
		default:
			continue
		}
		if r.SamplingRate == 0 {
			r.SamplingRate = 1 // Decode's documented reading of rate 0
		}
		r.Start, r.End, r.Exporter, r.Source = now, now, agent, flow.SourceSFlow
		r.Packets = uint64(r.SamplingRate)
		l3Len, ok, cmpOK := referenceFlow(records, &r)
		comparable = comparable && cmpOK
		if !ok {
			continue
		}
		r.Bytes = l3Len * uint64(r.SamplingRate)
		recs = append(recs, r)
	}
	return recs, counters, comparable, nil
}

// ifIndex is what Decode reports for an interface: only format 0 is an
// ifIndex (1 is a discarded packet, 2 several output interfaces).
func ifIndex(format, value uint32) uint32 {
	if format != 0 {
		return 0
	}
	return value
}

// referenceFlow fills r from the records of one goflow2 flow sample: the
// first raw header if it holds IP, else the first sampled IPv4/IPv6 record.
func referenceFlow(records []gfsflow.FlowRecord, r *flow.Record) (l3Len uint64, ok, comparable bool) {
	comparable = true
	for _, rec := range records {
		h, isHeader := rec.Data.(gfsflow.SampledHeader)
		if !isHeader {
			continue
		}
		frame := h.HeaderData[:min(int(h.OriginalLength), len(h.HeaderData))]
		switch h.Protocol {
		case headerEthernet:
		case headerIPv4: // goflow2 reads Ethernet only: give it a frame
			frame = append([]byte{12: 0x08, 13: 0x00}, frame...)
		case headerIPv6:
			frame = append([]byte{12: 0x86, 13: 0xdd}, frame...)
		default:
			frame = nil
		}
		if frame == nil {
			break
		}
		comparable = headerComparable(frame)
		var msg protoproducer.ProtoProducerMessage
		if err := protoproducer.DefaultEnvironment.ParsePacket(&msg, frame); err != nil || len(msg.SrcAddr) == 0 {
			break
		}
		r.Src, _ = netip.AddrFromSlice(msg.SrcAddr)
		r.Dst, _ = netip.AddrFromSlice(msg.DstAddr)
		r.Proto = uint8(msg.Proto)
		r.Fragment = msg.IpFlags&1 != 0 || msg.FragmentOffset != 0
		if msg.FragmentOffset == 0 { // goflow2 also reads later fragments as if they began with ports
			r.SrcPort, r.DstPort, r.TCPFlags = uint16(msg.SrcPort), uint16(msg.DstPort), uint8(msg.TcpFlags)
		}
		// goflow2 only has the frame length (with link layer, FCS and
		// padding): the IP length comes from gopacket. So do ICMP type and
		// code: goflow2 v2.2.6 never sets them (its ParseICMP checks a call
		// counter that is already 1 when it runs).
		ipSeen := false
	layers:
		for _, l := range gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.Default).Layers() {
			switch l := l.(type) {
			case *layers.IPv4:
				if ipSeen {
					break layers
				}
				ipSeen, l3Len = true, uint64(l.Length)
			case *layers.IPv6:
				if ipSeen {
					break layers
				}
				ipSeen, l3Len = true, uint64(l.Length)+40
			case *layers.ICMPv4:
				r.ICMPType, r.ICMPCode = l.TypeCode.Type(), l.TypeCode.Code()
				break layers
			case *layers.ICMPv6:
				r.ICMPType, r.ICMPCode = l.TypeCode.Type(), l.TypeCode.Code()
				break layers
			case *layers.TCP, *layers.UDP:
				break layers // an ICMP layer beyond is tunnelled
			}
		}
		return l3Len, true, comparable
	}
	for _, rec := range records {
		var ip gfsflow.SampledIPBase
		switch d := rec.Data.(type) {
		case gfsflow.SampledIPv4:
			ip = d.SampledIPBase
		case gfsflow.SampledIPv6:
			ip = d.SampledIPBase
		default:
			continue
		}
		r.Src, _ = netip.AddrFromSlice(ip.SrcIP)
		r.Dst, _ = netip.AddrFromSlice(ip.DstIP)
		r.Proto, r.SrcPort, r.DstPort = uint8(ip.Protocol), uint16(ip.SrcPort), uint16(ip.DstPort)
		if r.Proto == flow.ProtoTCP {
			r.TCPFlags = uint8(ip.TcpFlags) // goflow2 drops the flags of sampled IP records
		}
		return uint64(ip.Length), true, comparable
	}
	return 0, false, comparable
}

// headerComparable tells whether goflow2's packet parser and gopacket read
// frame as flow.ParseHeader does. They differ on purpose for QinQ and MPLS
// tags (goflow2 knows 0x8100 only and stops MPLS at reserved labels), IPv4
// options (goflow2 assumes 20 bytes), IPv4 lengths below the header, IPv6
// extension headers (goflow2 reports them as the protocol), SCTP (goflow2
// reads no SCTP ports), transport headers that end within the Ethernet
// padding (goflow2 reads past the IP length), ICMP headers of 2 to 7 bytes
// (goflow2 reads 2, gopacket wants 8, ParseHeader 4) and ICMP in IPv4
// fragments (gopacket stops at any fragment).
func headerComparable(frame []byte) bool {
	if len(frame) < 14 {
		return true
	}
	off, etherType := 14, binary.BigEndian.Uint16(frame[12:])
	for etherType == 0x8100 && len(frame) >= off+4 {
		etherType, off = binary.BigEndian.Uint16(frame[off+2:]), off+4
	}
	ip := frame[off:]
	switch {
	case etherType == 0x0800 && len(ip) >= 20:
		ihl, total := int(ip[0]&0x0f)*4, int(binary.BigEndian.Uint16(ip[2:]))
		if ip[0]>>4 != 4 || ihl != 20 || total < 20 {
			return false
		}
		fragField := binary.BigEndian.Uint16(ip[6:])
		if fragField&0x1fff != 0 {
			return true // no transport is read
		}
		if fragField&0x2000 != 0 && ip[9] == flow.ProtoICMP {
			return false
		}
		return transportComparable(ip[9], ip[20:], total-20)
	case etherType == 0x86dd && len(ip) >= 40:
		switch ip[6] {
		case 0, 43, 44, 51, 60:
			return false
		}
		return ip[0]>>4 == 6 && transportComparable(ip[6], ip[40:], int(binary.BigEndian.Uint16(ip[4:])))
	case etherType == 0x0800 || etherType == 0x86dd || etherType == 0x8847 || etherType == 0x8848 ||
		etherType == 0x88a8 || etherType == 0x9100:
		return false // cut IP header, MPLS, QinQ
	}
	return true
}

// transportComparable: l4 runs to the end of the frame, ipLen is what the
// IP header leaves for it.
func transportComparable(proto uint8, l4 []byte, ipLen int) bool {
	cut := min(len(l4), ipLen)
	switch proto {
	case flow.ProtoTCP:
		return (cut >= 20) == (len(l4) >= 20)
	case flow.ProtoUDP:
		return (cut >= 8) == (len(l4) >= 8)
	case flow.ProtoICMP, flow.ProtoICMPv6:
		return (cut < 2 || cut >= 8) && (cut >= 2) == (len(l4) >= 2)
	case 132:
		return cut < 12
	}
	return true
}

// want is what a capture holds, counted over all its datagrams.
type want struct {
	Datagrams, FlowSamples, CounterSamples, Records, Counters, Skipped int
	Errors                                                             map[string]int
}

func TestDecodeCaptures(t *testing.T) {
	tests := []struct {
		name string
		file string
		want want
	}{
		{
			name: "nDPI: one flow sample, counters",
			file: "flow-exports/vendor/ndpi-sflow.pcap",
			want: want{Datagrams: 9, FlowSamples: 1, CounterSamples: 8, Records: 1, Counters: 8},
		},
		{
			// tshark agrees: 142 expanded and 2 compact counter samples,
			// 142 of them with generic interface counters. 5 of the 30
			// datagrams to port 6343 are not sFlow v5 (their first word is
			// 0x00050001); tshark and goflow2 reject them too.
			name: "HP switches: counter samples only",
			file: "flow-exports/vendor/sflow_multiple_counter_30_pdus.pcap",
			want: want{Datagrams: 30, CounterSamples: 144, Counters: 142, Skipped: 2, Errors: map[string]int{"version": 5}},
		},
		{
			name: "agent on IPv6",
			file: "flow-exports/vendor/sflow-print-v6.pcap",
			want: want{Datagrams: 25, FlowSamples: 13, CounterSamples: 48, Records: 13, Counters: 48},
		},
		{
			// Its UDP length says 8 bytes of payload (the IP packet holds
			// 868): what a socket receives is cut inside the header.
			name: "malformed (tcpdump segfault regression)",
			file: "flow-exports/vendor/sflow_print-segv.pcap",
			want: want{Datagrams: 1, Errors: map[string]int{"truncated": 1}},
		},
		{
			name: "akvorado: five flow samples",
			file: "flow-exports/akvorado/sflow-data-1140.pcap",
			want: want{Datagrams: 1, FlowSamples: 5, Records: 5},
		},
		{
			name: "akvorado: VXLAN",
			file: "flow-exports/akvorado/sflow-data-encap-vxlan.pcap",
			want: want{Datagrams: 1, FlowSamples: 1, Records: 1},
		},
		{
			name: "akvorado: ICMPv4",
			file: "flow-exports/akvorado/sflow-data-icmpv4.pcap",
			want: want{Datagrams: 1, FlowSamples: 1, Records: 1},
		},
		{
			name: "akvorado: ICMPv6",
			file: "flow-exports/akvorado/sflow-data-icmpv6.pcap",
			want: want{Datagrams: 1, FlowSamples: 1, Records: 1},
		},
		{
			name: "akvorado: QinQ",
			file: "flow-exports/akvorado/sflow-data-qinq.pcap",
			want: want{Datagrams: 1, FlowSamples: 1, Records: 1},
		},
		{
			name: "akvorado: expanded flow sample",
			file: "flow-exports/akvorado/sflow-data-sflow-expanded-sample.pcap",
			want: want{Datagrams: 1, FlowSamples: 1, Records: 1},
		},
		{
			name: "akvorado: expanded flow sample with IPv4 data",
			file: "flow-exports/akvorado/sflow-data-sflow-ipv4-data.pcap",
			want: want{Datagrams: 1, FlowSamples: 1, Records: 1},
		},
		{
			name: "akvorado: IPv4 header protocol",
			file: "flow-exports/akvorado/sflow-data-sflow-raw-ipv4.pcap",
			want: want{Datagrams: 1, FlowSamples: 2, Records: 2},
		},
		{
			name: "pmacct: nmap SYN scan sampled 1/1",
			file: "flow-exports/derived/pmacct-sflow-nmap-synscan.pcap",
			want: want{Datagrams: 224, FlowSamples: 2007, CounterSamples: 1, Records: 2007, Counters: 1},
		},
		{
			name: "pmacct: SYN flood sampled 1/10",
			file: "flow-exports/derived/pmacct-sflow-s10-synflood.pcap",
			want: want{Datagrams: 424, FlowSamples: 3807, Records: 3807},
		},
	}
	d := NewDecoder()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			total := want{Errors: map[string]int{}}
			for i, p := range readPayloads(t, tt.file) {
				total.Datagrams++
				b := flow.NewBatch()
				ds, err := d.Decode(now, p, b)
				wantRecs, wantCounters, comparable, refErr := reference(t, p)
				if err != nil {
					var de *flow.DecodeError
					if !errors.As(err, &de) {
						t.Fatalf("datagram %d: error %v is not a *flow.DecodeError", i, err)
					}
					total.Errors[de.Reason]++
					if len(b.Records)+len(b.Counters) != 0 {
						t.Errorf("datagram %d: %d records and %d counters appended despite %v", i, len(b.Records), len(b.Counters), err)
					}
					t.Logf("datagram %d: %v; goflow2: %v", i, err, refErr)
					b.Release()
					continue
				}
				if refErr != nil {
					t.Fatalf("datagram %d: goflow2 rejects it (%v), Decode accepts it", i, refErr)
				}
				if !comparable {
					t.Fatalf("datagram %d: a header goflow2 reads differently; the capture test expects none", i)
				}
				if diff := cmp.Diff(b.Records, wantRecs, cmpAddr, cmpopts.EquateEmpty()); diff != "" {
					t.Errorf("datagram %d: records (-got +want):\n%s", i, diff)
				}
				if diff := cmp.Diff(b.Counters, wantCounters, cmpAddr, cmpopts.EquateEmpty()); diff != "" {
					t.Errorf("datagram %d: counters (-got +want):\n%s", i, diff)
				}
				if ds.Records != len(b.Records) || ds.Counters != len(b.Counters) {
					t.Errorf("datagram %d: stats %+v for %d records, %d counters", i, ds, len(b.Records), len(b.Counters))
				}
				total.FlowSamples += ds.FlowSamples
				total.CounterSamples += ds.CounterSamples
				total.Records += ds.Records
				total.Counters += ds.Counters
				total.Skipped += ds.Skipped
				b.Release()
			}
			if tt.want.Errors == nil {
				tt.want.Errors = map[string]int{}
			}
			if diff := cmp.Diff(total, tt.want); diff != "" {
				t.Errorf("totals (-got +want):\n%s", diff)
			}
		})
	}
}

// sflowCaptures are the sFlow captures of the shared folder that Decode
// accepts datagrams of.
var sflowCaptures = []string{
	"flow-exports/vendor/ndpi-sflow.pcap",
	"flow-exports/vendor/sflow_multiple_counter_30_pdus.pcap",
	"flow-exports/vendor/sflow-print-v6.pcap",
	"flow-exports/akvorado/sflow-data-1140.pcap",
	"flow-exports/akvorado/sflow-data-encap-vxlan.pcap",
	"flow-exports/akvorado/sflow-data-icmpv4.pcap",
	"flow-exports/akvorado/sflow-data-icmpv6.pcap",
	"flow-exports/akvorado/sflow-data-qinq.pcap",
	"flow-exports/akvorado/sflow-data-sflow-expanded-sample.pcap",
	"flow-exports/akvorado/sflow-data-sflow-ipv4-data.pcap",
	"flow-exports/akvorado/sflow-data-sflow-raw-ipv4.pcap",
	"flow-exports/derived/pmacct-sflow-nmap-synscan.pcap",
	"flow-exports/derived/pmacct-sflow-s10-synflood.pcap",
}

func TestDecodeAllocs(t *testing.T) {
	payloads := readPayloads(t, "flow-exports/derived/pmacct-sflow-nmap-synscan.pcap")
	payloads = append(payloads, readPayloads(t, "flow-exports/vendor/sflow-print-v6.pcap")...)
	d := NewDecoder()
	b := &flow.Batch{Records: make([]flow.Record, 0, 64), Counters: make([]flow.IfCounters, 0, 64)}
	allocs := testing.AllocsPerRun(10, func() {
		for _, p := range payloads {
			b.Records, b.Counters = b.Records[:0], b.Counters[:0]
			if _, err := d.Decode(now, p, b); err != nil {
				t.Fatal(err)
			}
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per run over %d datagrams, want 0", allocs, len(payloads))
	}
}

// FuzzDecode checks invariants on any input and, where both decoders
// accept it, compares Decode with goflow2. Each run calls goflow2 and
// gopacket, so minimising a new input takes long: bound it.
//
//	go test ./collector/sflow -run '^$' -fuzz FuzzDecode -fuzztime 30s -fuzzminimizetime 5s
func FuzzDecode(f *testing.F) {
	for _, name := range append(sflowCaptures, "flow-exports/vendor/sflow_print-segv.pcap") {
		payloads := readPayloads(f, name)
		for i := 0; i < len(payloads); i += 1 + len(payloads)/6 {
			f.Add(payloads[i])
		}
	}
	f.Add(readFrames(f, "flow-exports/vendor/sflow_print-segv.pcap")[0][42:]) // past its UDP length
	reasons := map[string]bool{"truncated": true, "version": true, "address_type": true,
		"count": true, "sample_length": true, "record_length": true}
	d := NewDecoder()
	f.Fuzz(func(t *testing.T, p []byte) {
		held := flow.Record{Packets: 42}
		b := &flow.Batch{Records: []flow.Record{held}}
		ds, err := d.Decode(now, p, b)
		if err != nil {
			var de *flow.DecodeError
			if !errors.As(err, &de) || !reasons[de.Reason] {
				t.Fatalf("error %v is not a *flow.DecodeError with a known reason", err)
			}
			if ds != (Stats{}) || len(b.Records) != 1 || len(b.Counters) != 0 {
				t.Fatalf("rejected datagram left stats %+v, %d records, %d counters", ds, len(b.Records), len(b.Counters))
			}
			return // goflow2 is asked only about accepted input: its counts are not bounded by the bytes
		}
		got := b.Records[1:]
		if ds.Records != len(got) || ds.Counters != len(b.Counters) || ds.Records > ds.FlowSamples ||
			ds.FlowSamples+ds.CounterSamples > ds.Samples || ds.Skipped > ds.Samples || ds.Samples > len(p)/8 {
			t.Fatalf("stats %+v for %d records, %d counters, %d bytes", ds, len(got), len(b.Counters), len(p))
		}
		for _, r := range got {
			if r.Source != flow.SourceSFlow || !r.Exporter.IsValid() || !r.Src.IsValid() || r.Src.Is4() != r.Dst.Is4() ||
				r.SamplingRate == 0 || r.Packets != uint64(r.SamplingRate) || r.Bytes%uint64(r.SamplingRate) != 0 || r.Start != now {
				t.Fatalf("record %+v", r)
			}
		}
		wantRecs, wantCounters, comparable, refErr := reference(t, p)
		if refErr != nil {
			return
		}
		if diff := cmp.Diff(b.Counters, wantCounters, cmpAddr, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("counters (-got +want):\n%s", diff)
		}
		if !comparable {
			return
		}
		if diff := cmp.Diff(got, wantRecs, cmpAddr, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("records (-got +want):\n%s", diff)
		}
	})
}

// BenchmarkDecode decodes the datagrams of pmacct's sFlow export of an nmap
// SYN scan (224 datagrams, 2,007 flow samples with Ethernet headers).
//
//	go test ./collector/sflow -run '^$' -bench Decode -benchmem -count=6 -cpu 1,2 | tee new.txt
//	benchstat old.txt new.txt
func BenchmarkDecode(b *testing.B) {
	payloads := readPayloads(b, "flow-exports/derived/pmacct-sflow-nmap-synscan.pcap")
	d := NewDecoder()
	batch := &flow.Batch{Records: make([]flow.Record, 0, 64), Counters: make([]flow.IfCounters, 0, 4)}
	samples, size := 0, 0
	for _, p := range payloads {
		size += len(p)
	}
	b.SetBytes(int64(size))
	for b.Loop() {
		for _, p := range payloads {
			batch.Records, batch.Counters = batch.Records[:0], batch.Counters[:0]
			ds, err := d.Decode(now, p, batch)
			if err != nil {
				b.Fatal(err)
			}
			samples += ds.Samples
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(samples), "ns/sample")
}
