package netflow

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/flowsentry/flowsentry/flow"
)

// addrComparer lets go-cmp compare netip.Addr values.
var addrComparer = cmp.Comparer(func(a, b netip.Addr) bool { return a == b })

// captureCases are the NetFlow / IPFIX captures, each with its files in
// replay order (templates first) and what decoding them gives.
var captureCases = []struct {
	name  string
	files []string
	// want are the expected totals (Version is not checked).
	want Stats
	// goflowOrder gives, per datagram index, the order in which to
	// hand that datagram's sets to goflow2, which cannot use data
	// before its template in the same datagram; the order must give
	// the records in the order this decoder gives them.
	goflowOrder map[int][]int
	// noReference skips the comparison: goflow2 refuses every
	// datagram.
	noReference bool
}{
	{
		name:  "softflowd v5 synflood",
		files: []string{"derived/softflowd-v5-synflood.pcap"},
		want:  Stats{Records: 37669},
	},
	{
		name:  "softflowd v9 synflood",
		files: []string{"derived/softflowd-v9-synflood.pcap"},
		want:  Stats{Records: 37669, TemplatesLearned: 5},
	},
	{
		name:  "softflowd ipfix synflood",
		files: []string{"derived/softflowd-ipfix-synflood.pcap"},
		want:  Stats{Records: 37669, TemplatesLearned: 5},
	},
	{
		name:  "softflowd v9 nmap synscan",
		files: []string{"derived/softflowd-v9-nmap-synscan.pcap"},
		want:  Stats{Records: 2002, TemplatesLearned: 5},
	},
	{
		name:  "softflowd ipfix nmap synscan",
		files: []string{"derived/softflowd-ipfix-nmap-synscan.pcap"},
		want:  Stats{Records: 2002, TemplatesLearned: 5},
	},
	{
		name:  "softflowd ipfix dns rrsig amplification",
		files: []string{"derived/softflowd-ipfix-dns-rrsig-amp.pcap"},
		want:  Stats{Records: 414, TemplatesLearned: 5},
	},
	{
		name:  "pmacct-ta-100 ipfix cisco",
		files: []string{"vendor/pmacct-ta-100-ipfix-cisco.pcap"},
		want:  Stats{Records: 12, TemplatesLearned: 2},
	},
	{
		name:  "pmacct-ta-101 nfv9 cisco",
		files: []string{"vendor/pmacct-ta-101-nfv9-cisco.pcap"},
		want:  Stats{Records: 51, TemplatesLearned: 1},
	},
	{
		name:  "pmacct-ta-102 nfv9 cisco two source IDs",
		files: []string{"vendor/pmacct-ta-102-nfv9-cisco-sampling.pcap"},
		want:  Stats{Records: 35, TemplatesLearned: 4},
	},
	{
		name:  "pmacct-ta-104 ipfix cisco over IPv6 with sampling options",
		files: []string{"vendor/pmacct-ta-104-ipfix-cisco-ipv6-sampling.pcap"},
		want:  Stats{Records: 3, TemplatesLearned: 5},
	},
	{
		name:  "pmacct-ta-111 ipfix cisco over IPv6",
		files: []string{"vendor/pmacct-ta-111-ipfix-cisco-ipv6.pcap"},
		want:  Stats{Records: 13, TemplatesLearned: 5},
	},
	{
		name:        "ndpi netflow v9 without templates",
		files:       []string{"vendor/ndpi-netflowv9-no-templates.pcap"},
		want:        Stats{TemplateMisses: 23, Held: 10},
		noReference: true,
	},
	{
		name:  "ndpi fritzbox ipfix templates only",
		files: []string{"vendor/ndpi-ipfix-fritzbox-templates-only.pcap"},
		want:  Stats{TemplatesLearned: 3},
	},
	{
		name: "akvorado v9 options then data",
		files: []string{"akvorado/netflow-options-template.pcap", "akvorado/netflow-options-data.pcap",
			"akvorado/netflow-template.pcap", "akvorado/netflow-data.pcap"},
		want: Stats{Records: 4, TemplatesLearned: 2},
	},
	{
		// Sets: data 257, options template 256, options data 256,
		// template 257, data 257. The first data set is held, then
		// replayed when template 257 arrives, after the options data.
		name:        "akvorado v9 data before templates in one datagram",
		files:       []string{"akvorado/netflow-data+templates.pcap"},
		want:        Stats{Records: 21, TemplatesLearned: 2, TemplateMisses: 1, Held: 1, Replayed: 11},
		goflowOrder: map[int][]int{0: {1, 3, 2, 0, 4}},
	},
	{
		name:  "akvorado ipfix data link frame only",
		files: []string{"akvorado/netflow-datalink-template.pcap", "akvorado/netflow-datalink-data.pcap"},
		want:  Stats{TemplatesLearned: 1, NoAddress: 1},
	},
	{
		name:  "akvorado v9 icmp",
		files: []string{"akvorado/netflow-icmp-template.pcap", "akvorado/netflow-icmp-data.pcap"},
		want:  Stats{Records: 4, TemplatesLearned: 4},
	},
	{
		name:  "akvorado ipfix ipfixprobe biflows",
		files: []string{"akvorado/netflow-ipfixprobe-templates.pcap", "akvorado/netflow-ipfixprobe-data.pcap"},
		want:  Stats{Records: 4, TemplatesLearned: 2},
	},
	{
		name:  "akvorado ipfix juniper common properties",
		files: []string{"akvorado/netflow-juniper-cpid-template.pcap", "akvorado/netflow-juniper-cpid-data.pcap"},
		want:  Stats{TemplatesLearned: 1, NoAddress: 1},
	},
	{
		name:  "akvorado ipfix mpls",
		files: []string{"akvorado/netflow-mpls.pcap"},
		want:  Stats{Records: 2, TemplatesLearned: 2},
	},
	{
		name: "akvorado v9 multiple sampling rates",
		files: []string{"akvorado/netflow-multiplesamplingrates-options-template.pcap",
			"akvorado/netflow-multiplesamplingrates-options-data.pcap",
			"akvorado/netflow-multiplesamplingrates-template.pcap",
			"akvorado/netflow-multiplesamplingrates-data.pcap"},
		want: Stats{Records: 12, TemplatesLearned: 2},
	},
	{
		name:  "akvorado v9 nat events",
		files: []string{"akvorado/netflow-nat.pcap"},
		want:  Stats{Records: 9, TemplatesLearned: 4},
	},
	{
		name:  "akvorado v5",
		files: []string{"akvorado/netflow-nfv5.pcap"},
		want:  Stats{Records: 29},
	},
	{
		name:  "akvorado ipfix physical interfaces",
		files: []string{"akvorado/netflow-physicalinterfaces.pcap"},
		want:  Stats{Records: 8, TemplatesLearned: 2},
	},
	{
		name:  "akvorado v9 sampling rate in records",
		files: []string{"akvorado/netflow-samplingrate-template.pcap", "akvorado/netflow-samplingrate-data.pcap"},
		want:  Stats{Records: 6, TemplatesLearned: 1},
	},
}

