package sflow

import (
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"net"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/flowsentry/flowsentry/flow"
)

// Builders of sFlow v5 datagrams (XDR: big-endian 32-bit words, opaque
// data padded to 4 bytes).

func words(v ...uint32) []byte {
	var b []byte
	for _, w := range v {
		b = binary.BigEndian.AppendUint32(b, w)
	}
	return b
}

func cat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// item is an sFlow data_format, length, data triple.
func item(format uint32, data ...[]byte) []byte {
	body := cat(data...)
	return cat(words(format, uint32(len(body))), body)
}

var (
	agent4 = netip.MustParseAddr("192.0.2.10")
	agent6 = netip.MustParseAddr("2001:db8::10")
	src4   = netip.MustParseAddr("198.51.100.1")
	dst4   = netip.MustParseAddr("203.0.113.2")
	src6   = netip.MustParseAddr("2001:db8:1::1")
	dst6   = netip.MustParseAddr("2001:db8:2::2")
)

func datagram(agent netip.Addr, samples ...[]byte) []byte {
	addrType := uint32(1)
	if agent.Is6() {
		addrType = 2
	}
	return cat(words(5, addrType), agent.AsSlice(), words(0, 7, 1000, uint32(len(samples))), cat(samples...))
}

func flowSample(rate, in, out uint32, records ...[]byte) []byte {
	return item(sampleFlow, words(1, 5, rate, rate*10, 0, in, out, uint32(len(records))), cat(records...))
}

func expandedFlowSample(rate, inFormat, in, outFormat, out uint32, records ...[]byte) []byte {
	return item(sampleExpandedFlow, words(1, 0, 5, rate, rate*10, 0, inFormat, in, outFormat, out, uint32(len(records))), cat(records...))
}

func rawHeader(proto, frameLength, stripped uint32, header []byte) []byte {
	padded := append(header[:len(header):len(header)], make([]byte, (4-len(header)%4)%4)...)
	return item(recordRawHeader, words(proto, frameLength, stripped, uint32(len(header))), padded)
}

func sampledIP(length, proto uint32, src, dst netip.Addr, srcPort, dstPort, flags uint32) []byte {
	format := uint32(recordSampledIP4)
	if src.Is6() {
		format = recordSampledIP6
	}
	return item(format, words(length, proto), src.AsSlice(), dst.AsSlice(), words(srcPort, dstPort, flags, 0))
}

func counterSample(expanded bool, records ...[]byte) []byte {
	if expanded {
		return item(sampleExpandedCounter, words(1, 0, 7, uint32(len(records))), cat(records...))
	}
	return item(sampleCounter, words(1, 7, uint32(len(records))), cat(records...))
}

// genericCounters is a generic interface counters record whose counters
// are distinct small numbers, so a field read at the wrong offset shows.
func genericCounters(ifIndex uint32) []byte {
	return item(counterGeneric,
		words(ifIndex, 6), binary.BigEndian.AppendUint64(nil, 10_000_000_000), words(1, 3),
		binary.BigEndian.AppendUint64(nil, 1_000_001), words(11, 12, 13, 14, 15, 16),
		binary.BigEndian.AppendUint64(nil, 2_000_002), words(21, 22, 23, 24, 25, 0))
}

// packet serialises an Ethernet frame around the layers.
func packet(tb testing.TB, etherType layers.EthernetType, ls ...gopacket.SerializableLayer) []byte {
	tb.Helper()
	for _, l := range ls {
		if tr, ok := l.(interface {
			SetNetworkLayerForChecksum(gopacket.NetworkLayer) error
		}); ok {
			if err := tr.SetNetworkLayerForChecksum(ls[0].(gopacket.NetworkLayer)); err != nil {
				tb.Fatal(err)
			}
		}
	}
	mac := net.HardwareAddr{0, 0, 0x5e, 0, 0x53, 1}
	all := append([]gopacket.SerializableLayer{&layers.Ethernet{SrcMAC: mac, DstMAC: mac, EthernetType: etherType}}, ls...)
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, all...); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

