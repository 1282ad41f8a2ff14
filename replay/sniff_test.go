package replay

import (
	"encoding/binary"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/flowsentry/flowsentry/flow"
	"github.com/flowsentry/flowsentry/internal/testcaptures"
)

// TestRunExportsOnAnyPort replays the Cisco captures, sent to UDP 9991
// and 9992 (ports not in the default configuration), with the default
// configuration: their datagrams are recognised by content and decoded to
// the 114 records nfcapd makes of them.
func TestRunExportsOnAnyPort(t *testing.T) {
	cases := []struct {
		file      string
		source    flow.Source
		datagrams uint64
		records   uint64
	}{
		{"pmacct-ta-100-ipfix-cisco.pcap", flow.SourceIPFIX, 6, 12},
		{"pmacct-ta-101-nfv9-cisco.pcap", flow.SourceNetFlowV9, 40, 51},
		{"pmacct-ta-102-nfv9-cisco-sampling.pcap", flow.SourceNetFlowV9, 25, 35},
		{"pmacct-ta-104-ipfix-cisco-ipv6-sampling.pcap", flow.SourceIPFIX, 5, 3},
		{"pmacct-ta-111-ipfix-cisco-ipv6.pcap", flow.SourceIPFIX, 11, 13},
	}
	var total uint64
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			got, _, err := replayFile(t, DefaultConfig(), testcaptures.Path(t, "flow-exports/vendor/"+c.file))
			if err != nil {
				t.Fatal(err)
			}
			want := Stats{Packets: c.datagrams, Records: c.records,
				Skipped: map[string]uint64{}, DecodeErrors: map[string]uint64{},
				Datagrams: map[flow.Source]uint64{c.source: c.datagrams}}
			if diff := cmp.Diff(got.Stats, want); diff != "" {
				t.Errorf("(-got +want):\n%s", diff)
			}
			total += got.Stats.Records
		})
	}
	if total != 114 {
		t.Errorf("%d records from the Cisco captures, want 114 (nfcapd)", total)
	}
}

// TestRunAttacksHoldNoExports replays every attack capture: their UDP
// traffic (DNS, SNMP, ISAKMP, BACnet, NTP, scans of random ports) must
// all be metered, none taken for an export datagram.
func TestRunAttacksHoldNoExports(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(testcaptures.Dir(t), "attacks", "*", "*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no attack captures: %v", err)
	}
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			got, _, err := replayFile(t, DefaultConfig(), path)
			if err != nil {
				t.Fatal(err)
			}
			if len(got.Stats.Datagrams) != 0 || len(got.Stats.DecodeErrors) != 0 || len(got.Sources) != 1 || got.Sources[flow.SourceMeter] == 0 {
				t.Errorf("export datagrams %v, decode errors %v, records by source %v: want only metered records",
					got.Stats.Datagrams, got.Stats.DecodeErrors, got.Sources)
			}
		})
	}
}

// TestSniff covers the header checks on crafted payloads.
func TestSniff(t *testing.T) {
	be := binary.BigEndian
	v5 := func(count uint16, records int) []byte {
		p := make([]byte, v5Header+v5Record*records)
		be.PutUint16(p, 5)
		be.PutUint16(p[2:], count)
		return p
	}
	// set builds a set or flowset of the given ID and total length.
	set := func(id uint16, n int) []byte {
		s := make([]byte, n)
		be.PutUint16(s, id)
		be.PutUint16(s[2:], uint16(n))
		return s
	}
	v9 := func(sets ...[]byte) []byte {
		p := make([]byte, v9Header)
		be.PutUint16(p, 9)
		be.PutUint16(p[2:], uint16(len(sets)))
		for _, s := range sets {
			p = append(p, s...)
		}
		return p
	}
	ipfix := func(length int, sets ...[]byte) []byte {
		p := make([]byte, ipfixHeader)
		be.PutUint16(p, 10)
		for _, s := range sets {
			p = append(p, s...)
		}
		if length < 0 {
			length = len(p)
		}
		be.PutUint16(p[2:], uint16(length))
		return p
	}
	// sflow builds an sFlow v5 datagram with an IPv4 agent whose header
	// counts count samples, followed by samples of the given data lengths.
	sflow := func(count uint32, lengths ...uint32) []byte {
		p := make([]byte, sflowHeader4)
		be.PutUint32(p, 5)
		be.PutUint32(p[4:], 1)
		be.PutUint32(p[24:], count)
		for _, l := range lengths {
			s := make([]byte, 8+l)
			be.PutUint32(s, 1)
			be.PutUint32(s[4:], l)
			p = append(p, s...)
		}
		return p
	}
	// A DNS query whose ID happens to be 9, then 1 question.
	dns := []byte{0, 9, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 3, 'w', 'w', 'w', 0, 0, 1, 0, 1}
	cases := []struct {
		name string
		p    []byte
		want uint8
	}{
		{"netflow v5", v5(3, 3), portNetFlow},
		{"netflow v5 count beyond the datagram", v5(4, 3), portMeter},
		{"netflow v5 zero records", v5(0, 0), portMeter},
		{"netflow v5 over 30 records", v5(31, 31), portMeter},
		{"netflow v9 template and data", v9(set(0, 12), set(256, 20)), portNetFlow},
		{"netflow v9 options template", v9(set(1, 24)), portNetFlow},
		{"netflow v9 reserved flowset ID", v9(set(7, 12)), portMeter},
		{"netflow v9 bytes after the last flowset", append(v9(set(256, 8)), 0, 0), portMeter},
		{"netflow v9 flowset past the end", v9(set(256, 8))[:v9Header+6], portMeter},
		{"netflow v9 header only", v9(), portMeter},
		{"ipfix template and data", ipfix(-1, set(2, 16), set(300, 8)), portNetFlow},
		{"ipfix length not the datagram's", ipfix(40, set(2, 16)), portMeter},
		{"ipfix netflow v9 template ID", ipfix(-1, set(0, 16)), portMeter},
		{"sflow one sample", sflow(1, 16), portSFlow},
		{"sflow two samples", sflow(2, 16, 40), portSFlow},
		{"sflow no sample", sflow(0), portMeter},
		{"sflow fewer samples than counted", sflow(2, 16), portMeter},
		{"sflow bytes after the samples", append(sflow(1, 16), 0, 0, 0, 0), portMeter},
		{"sflow unaligned sample", sflow(1, 15), portMeter},
		{"dns query with ID 9", dns, portMeter},
		{"short", []byte{0, 5}, portMeter},
		{"empty", nil, portMeter},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := sniff(c.p); got != c.want {
				t.Errorf("sniff = %d, want %d", got, c.want)
			}
		})
	}
}