// TestCaptures replays every NetFlow / IPFIX capture, templates first, and
// compares every record of every datagram with the goflow2-based reference,
// then the totals with the counts known for each capture. Record counts are
// those of the captures (tshark agrees); the README's nfacctd counts for
// pmacct-ta-101 (50), -102 (10) and -111 (12) are rows aggregated by
// 5-tuple.
func TestCaptures(t *testing.T) {
	for _, tc := range captureCases {
		t.Run(tc.name, func(t *testing.T) {
			dec := NewDecoder(NewTemplates(DefaultConfig()))
			ref := newReference()
			var total Stats
			var out []flow.Record
			for i, dg := range readAll(t, tc.files...) {
				var st Stats
				var err error
				out, st, err = dec.Decode(dg.exporter, dg.time, dg.payload, out[:0])
				if err != nil {
					t.Fatalf("datagram %d: %v", i+1, err)
				}
				total = addStats(total, st)
				if tc.noReference {
					continue
				}
				payload := dg.payload
				if order, ok := tc.goflowOrder[i]; ok {
					payload = reorderSets(t, payload, order)
				}
				want, err := ref.decode(dg.exporter, payload)
				if err != nil {
					t.Fatalf("datagram %d: goflow2: %v", i+1, err)
				}
				if diff := cmp.Diff(out, want.records, addrComparer); diff != "" {
					t.Fatalf("datagram %d (-got +want):\n%s", i+1, diff)
				}
				if st.NoAddress != want.noAddress {
					t.Errorf("datagram %d: NoAddress = %d, reference %d", i+1, st.NoAddress, want.noAddress)
				}
			}
			total.Version = 0
			if diff := cmp.Diff(total, tc.want); diff != "" {
				t.Errorf("totals (-got +want):\n%s", diff)
			}
		})
	}
}

