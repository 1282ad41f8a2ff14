package sflow

import (
	"net/netip"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"

	"github.com/flowsentry/flowsentry/flow"
	"github.com/flowsentry/flowsentry/samples"
)

// offered is one call of Offer.
type offered struct {
	dst                          netip.Addr
	proto, frameLength, stripped uint32
	header                       []byte
	now                          int64
}

// recorder is a SampleSink that records every call.
type recorder struct{ calls []offered }

func (r *recorder) Offer(dst netip.Addr, proto, frameLength, stripped uint32, header []byte, now int64) {
	r.calls = append(r.calls, offered{dst, proto, frameLength, stripped, append([]byte(nil), header...), now})
}

// TestDecodeSamples checks that the decoder offers the raw header of every
// record made from one, with the record's destination, and nothing for
// samples that make no record from a header.
func TestDecodeSamples(t *testing.T) {
	src, dst := netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("10.10.10.10")
	syn := packet(t, layers.EthernetTypeIPv4,
		&layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: src.AsSlice(), DstIP: dst.AsSlice()},
		&layers.TCP{SrcPort: 1234, DstPort: 80, SYN: true})
	arp := packet(t, layers.EthernetTypeARP, &layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4,
		HwAddressSize: 6, ProtAddressSize: 4, SourceHwAddress: make([]byte, 6), SourceProtAddress: src.AsSlice(),
		DstHwAddress: make([]byte, 6), DstProtAddress: dst.AsSlice()})
	tests := []struct {
		name     string
		payloads [][]byte
		want     int    // offers, one per record
		proto    uint32 // of every offer
	}{
		{name: "pmacct SYN flood", payloads: readPayloads(t, "flow-exports/derived/pmacct-sflow-s10-synflood.pcap"), want: 3807, proto: headerEthernet},
		{name: "akvorado 1140", payloads: readPayloads(t, "flow-exports/akvorado/sflow-data-1140.pcap"), want: 5, proto: headerEthernet},
		{name: "akvorado raw IPv4", payloads: readPayloads(t, "flow-exports/akvorado/sflow-data-sflow-raw-ipv4.pcap"), want: 2, proto: headerIPv4},
		{name: "crafted Ethernet header", payloads: [][]byte{datagram(agent4, flowSample(10, 1, 2, rawHeader(headerEthernet, 64, 4, syn)))}, want: 1, proto: headerEthernet},
		{name: "crafted sampled IPv4 data only", payloads: [][]byte{datagram(agent4, flowSample(10, 1, 2, sampledIP(40, 6, src, dst, 1234, 80, 2)))}, want: 0},
		{name: "crafted ARP header with sampled IPv4 data", payloads: [][]byte{datagram(agent4, flowSample(10, 1, 2,
			rawHeader(headerEthernet, 64, 4, arp), sampledIP(40, 6, src, dst, 1234, 80, 2)))}, want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{}
			d := &Decoder{Samples: rec}
			var recs []flow.Record
			for _, p := range tt.payloads {
				b := &flow.Batch{}
				if _, err := d.Decode(now, p, b); err != nil {
					t.Fatal(err)
				}
				recs = append(recs, b.Records...)
			}
			if len(rec.calls) != tt.want || tt.want > 0 && len(recs) != tt.want {
				t.Fatalf("%d offers for %d records, want %d", len(rec.calls), len(recs), tt.want)
			}
			for i, c := range rec.calls {
				if c.dst != recs[i].Dst || c.now != now || c.proto != tt.proto || len(c.header) == 0 || c.frameLength < uint32(len(c.header)) {
					t.Fatalf("offer %d: to %s, proto %d, frame %d, header %d bytes; record to %s", i, c.dst, c.proto, c.frameLength, len(c.header), recs[i].Dst)
				}
			}
		})
	}
}

// TestDecodeSamplesAllocs checks that a sample store that watches nothing,
// or other addresses, adds no allocation to Decode.
func TestDecodeSamplesAllocs(t *testing.T) {
	payloads := readPayloads(t, "flow-exports/derived/pmacct-sflow-s10-synflood.pcap")
	store, err := samples.New(samples.DefaultConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	d := &Decoder{Samples: store}
	batch := &flow.Batch{Records: make([]flow.Record, 0, 64)}
	decodeAll := func() {
		for _, p := range payloads {
			batch.Records = batch.Records[:0]
			if _, err := d.Decode(now, p, batch); err != nil {
				t.Fatal(err)
			}
		}
	}
	if a := testing.AllocsPerRun(10, decodeAll); a != 0 {
		t.Errorf("nothing watched: %v allocations per pass, want 0", a)
	}
	store.Watch(netip.MustParseAddr("192.0.2.1"), time.Unix(0, now))
	if a := testing.AllocsPerRun(10, decodeAll); a != 0 {
		t.Errorf("another address watched: %v allocations per pass, want 0", a)
	}
}

// BenchmarkDecodeSamples decodes pmacct's sFlow export of a SYN flood
// (424 datagrams, 3,807 flow samples) without a sample store, then with
// one that watches nothing, an address the capture does not reach, and the
// SYN flood's victim (its first 100 headers copied once, the others
// dropped).
func BenchmarkDecodeSamples(b *testing.B) {
	payloads := readPayloads(b, "flow-exports/derived/pmacct-sflow-s10-synflood.pcap")
	for _, tc := range []struct {
		name   string
		watch  string
		noHook bool
	}{{"no store", "", true}, {"nothing watched", "", false}, {"other watched", "192.0.2.1", false}, {"victim watched", "10.10.10.10", false}} {
		b.Run(tc.name, func(b *testing.B) {
			store, err := samples.New(samples.DefaultConfig(), nil)
			if err != nil {
				b.Fatal(err)
			}
			if tc.watch != "" {
				store.Watch(netip.MustParseAddr(tc.watch), time.Unix(0, now))
			}
			d := &Decoder{Samples: store}
			if tc.noHook {
				d.Samples = nil
			}
			batch := &flow.Batch{Records: make([]flow.Record, 0, 64)}
			n := 0
			b.ReportAllocs()
			for b.Loop() {
				for _, p := range payloads {
					batch.Records = batch.Records[:0]
					st, err := d.Decode(now, p, batch)
					if err != nil {
						b.Fatal(err)
					}
					n += st.Samples
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/sample")
		})
	}
}