func TestDecodeCrafted(t *testing.T) {
	syn := packet(t, layers.EthernetTypeIPv4,
		&layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: src4.AsSlice(), DstIP: dst4.AsSlice()},
		&layers.TCP{SrcPort: 40000, DstPort: 443, SYN: true, ECE: true, Window: 1024})
	udp6 := packet(t, layers.EthernetTypeIPv6,
		&layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolUDP, SrcIP: src6.AsSlice(), DstIP: dst6.AsSlice()},
		&layers.UDP{SrcPort: 53, DstPort: 33000}, gopacket.Payload(make([]byte, 100)))
	arp := packet(t, layers.EthernetTypeARP, &layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4,
		HwAddressSize: 6, ProtAddressSize: 4, SourceHwAddress: make([]byte, 6), SourceProtAddress: src4.AsSlice(),
		DstHwAddress: make([]byte, 6), DstProtAddress: dst4.AsSlice()})
	// A segmentation-offloaded IPv4 packet behind a VLAN tag: total length 0.
	tso := cat(syn[:12], []byte{0x81, 0x00, 0, 10, 0x08, 0x00}, syn[14:16], []byte{0, 0}, syn[18:])

	base := flow.Record{Start: now, End: now, Exporter: agent4, Source: flow.SourceSFlow}
	with := func(f func(r *flow.Record)) flow.Record {
		r := base
		f(&r)
		return r
	}
	synRecord := func(rate uint64, in, out uint32) flow.Record {
		return with(func(r *flow.Record) {
			r.InIf, r.OutIf = in, out
			r.Src, r.Dst, r.Proto, r.SrcPort, r.DstPort = src4, dst4, flow.ProtoTCP, 40000, 443
			r.TCPFlags = flow.TCPSyn | flow.TCPEce
			r.Packets, r.Bytes, r.SamplingRate = rate, 40*rate, uint32(rate)
		})
	}
	wantCounters := func(agent netip.Addr, ifIndex uint32) flow.IfCounters {
		return flow.IfCounters{Time: now, Exporter: agent, IfIndex: ifIndex, Speed: 10_000_000_000,
			InOctets: 1_000_001, InPackets: 11 + 12 + 13, InDiscards: 14, InErrors: 15,
			OutOctets: 2_000_002, OutPackets: 21 + 22 + 23, OutDiscards: 24, OutErrors: 25}
	}

	tests := []struct {
		name         string
		data         []byte
		wantRecords  []flow.Record
		wantCounters []flow.IfCounters
		wantStats    Stats
	}{
		{
			name:        "flow sample with an Ethernet header",
			data:        datagram(agent4, flowSample(100, 3, 4, rawHeader(headerEthernet, 64, 4, syn))),
			wantRecords: []flow.Record{synRecord(100, 3, 4)},
			wantStats:   Stats{Samples: 1, FlowSamples: 1, Records: 1},
		},
		{
			name: "compact interfaces: discarded packet, several outputs",
			data: datagram(agent4,
				flowSample(1, 1<<30|258, 5, rawHeader(headerEthernet, 64, 4, syn)),
				flowSample(1, 7, 2<<30|3, rawHeader(headerEthernet, 64, 4, syn))),
			wantRecords: []flow.Record{synRecord(1, 0, 5), synRecord(1, 7, 0)},
			wantStats:   Stats{Samples: 2, FlowSamples: 2, Records: 2},
		},
		{
			name: "expanded interfaces: ifIndex beyond 30 bits, several outputs",
			data: datagram(agent4,
				expandedFlowSample(2, 0, 0x7fff_ffff, 2, 3, rawHeader(headerEthernet, 64, 4, syn))),
			wantRecords: []flow.Record{synRecord(2, 0x7fff_ffff, 0)},
			wantStats:   Stats{Samples: 1, FlowSamples: 1, Records: 1},
		},
		{
			name:        "sampling rate 0 reads as unsampled",
			data:        datagram(agent4, flowSample(0, 3, 4, rawHeader(headerEthernet, 64, 4, syn))),
			wantRecords: []flow.Record{synRecord(1, 3, 4)},
			wantStats:   Stats{Samples: 1, FlowSamples: 1, Records: 1},
		},
		{
			name: "IPv6 agent, IPv4 and IPv6 header protocols",
			data: datagram(agent6,
				flowSample(10, 1, 2, rawHeader(headerIPv4, 44, 0, syn[14:])),
				flowSample(10, 1, 2, rawHeader(headerIPv6, 148, 0, udp6[14:]))),
			wantRecords: []flow.Record{
				with(func(r *flow.Record) {
					*r = synRecord(10, 1, 2)
					r.Exporter = agent6
				}),
				with(func(r *flow.Record) {
					r.Exporter, r.InIf, r.OutIf = agent6, 1, 2
					r.Src, r.Dst, r.Proto, r.SrcPort, r.DstPort = src6, dst6, flow.ProtoUDP, 53, 33000
					r.Packets, r.Bytes, r.SamplingRate = 10, 148*10, 10
				}),
			},
			wantStats: Stats{Samples: 2, FlowSamples: 2, Records: 2},
		},
		{
			name: "sampled IPv4 and IPv6 records without a header",
			data: datagram(agent4,
				flowSample(4, 1, 2, sampledIP(1500, 6, src4, dst4, 80, 40001, uint32(flow.TCPAck|flow.TCPPsh))),
				flowSample(4, 1, 2, sampledIP(576, 17, src6, dst6, 53, 40002, 0xff))),
			wantRecords: []flow.Record{
				with(func(r *flow.Record) {
					r.InIf, r.OutIf = 1, 2
					r.Src, r.Dst, r.Proto, r.SrcPort, r.DstPort, r.TCPFlags = src4, dst4, flow.ProtoTCP, 80, 40001, flow.TCPAck|flow.TCPPsh
					r.Packets, r.Bytes, r.SamplingRate = 4, 6000, 4
				}),
				with(func(r *flow.Record) {
					r.InIf, r.OutIf = 1, 2
					r.Src, r.Dst, r.Proto, r.SrcPort, r.DstPort = src6, dst6, flow.ProtoUDP, 53, 40002
					r.Packets, r.Bytes, r.SamplingRate = 4, 2304, 4
				}),
			},
			wantStats: Stats{Samples: 2, FlowSamples: 2, Records: 2},
		},
		{
			name: "a non-IP header falls back to sampled IPv4 data",
			data: datagram(agent4, flowSample(1, 1, 2,
				rawHeader(headerEthernet, 64, 4, arp),
				sampledIP(40, 6, src4, dst4, 40000, 443, uint32(flow.TCPSyn|flow.TCPEce)))),
			wantRecords: []flow.Record{synRecord(1, 1, 2)},
			wantStats:   Stats{Samples: 1, FlowSamples: 1, Records: 1},
		},
		{
			name:        "the first raw header counts",
			data:        datagram(agent4, flowSample(1, 1, 2, rawHeader(headerEthernet, 64, 4, syn), rawHeader(headerEthernet, 148, 4, udp6))),
			wantRecords: []flow.Record{synRecord(1, 1, 2)},
			wantStats:   Stats{Samples: 1, FlowSamples: 1, Records: 1},
		},
		{
			name: "IP length 0: frame length less stripped bytes and link layer",
			data: datagram(agent4, flowSample(3, 1, 2, rawHeader(headerEthernet, 1518, 4, tso))),
			wantRecords: []flow.Record{with(func(r *flow.Record) {
				*r = synRecord(3, 1, 2)
				r.Bytes = (1518 - 4 - 18) * 3
			})},
			wantStats: Stats{Samples: 1, FlowSamples: 1, Records: 1},
		},
		{
			name: "samples that add nothing",
			data: datagram(agent4,
				flowSample(1, 1, 2, rawHeader(headerEthernet, 64, 4, arp)),
				flowSample(1, 1, 2, rawHeader(2, 64, 4, syn)),        // token bus header
				flowSample(1, 1, 2, item(1001, words(10, 0, 20, 0))), // extended switch only
				item(4413<<12|1, words(1, 2, 3)),                     // vendor sample
				item(5, words(1, 2, 3)),                              // drop sample
				counterSample(false, item(1001, words(5, 6, 7))),     // CPU counters only
			),
			wantStats: Stats{Samples: 6, FlowSamples: 3, CounterSamples: 1, Skipped: 6},
		},
		{
			name: "counter samples: generic counters among others",
			data: datagram(agent6,
				counterSample(false, item(2, make([]byte, 52)), genericCounters(9), item(0, nil)),
				counterSample(true, genericCounters(10), genericCounters(11))),
			wantCounters: []flow.IfCounters{wantCounters(agent6, 9), wantCounters(agent6, 10), wantCounters(agent6, 11)},
			wantStats:    Stats{Samples: 2, CounterSamples: 2, Counters: 3},
		},
		{
			name: "flow and counter samples mixed",
			data: datagram(agent4,
				counterSample(false, genericCounters(3)),
				flowSample(100, 3, 4, rawHeader(headerEthernet, 64, 4, syn))),
			wantRecords:  []flow.Record{synRecord(100, 3, 4)},
			wantCounters: []flow.IfCounters{wantCounters(agent4, 3)},
			wantStats:    Stats{Samples: 2, FlowSamples: 1, CounterSamples: 1, Records: 1, Counters: 1},
		},
		{
			name: "no samples",
			data: datagram(agent4),
		},
	}
	d := NewDecoder()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Decode appends: what the batch held stays.
			held := flow.Record{Packets: 42}
			b := &flow.Batch{Records: []flow.Record{held}, Counters: []flow.IfCounters{{IfIndex: 42}}}
			st, err := d.Decode(now, tt.data, b)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(b.Records, append([]flow.Record{held}, tt.wantRecords...), cmpAddr); diff != "" {
				t.Errorf("records (-got +want):\n%s", diff)
			}
			if diff := cmp.Diff(b.Counters, append([]flow.IfCounters{{IfIndex: 42}}, tt.wantCounters...), cmpAddr); diff != "" {
				t.Errorf("counters (-got +want):\n%s", diff)
			}
			if diff := cmp.Diff(st, tt.wantStats); diff != "" {
				t.Errorf("stats (-got +want):\n%s", diff)
			}
		})
	}
}