// reorderSets returns a copy of a NetFlow v9 or IPFIX datagram with its sets
// in the given order.
func reorderSets(tb testing.TB, p []byte, order []int) []byte {
	hdr := ipfixHeaderLen
	if binary.BigEndian.Uint16(p) == 9 {
		hdr = v9HeaderLen
	}
	var sets [][]byte
	for b := p[hdr:]; len(b) >= 4; {
		n := int(binary.BigEndian.Uint16(b[2:]))
		if n < 4 || n > len(b) {
			tb.Fatalf("set %d: bad length %d", len(sets), n)
		}
		sets = append(sets, b[:n])
		b = b[n:]
	}
	out := append([]byte(nil), p[:hdr]...)
	for _, i := range order {
		out = append(out, sets[i]...)
	}
	return out
}

// addStats adds the counters of b to a.
func addStats(a, b Stats) Stats {
	a.Records += b.Records
	a.TemplatesLearned += b.TemplatesLearned
	a.TemplatesWithdrawn += b.TemplatesWithdrawn
	a.TemplateMisses += b.TemplateMisses
	a.Held += b.Held
	a.HeldDropped += b.HeldDropped
	a.Replayed += b.Replayed
	a.NoAddress += b.NoAddress
	return a
}

// decodeAll decodes datagrams with a fresh decoder, failing on any error,
// and returns every record.
func decodeAll(tb testing.TB, dgs []datagram) []flow.Record {
	tb.Helper()
	dec := NewDecoder(NewTemplates(DefaultConfig()))
	var out []flow.Record
	for i, dg := range dgs {
		var err error
		if out, _, err = dec.Decode(dg.exporter, dg.time, dg.payload, out); err != nil {
			tb.Fatalf("datagram %d: %v", i+1, err)
		}
	}
	return out
}

func ms(v int64) int64 { return v * 1e6 }

