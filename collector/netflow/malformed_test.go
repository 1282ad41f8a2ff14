package netflow

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/flowsentry/flowsentry/flow"
)

// garbage returns n pseudo-random bytes (fixed seed) after prefix.
func garbage(n int, prefix ...byte) []byte {
	r := rand.New(rand.NewPCG(1, 2))
	b := append([]byte(nil), prefix...)
	for len(b) < n {
		b = append(b, byte(r.Uint32()))
	}
	return b
}

// reasonOf returns the Reason of a *flow.DecodeError, "" for nil, and a
// marker for any other error.
func reasonOf(err error) string {
	if err == nil {
		return ""
	}
	var de *flow.DecodeError
	if !errors.As(err, &de) {
		return fmt.Sprintf("not a *flow.DecodeError: %T", err)
	}
	return de.Reason
}

// TestMalformed feeds broken datagrams: each must give its reason (or no
// error), keep the records decoded before the error, and neither panic nor
// loop.
func TestMalformed(t *testing.T) {
	exporter := netip.MustParseAddr("192.0.2.1")
	src, dst := netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("203.0.113.1")
	basic := []spec{{ieSourceIPv4Address, 4, 0}, {ieDestinationIPv4Address, 4, 0},
		{iePacketDeltaCount, 4, 0}, {ieOctetDeltaCount, 4, 0}}
	flowRec := rec(src, dst, uint32(1), uint32(100))
	withName := append(append([]spec(nil), basic...), spec{82, varLength, 0}) // interfaceName
	setLength := func(b []byte, n uint16) []byte {
		binary.BigEndian.PutUint16(b[2:], n)
		return b
	}
	ipfixGarbage := garbage(65535, 0, 10, 0xff, 0xff)

	cases := []struct {
		name string
		// setup datagrams are decoded first and must not fail.
		setup   [][]byte
		payload []byte
		reason  string // "" for no error
		want    Stats  // Version, Records and TemplateMisses are checked
	}{
		{name: "empty datagram", payload: nil, reason: "truncated"},
		{name: "1-byte datagram", payload: []byte{9}, reason: "truncated"},
		{name: "unknown version", payload: []byte{0, 7, 0, 0}, reason: "version", want: Stats{Version: 7}},
		{name: "64 KiB of garbage", payload: garbage(65536, 0x12, 0x34), reason: "version", want: Stats{Version: 0x1234}},
		{name: "v5 header cut", payload: v5Datagram(0, 0)[:20], reason: "truncated", want: Stats{Version: 5}},
		{
			name:    "v5 count beyond the datagram",
			payload: v5Datagram(30, 0, v5Record{src: src, dst: dst}),
			reason:  "count", want: Stats{Version: 5},
		},
		{name: "v5 count 65535 in a bare header", payload: v5Datagram(65535, 0), reason: "count", want: Stats{Version: 5}},
		{name: "v9 header cut", payload: v9Msg(1).bytes()[:19], reason: "truncated", want: Stats{Version: 9}},
		{name: "v9 garbage after the header", payload: garbage(65535, 0, 9), reason: "set_length", want: Stats{Version: 9, TemplateMisses: 2}},
		{name: "ipfix header cut", payload: ipfixMsg(1).bytes()[:15], reason: "truncated", want: Stats{Version: 10}},
		{name: "ipfix length below the header", payload: setLength(ipfixMsg(1).bytes(), 15), reason: "length", want: Stats{Version: 10}},
		{name: "ipfix length beyond the datagram", payload: setLength(ipfixMsg(1).bytes(), 17), reason: "length", want: Stats{Version: 10}},
		{name: "ipfix garbage after the header", payload: ipfixGarbage, reason: "set_length", want: Stats{Version: 10, TemplateMisses: 1}},
		{name: "set length 0", payload: ipfixMsg(1).raw(1, 0, 0, 0).bytes(), reason: "set_length", want: Stats{Version: 10}},
		{name: "v9 flowset length 0", payload: v9Msg(1).raw(0, 0, 0, 0).bytes(), reason: "set_length", want: Stats{Version: 9}},
		{name: "set length 3", payload: ipfixMsg(1).raw(1, 0, 0, 3, 0).bytes(), reason: "set_length", want: Stats{Version: 10}},
		{name: "set length beyond the datagram", payload: ipfixMsg(1).raw(1, 0, 0, 9, 0).bytes(), reason: "set_length", want: Stats{Version: 10}},
		{
			name:    "records before an error are kept",
			payload: ipfixMsg(1).template(256, basic...).data(256, flowRec, flowRec).raw(1, 0, 0, 0).bytes(),
			reason:  "set_length", want: Stats{Version: 10, Records: 2},
		},
		{
			name:    "absurd field count",
			payload: ipfixMsg(1).set(2, rec(uint16(256), uint16(65535), uint16(8), uint16(4))).bytes(),
			reason:  "template_length", want: Stats{Version: 10},
		},
		{
			name:    "v9 field count beyond its set",
			payload: v9Msg(1).set(0, rec(uint16(256), uint16(3), uint16(8), uint16(4))).bytes(),
			reason:  "template_length", want: Stats{Version: 9},
		},
		{name: "template ID below 256", payload: ipfixMsg(1).template(255, basic...).bytes(), reason: "template_id", want: Stats{Version: 10}},
		{name: "v9 template without fields", payload: v9Msg(1).template(256).bytes(), reason: "zero_length", want: Stats{Version: 9}},
		{
			name:    "only zero-length fields",
			payload: ipfixMsg(1).template(256, spec{999, 0, 0}, spec{1000, 0, 0}).bytes(),
			reason:  "zero_length", want: Stats{Version: 10},
		},
		{
			name:    "zero-length address",
			payload: ipfixMsg(1).template(256, spec{ieSourceIPv4Address, 0, 0}, spec{ieDestinationIPv4Address, 4, 0}).bytes(),
			reason:  "field_length", want: Stats{Version: 10},
		},
		{
			name:    "3-byte IPv4 address",
			payload: ipfixMsg(1).template(256, spec{ieSourceIPv4Address, 3, 0}, spec{ieDestinationIPv4Address, 4, 0}).bytes(),
			reason:  "field_length", want: Stats{Version: 10},
		},
		{
			name:    "9-byte counter",
			payload: v9Msg(1).template(256, append(basic, spec{iePacketDeltaCount, 9, 0})...).bytes(),
			reason:  "field_length", want: Stats{Version: 9},
		},
		{
			name:    "variable-length counter",
			payload: ipfixMsg(1).template(256, append(basic, spec{ieOctetDeltaCount, varLength, 0})...).bytes(),
			reason:  "field_length", want: Stats{Version: 10},
		},
		{
			name:    "v9 options scope length not a multiple of 4",
			payload: v9Msg(1).set(1, rec(uint16(300), uint16(2), uint16(4), uint16(1), uint16(34), uint16(4))).bytes(),
			reason:  "template_length", want: Stats{Version: 9},
		},
		{
			name:    "v9 options template beyond its set",
			payload: v9Msg(1).set(1, rec(uint16(300), uint16(4), uint16(8), uint16(1), uint16(4), uint16(34), uint16(4))).bytes(),
			reason:  "template_length", want: Stats{Version: 9},
		},
		{
			name:    "ipfix options scope count 0",
			payload: ipfixMsg(1).set(3, rec(uint16(300), uint16(1), uint16(0), uint16(34), uint16(4))).bytes(),
			reason:  "template_length", want: Stats{Version: 10},
		},
		{
			name:    "ipfix options scope count above the field count",
			payload: ipfixMsg(1).set(3, rec(uint16(300), uint16(1), uint16(2), uint16(34), uint16(4))).bytes(),
			reason:  "template_length", want: Stats{Version: 10},
		},
		{
			name:    "ipfix options template header cut",
			payload: ipfixMsg(1).set(3, rec(uint16(300), uint16(1))).bytes(),
			reason:  "template_length", want: Stats{Version: 10},
		},
		{
			name:    "ipfix enterprise number cut",
			payload: ipfixMsg(1).set(2, rec(uint16(256), uint16(1), uint16(0x8001), uint16(4))).bytes(),
			reason:  "template_length", want: Stats{Version: 10},
		},
		{name: "ipfix withdrawal of template ID 5", payload: ipfixMsg(1).withdraw(false, 5).bytes(), reason: "template_id", want: Stats{Version: 10}},
		{
			name:    "variable-length field past the end of its set",
			setup:   [][]byte{ipfixMsg(1).template(256, withName...).bytes()},
			payload: ipfixMsg(1).data(256, rec(flowRec, "eth0"), append(rec(flowRec), 200, 'e', 't', 'h')).bytes(),
			reason:  "truncated", want: Stats{Version: 10, Records: 1},
		},
		{
			name:    "three-byte variable length cut",
			setup:   [][]byte{ipfixMsg(1).template(256, withName...).bytes()},
			payload: ipfixMsg(1).data(256, append(rec(flowRec), 255, 1)).bytes(),
			reason:  "truncated", want: Stats{Version: 10},
		},
		{
			name:    "variable-length fields, long and short",
			setup:   [][]byte{ipfixMsg(1).template(256, withName...).bytes()},
			payload: ipfixMsg(1).data(256, rec(flowRec, string(make([]byte, 300))), rec(flowRec, "")).bytes(),
			want:    Stats{Version: 10, Records: 2},
		},
		{
			name:    "data for a template never defined",
			payload: ipfixMsg(1).data(300, flowRec).data(301, flowRec).bytes(),
			want:    Stats{Version: 10, TemplateMisses: 2},
		},
		{name: "reserved set ID is skipped", payload: ipfixMsg(1).set(5, []byte{1, 2, 3, 4}).bytes(), want: Stats{Version: 10}},
		{name: "bytes too short for a set are padding", payload: v9Msg(1).raw(0, 0, 0).bytes(), want: Stats{Version: 9}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dec := NewDecoder(NewTemplates(DefaultConfig()))
			for i, p := range tc.setup {
				if _, _, err := dec.Decode(exporter, 0, p, nil); err != nil {
					t.Fatalf("setup %d: %v", i+1, err)
				}
			}
			out, st, err := dec.Decode(exporter, 0, tc.payload, nil)
			if reason := reasonOf(err); reason != tc.reason {
				t.Errorf("reason %q (%v), want %q", reason, err, tc.reason)
			}
			got := Stats{Version: st.Version, Records: st.Records, TemplateMisses: st.TemplateMisses}
			if got != tc.want || len(out) != st.Records {
				t.Errorf("stats %+v with %d records, want %+v", got, len(out), tc.want)
			}
		})
	}
}
