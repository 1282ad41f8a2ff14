package netflow

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/flowsentry/flowsentry/flow"
)

// TestFieldRules pins down, with hand-written records, which element gives
// which record field: times in every encoding, ICMP, fragments, address
// families, count and interface sources, enterprise and repeated fields.
func TestFieldRules(t *testing.T) {
	exporter := netip.MustParseAddr("192.0.2.1")
	src4, dst4 := netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("203.0.113.1")
	src6, dst6 := netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::2")
	const exportNs = 1_700_000_000 * 1e9 // ipfixMsg and v9Msg export time
	addrs4 := []spec{{ieSourceIPv4Address, 4, 0}, {ieDestinationIPv4Address, 4, 0}}
	addrs6 := []spec{{ieSourceIPv6Address, 16, 0}, {ieDestinationIPv6Address, 16, 0}}
	with := func(base []spec, more ...spec) []spec { return append(append([]spec(nil), base...), more...) }
	// ipfix builds one IPFIX message with a template and its records.
	ipfix := func(specs []spec, records ...[]byte) [][]byte {
		return [][]byte{ipfixMsg(1).template(256, specs...).data(256, records...).bytes()}
	}
	// want is a record from exporter with the IPv4 pair, unsampled, at the
	// export time, changed by set.
	want := func(source flow.Source, set func(r *flow.Record)) flow.Record {
		r := flow.Record{Start: exportNs, End: exportNs, Exporter: exporter, Src: src4, Dst: dst4, SamplingRate: 1, Source: source}
		set(&r)
		return r
	}
	ntp := func(unixSecs, frac uint32) uint64 { return uint64(unixSecs+ntpEpochOffset)<<32 | uint64(frac) }
	wrapped := v9Msg(1)
	wrapped.uptime = 1000 // the sysUptime counter wrapped 1 s ago

	cases := []struct {
		name      string
		payloads  [][]byte
		want      []flow.Record
		noAddress int
	}{
		{
			name: "v9 sysUptime times, one after the export time, one across the counter wrap",
			payloads: [][]byte{
				v9Msg(1).template(256, with(addrs4, spec{ieFlowStartSysUpTime, 4, 0}, spec{ieFlowEndSysUpTime, 4, 0})...).
					data(256, rec(src4, dst4, uint32(95_000), uint32(100_500))).bytes(),
				wrapped.data(256, rec(src4, dst4, uint32(0xffff_ff00), uint32(500))).bytes(),
			},
			want: []flow.Record{
				want(flow.SourceNetFlowV9, func(r *flow.Record) { r.Start, r.End = exportNs-5000*1e6, exportNs+500*1e6 }),
				want(flow.SourceNetFlowV9, func(r *flow.Record) { r.Start, r.End = exportNs-1256*1e6, exportNs-500*1e6 }),
			},
		},
		{
			name: "ipfix seconds",
			payloads: ipfix(with(addrs4, spec{ieFlowStartSeconds, 4, 0}, spec{ieFlowEndSeconds, 4, 0}),
				rec(src4, dst4, uint32(1_600_000_000), uint32(1_600_000_001))),
			want: []flow.Record{want(flow.SourceIPFIX, func(r *flow.Record) { r.Start, r.End = 1_600_000_000e9, 1_600_000_001e9 })},
		},
		{
			name: "ipfix delta microseconds before the export time",
			payloads: ipfix(with(addrs4, spec{ieFlowStartDeltaMicros, 4, 0}, spec{ieFlowEndDeltaMicros, 4, 0}),
				rec(src4, dst4, uint32(2_000_000), uint32(0))),
			want: []flow.Record{want(flow.SourceIPFIX, func(r *flow.Record) { r.Start = exportNs - 2e9 })},
		},
		{
			name: "ipfix nanoseconds in NTP format",
			payloads: ipfix(with(addrs4, spec{ieFlowStartNanoseconds, 8, 0}, spec{ieFlowEndNanoseconds, 8, 0}),
				rec(src4, dst4, ntp(1_577_836_800, 1<<31), ntp(1_577_836_801, 1<<30))),
			want: []flow.Record{want(flow.SourceIPFIX, func(r *flow.Record) {
				r.Start, r.End = 1_577_836_800_500_000_000, 1_577_836_801_250_000_000
			})},
		},
		{
			name: "ipfix sysUpTime from systemInitTimeMilliseconds in options",
			payloads: [][]byte{ipfixMsg(1).
				optionsTemplate(300, []spec{{149, 4, 0}}, spec{ieSystemInitTimeMillis, 8, 0}).
				data(300, rec(uint32(1), uint64(1_600_000_000_000))).
				template(256, with(addrs4, spec{ieFlowStartSysUpTime, 4, 0}, spec{ieFlowEndSysUpTime, 4, 0})...).
				data(256, rec(src4, dst4, uint32(1000), uint32(2000))).bytes()},
			want: []flow.Record{want(flow.SourceIPFIX, func(r *flow.Record) { r.Start, r.End = 1_600_000_001_000e6, 1_600_000_002_000e6 })},
		},
		{
			name: "ipfix sysUpTime from the record's own systemInitTimeMilliseconds",
			payloads: ipfix(with(addrs4, spec{ieFlowEndSysUpTime, 4, 0}, spec{ieSystemInitTimeMillis, 8, 0}),
				rec(src4, dst4, uint32(2000), uint64(1_600_000_000_000))),
			want: []flow.Record{want(flow.SourceIPFIX, func(r *flow.Record) { r.End = 1_600_000_002_000e6 })},
		},
		{
			name: "ipfix sysUpTime without a system init time keeps the export time",
			payloads: ipfix(with(addrs4, spec{ieFlowStartSysUpTime, 4, 0}),
				rec(src4, dst4, uint32(1000))),
			want: []flow.Record{want(flow.SourceIPFIX, func(*flow.Record) {})},
		},
		{
			name: "the most precise time wins whatever the order",
			payloads: ipfix(with(addrs4, spec{ieFlowStartSeconds, 4, 0}, spec{ieFlowStartMilliseconds, 8, 0}),
				rec(src4, dst4, uint32(1), uint64(1_600_000_000_123))),
			want: []flow.Record{want(flow.SourceIPFIX, func(r *flow.Record) { r.Start = 1_600_000_000_123e6 })},
		},
		{
			name: "ICMP from icmpTypeCodeIPv4, ports cleared",
			payloads: ipfix(with(addrs4, spec{ieProtocolIdentifier, 1, 0}, spec{ieSourceTransportPort, 2, 0},
				spec{ieDestinationTransportPort, 2, 0}, spec{ieICMPTypeCodeIPv4, 2, 0}),
				rec(src4, dst4, uint8(1), uint16(0), uint16(2048), uint16(0x0303))),
			want: []flow.Record{want(flow.SourceIPFIX, func(r *flow.Record) { r.Proto, r.ICMPType, r.ICMPCode = 1, 3, 3 })},
		},
		{
			name: "ICMP from the destination port, or not when there is a source port",
			payloads: ipfix(with(addrs6, spec{ieProtocolIdentifier, 1, 0}, spec{ieSourceTransportPort, 2, 0},
				spec{ieDestinationTransportPort, 2, 0}),
				rec(src6, dst6, uint8(58), uint16(0), uint16(0x8000)), rec(src6, dst6, uint8(58), uint16(5), uint16(0x8000))),
			want: []flow.Record{
				want(flow.SourceIPFIX, func(r *flow.Record) { r.Src, r.Dst, r.Proto, r.ICMPType = src6, dst6, 58, 128 }),
				want(flow.SourceIPFIX, func(r *flow.Record) { r.Src, r.Dst, r.Proto = src6, dst6, 58 }),
			},
		},
		{
			name: "ICMP type and code elements override the combined one",
			payloads: ipfix(with(addrs6, spec{ieProtocolIdentifier, 1, 0}, spec{ieICMPTypeIPv6, 1, 0},
				spec{ieICMPCodeIPv6, 1, 0}, spec{ieICMPTypeCodeIPv6, 2, 0}),
				rec(src6, dst6, uint8(58), uint8(129), uint8(1), uint16(0x8000))),
			want: []flow.Record{want(flow.SourceIPFIX, func(r *flow.Record) {
				r.Src, r.Dst, r.Proto, r.ICMPType, r.ICMPCode = src6, dst6, 58, 129, 1
			})},
		},
		{
			name: "fragments: more-fragments flag or an offset, not don't-fragment",
			payloads: ipfix(with(addrs4, spec{ieFragmentFlags, 1, 0}, spec{ieFragmentOffset, 2, 0}),
				rec(src4, dst4, uint8(0x20), uint16(0)), rec(src4, dst4, uint8(0x40), uint16(0)), rec(src4, dst4, uint8(0), uint16(185))),
			want: []flow.Record{
				want(flow.SourceIPFIX, func(r *flow.Record) { r.Fragment = true }),
				want(flow.SourceIPFIX, func(*flow.Record) {}),
				want(flow.SourceIPFIX, func(r *flow.Record) { r.Fragment = true }),
			},
		},
		{
			name: "dual-stack template: the IPv6 pair unless it is all zeros",
			payloads: ipfix(with(addrs6, addrs4...),
				rec(netip.IPv6Unspecified(), netip.IPv6Unspecified(), src4, dst4), rec(src6, dst6, src4, dst4)),
			want: []flow.Record{
				want(flow.SourceIPFIX, func(*flow.Record) {}),
				want(flow.SourceIPFIX, func(r *flow.Record) { r.Src, r.Dst = src6, dst6 }),
			},
		},
		{
			name:      "no address pair of one family: dropped",
			payloads:  ipfix([]spec{{ieSourceIPv4Address, 4, 0}, {ieDestinationIPv6Address, 16, 0}}, rec(src4, dst6)),
			noAddress: 1,
		},
		{
			name: "counts: delta, else total, else OUT_; interfaces: ifIndex, else physical",
			payloads: [][]byte{
				ipfixMsg(1).template(256, with(addrs4, spec{iePostOctetDeltaCount, 4, 0}, spec{iePostPacketDeltaCount, 4, 0},
					spec{ieOctetTotalCount, 8, 0}, spec{iePacketTotalCount, 8, 0},
					spec{ieIngressPhysicalInterface, 4, 0}, spec{ieEgressPhysicalInterface, 4, 0}, spec{ieIngressInterface, 2, 0})...).
					data(256, rec(src4, dst4, uint32(1), uint32(2), uint64(300), uint64(4), uint32(5), uint32(6), uint16(7))).bytes(),
				ipfixMsg(1).template(257, with(addrs4, spec{iePostOctetDeltaCount, 4, 0}, spec{iePostPacketDeltaCount, 4, 0})...).
					data(257, rec(src4, dst4, uint32(100), uint32(2))).bytes(),
			},
			want: []flow.Record{
				want(flow.SourceIPFIX, func(r *flow.Record) { r.Bytes, r.Packets, r.InIf, r.OutIf = 300, 4, 7, 6 }),
				want(flow.SourceIPFIX, func(r *flow.Record) { r.Bytes, r.Packets = 100, 2 }),
			},
		},
		{
			name: "enterprise fields are skipped, a repeated element counts once, the last time",
			payloads: ipfix(with(addrs4, spec{ieSourceIPv4Address, 4, 9}, spec{ieTCPControlBits, 2, 0},
				spec{ieSourceTransportPort, 2, 0}, spec{ieSourceTransportPort, 2, 0}),
				rec(src4, dst4, dst4, uint16(0x0112), uint16(1), uint16(2))),
			want: []flow.Record{want(flow.SourceIPFIX, func(r *flow.Record) { r.TCPFlags, r.SrcPort = 0x12, 2 })},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dec := NewDecoder(NewTemplates(DefaultConfig()))
			var got []flow.Record
			noAddress := 0
			for i, p := range tc.payloads {
				var st Stats
				var err error
				if got, st, err = dec.Decode(exporter, 0, p, got); err != nil {
					t.Fatalf("datagram %d: %v", i+1, err)
				}
				noAddress += st.NoAddress
			}
			if diff := cmp.Diff(got, tc.want, addrComparer); diff != "" {
				t.Errorf("(-got +want):\n%s", diff)
			}
			if noAddress != tc.noAddress {
				t.Errorf("NoAddress %d, want %d", noAddress, tc.noAddress)
			}
		})
	}
}