// TestRecordFields checks decoded records against values read by hand
// (with tshark) from the captures.
func TestRecordFields(t *testing.T) {
	cases := []struct {
		name  string
		files []string
		index int // of the record among all the capture's records
		want  flow.Record
	}{
		{
			// Template 313 holds IPv6 and IPv4 addresses; the IPv6
			// ones are all zeros. Start = unix secs - (sysUptime -
			// FIRST_SWITCHED) = 1677577615 s - (328882689 - 328866242)
			// ms. Sampler ID 1 has no options: rate 1.
			name:  "pmacct-ta-101 first record",
			files: []string{"vendor/pmacct-ta-101-nfv9-cisco.pcap"},
			want: flow.Record{
				Start: ms(1677577615000 - 16447), End: ms(1677577615000 - 16447),
				Exporter: netip.MustParseAddr("138.187.57.55"), InIf: 143, OutIf: 142,
				Src: netip.MustParseAddr("138.187.58.13"), Dst: netip.MustParseAddr("138.187.57.33"),
				SrcPort: 10000, DstPort: 58779, Packets: 1, Bytes: 60, SamplingRate: 1,
				Proto: flow.ProtoTCP, TCPFlags: flow.TCPAck, Source: flow.SourceNetFlowV9,
			},
		},
		{
			// Start = 1619605844 s + 783363000 ns - (23683 - 0) ms.
			name:  "softflowd v5 first record",
			files: []string{"derived/softflowd-v5-synflood.pcap"},
			want: flow.Record{
				Start: 1619605844783363000 - ms(23683), End: 1619605844783363000 - ms(23683),
				Exporter: netip.MustParseAddr("127.0.0.1"),
				Src:      netip.MustParseAddr("160.161.74.108"), Dst: netip.MustParseAddr("10.10.10.10"),
				SrcPort: 41885, DstPort: 25565, Packets: 1, Bytes: 46, SamplingRate: 1,
				Proto: flow.ProtoTCP, TCPFlags: flow.TCPSyn, Source: flow.SourceNetFlowV5,
			},
		},
		{
			// flowStart/EndMilliseconds 2021-04-28 10:30:21.099.
			name:  "softflowd ipfix first record",
			files: []string{"derived/softflowd-ipfix-synflood.pcap"},
			want: flow.Record{
				Start: ms(1619605821099), End: ms(1619605821099),
				Exporter: netip.MustParseAddr("127.0.0.1"),
				Src:      netip.MustParseAddr("160.161.74.108"), Dst: netip.MustParseAddr("10.10.10.10"),
				SrcPort: 41885, DstPort: 25565, Packets: 1, Bytes: 46, SamplingRate: 1,
				Proto: flow.ProtoTCP, TCPFlags: flow.TCPSyn, Source: flow.SourceIPFIX,
			},
		},
		{
			// ICMPv6 echo request given as destination port 32768
			// (type 128 << 8), ports cleared.
			name:  "akvorado icmpv6 in the destination port",
			files: []string{"akvorado/netflow-icmp-template.pcap", "akvorado/netflow-icmp-data.pcap"},
			want: flow.Record{
				Start: ms(1685867993216), End: ms(1685867993216),
				Exporter: netip.MustParseAddr("192.168.117.35"),
				Src:      netip.MustParseAddr("2001:db8::"), Dst: netip.MustParseAddr("2001:db8::1"),
				Packets: 1, Bytes: 104, SamplingRate: 1, Proto: flow.ProtoICMPv6,
				ICMPType: 128, Source: flow.SourceNetFlowV9,
			},
		},
		{
			// ICMP echo request given as destination port 2048.
			name:  "akvorado icmpv4 in the destination port",
			files: []string{"akvorado/netflow-icmp-template.pcap", "akvorado/netflow-icmp-data.pcap"},
			index: 2,
			want: flow.Record{
				Start: ms(1685867995034), End: ms(1685867995034),
				Exporter: netip.MustParseAddr("192.168.117.35"),
				Src:      netip.MustParseAddr("203.0.113.4"), Dst: netip.MustParseAddr("203.0.113.5"),
				Packets: 1, Bytes: 84, SamplingRate: 1, Proto: flow.ProtoICMP,
				ICMPType: 8, Source: flow.SourceNetFlowV9,
			},
		},
		{
			// flowStart/EndMicroseconds (NTP format); the reverse
			// (RFC 5103, enterprise 29305) counts are not read.
			name:  "ipfixprobe microsecond times",
			files: []string{"akvorado/netflow-ipfixprobe-templates.pcap", "akvorado/netflow-ipfixprobe-data.pcap"},
			want: flow.Record{
				Start:    time.Date(2009, 10, 5, 6, 6, 7, 492059999, time.UTC).UnixNano(),
				End:      time.Date(2009, 10, 5, 6, 6, 7, 526084999, time.UTC).UnixNano(),
				Exporter: netip.MustParseAddr("127.0.0.1"), InIf: 10,
				Src: netip.MustParseAddr("10.10.1.4"), Dst: netip.MustParseAddr("10.10.1.1"),
				SrcPort: 56166, DstPort: 53, Packets: 1, Bytes: 62, SamplingRate: 1,
				Proto: flow.ProtoUDP, Source: flow.SourceIPFIX,
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := decodeAll(t, readAll(t, tc.files...))
			if tc.index >= len(got) {
				t.Fatalf("%d records, want record %d", len(got), tc.index)
			}
			if diff := cmp.Diff(got[tc.index], tc.want, addrComparer); diff != "" {
				t.Errorf("record %d (-got +want):\n%s", tc.index, diff)
			}
		})
	}
}

// TestDistinctFlows checks the captures whose README counts are nfacctd
// rows aggregated by 5-tuple.
func TestDistinctFlows(t *testing.T) {
	type fiveTuple struct {
		src, dst         netip.Addr
		srcPort, dstPort uint16
		proto            uint8
	}
	cases := []struct {
		file     string
		distinct int
	}{
		{"vendor/pmacct-ta-101-nfv9-cisco.pcap", 50},
		{"vendor/pmacct-ta-100-ipfix-cisco.pcap", 12},
		{"vendor/pmacct-ta-111-ipfix-cisco-ipv6.pcap", 12},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			seen := map[fiveTuple]bool{}
			for _, r := range decodeAll(t, readDatagrams(t, tc.file)) {
				seen[fiveTuple{r.Src, r.Dst, r.SrcPort, r.DstPort, r.Proto}] = true
			}
			if len(seen) != tc.distinct {
				t.Errorf("%d distinct 5-tuples, want %d", len(seen), tc.distinct)
			}
		})
	}
}