func TestDecodeMalformed(t *testing.T) {
	syn := packet(t, layers.EthernetTypeIPv4,
		&layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: src4.AsSlice(), DstIP: dst4.AsSlice()},
		&layers.TCP{SrcPort: 40000, DstPort: 443, SYN: true})
	good := datagram(agent4, counterSample(false, genericCounters(3)), flowSample(1, 1, 2, rawHeader(headerEthernet, 64, 4, syn)))
	withWord := func(data []byte, off int, v uint32) []byte {
		out := append([]byte(nil), data...)
		binary.BigEndian.PutUint32(out[off:], v)
		return out
	}
	rng := rand.New(rand.NewPCG(1, 2))
	garbage := make([]byte, 64<<10)
	for i := range garbage {
		garbage[i] = byte(rng.Uint32())
	}
	const samplesOff = 28 // version, address type, IPv4 address, sub-agent, sequence, uptime, count
	// Offsets inside the counter sample (first sample) and the flow
	// sample after it.
	const (
		counterSampleLen = samplesOff + 4
		counterCount     = samplesOff + 16
		counterRecordLen = samplesOff + 24
		flowSampleOff    = samplesOff + 8 + 12 + 8 + 88
		flowSampleLen    = flowSampleOff + 4
		flowRecordCount  = flowSampleOff + 8 + 28
		rawRecordOff     = flowSampleOff + 8 + 32
		rawRecordLen     = rawRecordOff + 4
		rawHeaderLen     = rawRecordOff + 8 + 12
	)
	tests := []struct {
		name       string
		data       []byte
		wantReason string
	}{
		{name: "empty", data: nil, wantReason: "truncated"},
		{name: "1 byte", data: []byte{5}, wantReason: "truncated"},
		{name: "version only", data: words(5), wantReason: "truncated"},
		{name: "version 4", data: withWord(good, 0, 4), wantReason: "version"},
		{name: "version 5 little-endian", data: withWord(good, 0, 0x0500_0000), wantReason: "version"},
		{name: "address type 0", data: withWord(good, 4, 0), wantReason: "address_type"},
		{name: "address type 3", data: withWord(good, 4, 3), wantReason: "address_type"},
		{name: "IPv4 agent cut", data: good[:10], wantReason: "truncated"},
		{name: "IPv6 agent cut", data: datagram(agent6)[:20], wantReason: "truncated"},
		{name: "sample count cut", data: good[:samplesOff-2], wantReason: "truncated"},
		{name: "huge sample count", data: withWord(good, samplesOff-4, 0xffff_ffff), wantReason: "count"},
		{name: "one sample more than sent", data: withWord(good, samplesOff-4, 3), wantReason: "sample_length"},
		{name: "sample length past the end", data: withWord(good, counterSampleLen, 0xffff_fff0), wantReason: "sample_length"},
		{name: "zero-length counter sample", data: datagram(agent4, item(sampleCounter)), wantReason: "sample_length"},
		{name: "zero-length flow sample", data: datagram(agent4, item(sampleFlow)), wantReason: "sample_length"},
		{name: "zero-length expanded flow sample", data: datagram(agent4, item(sampleExpandedFlow, make([]byte, 40))), wantReason: "sample_length"},
		{name: "zero-length expanded counter sample", data: datagram(agent4, item(sampleExpandedCounter, make([]byte, 12))), wantReason: "sample_length"},
		{name: "huge counter record count", data: withWord(good, counterCount, 1<<30), wantReason: "count"},
		{name: "counter record length past the sample", data: withWord(good, counterRecordLen, 200), wantReason: "record_length"},
		{name: "generic counters too short", data: datagram(agent4, counterSample(false, item(counterGeneric, make([]byte, 84)))), wantReason: "record_length"},
		{name: "flow sample length past the end", data: withWord(good, flowSampleLen, 1<<20), wantReason: "sample_length"},
		{name: "huge flow record count", data: withWord(good, flowRecordCount, 0xffff_ffff), wantReason: "count"},
		{name: "one flow record more than sent", data: withWord(good, flowRecordCount, 2), wantReason: "record_length"},
		{name: "flow record length past the sample", data: withWord(good, rawRecordLen, 0xffff_ffff), wantReason: "record_length"},
		{name: "raw header longer than its record", data: withWord(good, rawHeaderLen, 200), wantReason: "record_length"},
		{name: "zero-length raw header record", data: datagram(agent4, flowSample(1, 1, 2, item(recordRawHeader))), wantReason: "record_length"},
		{name: "sampled IPv4 record too short", data: datagram(agent4, flowSample(1, 1, 2, item(recordSampledIP4, make([]byte, 28)))), wantReason: "record_length"},
		{name: "sampled IPv6 record too short", data: datagram(agent4, flowSample(1, 1, 2, item(recordSampledIP6, make([]byte, 52)))), wantReason: "record_length"},
		{name: "64 KiB of garbage", data: garbage, wantReason: "version"},
		// Its UDP length says 8 bytes; past them lies the malformed body
		// that made tcpdump crash (Ethernet, IPv4 and UDP take 42 bytes):
		// a flow sample of 156 bytes claiming 768 records.
		{name: "tcpdump segfault datagram past its UDP length", data: readFrames(t, "flow-exports/vendor/sflow_print-segv.pcap")[0][42:], wantReason: "count"},
		{name: "valid header, then 64 KiB of garbage", data: cat(words(5, 1), agent4.AsSlice(), words(0, 1, 2, 1000), garbage), wantReason: "sample_length"},
	}
	d := NewDecoder()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := &flow.Batch{Records: make([]flow.Record, 1, 8), Counters: make([]flow.IfCounters, 2, 8)}
			st, err := d.Decode(now, tt.data, b)
			var de *flow.DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("error %v, want a *flow.DecodeError", err)
			}
			if de.Reason != tt.wantReason {
				t.Errorf("reason %q (%v), want %q", de.Reason, err, tt.wantReason)
			}
			if st != (Stats{}) || len(b.Records) != 1 || len(b.Counters) != 2 {
				t.Errorf("stats %+v, %d records, %d counters: a rejected datagram must leave the batch as it was", st, len(b.Records), len(b.Counters))
			}
		})
	}
	t.Run("good datagram", func(t *testing.T) {
		if _, err := d.Decode(now, good, &flow.Batch{}); err != nil {
			t.Fatalf("the datagram the cases mutate is rejected: %v", err)
		}
	})
}

