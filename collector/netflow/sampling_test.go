package netflow

import (
	"math"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/flowsentry/flowsentry/flow"
)

// scaled is what sampling does to a record.
type scaled struct {
	Rate           uint32
	Packets, Bytes uint64
}

func scaledOf(records []flow.Record) []scaled {
	var out []scaled
	for _, r := range records {
		out = append(out, scaled{r.SamplingRate, r.Packets, r.Bytes})
	}
	return out
}

// TestSamplingCaptures checks the sampling rates and scaled counts of the
// captures that carry sampling information, with raw counts read by
// tshark.
func TestSamplingCaptures(t *testing.T) {
	cases := []struct {
		name  string
		files []string
		want  []scaled
		// rest is the rate every record after want must have.
		rest uint32
	}{
		{
			// Options template 257: selectorId scope, samplingSize 1,
			// samplingPopulation 256 (random 1-out-of-256); the data
			// records name selector 1.
			name:  "pmacct-ta-104 ipfix selector options",
			files: []string{"vendor/pmacct-ta-104-ipfix-cisco-ipv6-sampling.pcap"},
			want:  []scaled{{256, 1 * 256, 72 * 256}, {256, 60 * 256, 5760 * 256}, {256, 60 * 256, 4800 * 256}},
		},
		{
			// Records name sampler 1 but the capture holds no sampler
			// options (its README says otherwise): nothing to scale by.
			name:  "pmacct-ta-102 nfv9 sampler without options",
			files: []string{"vendor/pmacct-ta-102-nfv9-cisco-sampling.pcap"},
			want:  []scaled{{1, 1, 60}},
			rest:  1,
		},
		{
			// Options data: sampler 1 at 1 in 2000, sampler 2 at 1 in
			// 4000; the first data record uses sampler 2.
			name: "akvorado v9 multiple sampling rates",
			files: []string{"akvorado/netflow-multiplesamplingrates-options-template.pcap",
				"akvorado/netflow-multiplesamplingrates-options-data.pcap",
				"akvorado/netflow-multiplesamplingrates-template.pcap",
				"akvorado/netflow-multiplesamplingrates-data.pcap"},
			want: []scaled{{4000, 18 * 4000, 1348 * 4000}, {2000, 4 * 2000, 579 * 2000}, {2000, 1 * 2000, 1280 * 2000}},
			rest: 2000,
		},
		{
			// SAMPLING_INTERVAL 2048 in each data record.
			name:  "akvorado v9 rate in the records",
			files: []string{"akvorado/netflow-samplingrate-template.pcap", "akvorado/netflow-samplingrate-data.pcap"},
			want: []scaled{{2048, 2048, 160 * 2048}, {2048, 2048, 420 * 2048}, {2048, 2048, 1163 * 2048},
				{2048, 2048, 187 * 2048}, {2048, 2048, 1289 * 2048}, {2048, 2048, 521 * 2048}},
		},
		{
			// Sampler 1 at 1 in 30000 from options sent before the data
			// template.
			name: "akvorado v9 sampler options then data",
			files: []string{"akvorado/netflow-options-template.pcap", "akvorado/netflow-options-data.pcap",
				"akvorado/netflow-template.pcap", "akvorado/netflow-data.pcap"},
			want: []scaled{{30000, 30000, 1500 * 30000}, {30000, 30000, 1500 * 30000},
				{30000, 30000, 1400 * 30000}, {30000, 30000, 1448 * 30000}},
		},
		{
			// System-wide SAMPLING_INTERVAL 100 in the same datagram as
			// the data; the data set held before its template gets it
			// too.
			name:  "akvorado v9 source ID rate with held data",
			files: []string{"akvorado/netflow-data+templates.pcap"},
			rest:  100,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := decodeAll(t, readAll(t, tc.files...))
			if len(got) < len(tc.want) {
				t.Fatalf("%d records, want at least %d", len(got), len(tc.want))
			}
			if diff := cmp.Diff(scaledOf(got[:len(tc.want)]), tc.want); diff != "" {
				t.Errorf("(-got +want):\n%s", diff)
			}
			for i, r := range got[len(tc.want):] {
				if r.SamplingRate != tc.rest || r.Packets%uint64(tc.rest) != 0 || r.Bytes%uint64(tc.rest) != 0 {
					t.Errorf("record %d: rate %d, packets %d, bytes %d; want rate %d and counts scaled by it",
						len(tc.want)+i, r.SamplingRate, r.Packets, r.Bytes, tc.rest)
				}
			}
		})
	}
}