// TestDecodeTruncatedEverywhere cuts real datagrams at every length: each
// cut must be rejected with a reason, leaving the batch as it was.
func TestDecodeTruncatedEverywhere(t *testing.T) {
	reasons := map[string]bool{"truncated": true, "count": true, "sample_length": true, "record_length": true}
	d := NewDecoder()
	for _, name := range sflowCaptures {
		t.Run(name, func(t *testing.T) {
			for i, p := range firstAccepted(t, name, 3) {
				for n := range len(p) {
					b := &flow.Batch{}
					st, err := d.Decode(now, p[:n], b)
					var de *flow.DecodeError
					if !errors.As(err, &de) || !reasons[de.Reason] {
						t.Fatalf("datagram %d cut to %d of %d bytes: error %v", i, n, len(p), err)
					}
					if st != (Stats{}) || len(b.Records)+len(b.Counters) != 0 {
						t.Fatalf("datagram %d cut to %d bytes: stats %+v, %d records, %d counters", i, n, st, len(b.Records), len(b.Counters))
					}
				}
			}
		})
	}
}

// firstAccepted returns up to n datagrams of a capture that Decode accepts.
func firstAccepted(tb testing.TB, name string, n int) [][]byte {
	var out [][]byte
	d := NewDecoder()
	for _, p := range readPayloads(tb, name) {
		if _, err := d.Decode(now, p, &flow.Batch{}); err == nil && len(out) < n {
			out = append(out, p)
		}
	}
	return out
}