// TestSamplingRules checks which rate applies, on synthetic datagrams.
func TestSamplingRules(t *testing.T) {
	exporterA := netip.MustParseAddr("192.0.2.1")
	exporterB := netip.MustParseAddr("192.0.2.2")
	src, dst := netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("203.0.113.1")
	basic := []spec{{ieSourceIPv4Address, 4, 0}, {ieDestinationIPv4Address, 4, 0},
		{iePacketDeltaCount, 4, 0}, {ieOctetDeltaCount, 4, 0}}
	withField := func(s spec) []spec { return append(append([]spec(nil), basic...), s) }
	flowRec := func(packets, octets uint32, extra ...any) []byte {
		return rec(append([]any{src, dst, packets, octets}, extra...)...)
	}
	system := []spec{{1, 4, 0}} // NetFlow v9 scope: system
	type input struct {
		exporter netip.Addr
		payload  []byte
	}
	cases := []struct {
		name   string
		inputs []input
		want   []scaled
	}{
		{
			name:   "v5 header interval below the mode bits",
			inputs: []input{{exporterA, v5Datagram(1, 0x4000|100, v5Record{src: src, dst: dst, packets: 2, octets: 100})}},
			want:   []scaled{{100, 200, 10000}},
		},
		{
			name:   "v5 without sampling",
			inputs: []input{{exporterA, v5Datagram(1, 0, v5Record{src: src, dst: dst, packets: 2, octets: 100})}},
			want:   []scaled{{1, 2, 100}},
		},
		{
			name: "v9 options without a sampler set the source ID rate",
			inputs: []input{{exporterA, v9Msg(1).
				optionsTemplate(300, system, spec{ieSamplingInterval, 4, 0}).
				data(300, rec(uint32(0), uint32(64))).
				template(256, basic...).
				data(256, flowRec(2, 100)).bytes()}},
			want: []scaled{{64, 128, 6400}},
		},
		{
			name: "v9 sampler rates by sampler ID, unknown sampler falls back to the source ID rate",
			inputs: []input{{exporterA, v9Msg(1).
				optionsTemplate(300, system, spec{ieSamplerID, 1, 0}, spec{ieSamplerRandomInterval, 4, 0}).
				data(300, rec(uint32(0), uint8(1), uint32(10)), rec(uint32(0), uint8(2), uint32(20))).
				optionsTemplate(301, system, spec{ieSamplingInterval, 4, 0}).
				data(301, rec(uint32(0), uint32(5))).
				template(256, withField(spec{ieSamplerID, 1, 0})...).
				data(256, flowRec(1, 10, uint8(1)), flowRec(1, 10, uint8(2)), flowRec(1, 10, uint8(3)), flowRec(1, 10, uint8(1))).
				bytes()}},
			want: []scaled{{10, 10, 100}, {20, 20, 200}, {5, 5, 50}, {10, 10, 100}},
		},
		{
			name: "ipfix selector with samplingSize and samplingPopulation",
			inputs: []input{{exporterA, ipfixMsg(1).
				optionsTemplate(400, []spec{{ieSelectorID, 8, 0}}, spec{ieSamplingSize, 4, 0}, spec{ieSamplingPopulation, 4, 0}).
				data(400, rec(uint64(7), uint32(1), uint32(256))).
				template(256, withField(spec{ieSelectorID, 8, 0})...).
				data(256, flowRec(1, 64, uint64(7)), flowRec(1, 64, uint64(8))).bytes()}},
			want: []scaled{{256, 256, 64 * 256}, {1, 1, 64}},
		},
		{
			name: "ipfix systematic count-based: packet interval and space",
			inputs: []input{{exporterA, ipfixMsg(1).
				optionsTemplate(400, []spec{{149, 4, 0}}, spec{ieSamplingPacketInterval, 4, 0}, spec{ieSamplingPacketSpace, 4, 0}).
				data(400, rec(uint32(1), uint32(1), uint32(9))).
				template(256, basic...).
				data(256, flowRec(3, 300)).bytes()}},
			want: []scaled{{10, 30, 3000}},
		},
		{
			name: "ipfix packet interval alone is the rate",
			inputs: []input{{exporterA, ipfixMsg(1).
				optionsTemplate(400, []spec{{149, 4, 0}}, spec{ieSamplingPacketInterval, 4, 0}).
				data(400, rec(uint32(1), uint32(50))).
				template(256, basic...).
				data(256, flowRec(1, 10)).bytes()}},
			want: []scaled{{50, 50, 500}},
		},
		{
			name: "ipfix samplerRandomInterval",
			inputs: []input{{exporterA, ipfixMsg(1).
				optionsTemplate(400, []spec{{149, 4, 0}}, spec{ieSamplerRandomInterval, 2, 0}).
				data(400, rec(uint32(1), uint16(3))).
				template(256, basic...).
				data(256, flowRec(1, 10)).bytes()}},
			want: []scaled{{3, 3, 30}},
		},
		{
			name: "a rate in the record wins over its sampler",
			inputs: []input{{exporterA, ipfixMsg(1).
				optionsTemplate(400, []spec{{ieSelectorID, 8, 0}}, spec{ieSamplingInterval, 4, 0}).
				data(400, rec(uint64(7), uint32(256))).
				template(256, append(withField(spec{ieSelectorID, 8, 0}), spec{ieSamplingInterval, 4, 0})...).
				data(256, flowRec(1, 10, uint64(7), uint32(500)), flowRec(1, 10, uint64(7), uint32(0))).bytes()}},
			want: []scaled{{500, 500, 5000}, {256, 256, 2560}},
		},
		{
			name: "rates are kept per exporter",
			inputs: []input{
				{exporterA, ipfixMsg(1).
					optionsTemplate(400, []spec{{149, 4, 0}}, spec{ieSamplingInterval, 4, 0}).
					data(400, rec(uint32(1), uint32(64))).bytes()},
				{exporterB, ipfixMsg(1).template(256, basic...).data(256, flowRec(1, 10)).bytes()},
			},
			want: []scaled{{1, 1, 10}},
		},
		{
			name: "rates are kept per observation domain",
			inputs: []input{
				{exporterA, ipfixMsg(1).
					optionsTemplate(400, []spec{{149, 4, 0}}, spec{ieSamplingInterval, 4, 0}).
					data(400, rec(uint32(1), uint32(64))).bytes()},
				{exporterA, ipfixMsg(2).template(256, basic...).data(256, flowRec(1, 10)).bytes()},
			},
			want: []scaled{{1, 1, 10}},
		},
		{
			name: "counts saturate instead of wrapping",
			inputs: []input{{exporterA, ipfixMsg(1).
				optionsTemplate(400, []spec{{149, 4, 0}}, spec{ieSamplingInterval, 4, 0}).
				data(400, rec(uint32(1), uint32(4))).
				template(256, spec{ieSourceIPv4Address, 4, 0}, spec{ieDestinationIPv4Address, 4, 0},
					spec{iePacketDeltaCount, 8, 0}, spec{ieOctetDeltaCount, 8, 0}).
				data(256, rec(src, dst, uint64(1)<<63, uint64(10))).bytes()}},
			want: []scaled{{4, math.MaxUint64, 40}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dec := NewDecoder(NewTemplates(DefaultConfig()))
			var got []flow.Record
			for i, in := range tc.inputs {
				var err error
				if got, _, err = dec.Decode(in.exporter, 0, in.payload, got); err != nil {
					t.Fatalf("datagram %d: %v", i+1, err)
				}
			}
			if diff := cmp.Diff(scaledOf(got), tc.want); diff != "" {
				t.Errorf("(-got +want):\n%s", diff)
			}
		})
	}
}
