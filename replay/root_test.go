package replay

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/gopacket/gopacket/layers"

	"github.com/flowsentry/flowsentry/flow"
)

// outcome is what a replay produced, as the tests compare it.
type outcome struct {
	Stats Stats
	// Sources counts the records by source.
	Sources map[flow.Source]int
	// Packets and Bytes are the record totals.
	Packets, Bytes uint64
	// Flags counts the records' packets by TCP flags.
	Flags map[uint8]uint64
}

func outcomeOf(st Stats, s *testSink) outcome {
	o := outcome{Stats: st, Sources: map[flow.Source]int{}, Flags: map[uint8]uint64{}}
	o.Packets, o.Bytes = s.totals()
	for _, r := range s.records {
		o.Sources[r.Source]++
		o.Flags[r.TCPFlags] += r.Packets
	}
	return o
}

// replayFile runs one replay of path into a new test sink.
func replayFile(t *testing.T, cfg Config, path string) (outcome, *testSink, error) {
	t.Helper()
	sink := &testSink{t: t}
	r, err := New(cfg, sink, nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := r.Run(context.Background(), path, nil)
	if st.Records != uint64(len(sink.records)) {
		t.Errorf("Stats.Records = %d, the sink got %d", st.Records, len(sink.records))
	}
	return outcomeOf(st, sink), sink, err
}

func TestRunCaptures(t *testing.T) {
	synflood := ipTotals(t, capture(t, "attacks/ddos/pkt.TCP.synflood.spoofed.pcap"))
	cases := []struct {
		name string
		file string
		// tweak changes the default configuration when not nil.
		tweak func(*Config)
		// want.Packets and want.Bytes are taken from the gopacket
		// reference of the file when zero.
		want outcome
	}{
		{
			// softflowd makes 37,669 flows from this file (captures
			// README): the distinct 5-tuples, none of which repeats after
			// more than a second.
			name: "SYN flood metered",
			file: "attacks/ddos/pkt.TCP.synflood.spoofed.pcap",
			want: outcome{
				Stats:   Stats{Packets: 37841, Metered: 37841, Records: 37669},
				Sources: map[flow.Source]int{flow.SourceMeter: 37669},
				Flags:   map[uint8]uint64{flow.TCPSyn: 37841},
			},
		},
		{
			// A pcap file despite its name. tshark counts 9,705 distinct
			// 5-tuples, none repeating after more than a second, and
			// 9,639 SYN+ECE+CWR, 208 RST, 31 RST+ACK packets.
			name: "DOMINATE SYN flood with ECE and CWR",
			file: "attacks/ddos/pkt.TCP.DOMINATE.syn.ecn.cwr.pcapng",
			want: outcome{
				Stats:   Stats{Packets: 9878, Metered: 9878, Records: 9705},
				Sources: map[flow.Source]int{flow.SourceMeter: 9705},
				Flags: map[uint8]uint64{
					flow.TCPSyn | flow.TCPEce | flow.TCPCwr: 9639,
					flow.TCPRst:                             208,
					flow.TCPRst | flow.TCPAck:               31,
				},
			},
		},
		{
			// 802.1Q-tagged frames. tshark: 1,001 SYNs to as many ports
			// and 4 RSTs, which share the 5-tuple of 4 of the SYNs.
			name: "masscan over VLAN",
			file: "attacks/scans/masscan_tcp_0_1000_20190821.pcap",
			want: outcome{
				Stats:   Stats{Packets: 1005, Metered: 1005, Records: 1001},
				Sources: map[flow.Source]int{flow.SourceMeter: 1001},
				Flags:   map[uint8]uint64{flow.TCPSyn: 997, flow.TCPSyn | flow.TCPRst: 8},
			},
		},
		{
			name: "softflowd NetFlow v9 export of the SYN flood (pcapng)",
			file: "flow-exports/derived/softflowd-v9-synflood.pcap",
			want: outcome{
				Stats: Stats{Packets: 1196, Records: 37669,
					Datagrams: map[flow.Source]uint64{flow.SourceNetFlowV9: 1196}},
				Sources: map[flow.Source]int{flow.SourceNetFlowV9: 37669},
				Packets: synflood.Packets, Bytes: synflood.IPBytes,
				Flags: map[uint8]uint64{flow.TCPSyn: 37841},
			},
		},
		{
			name: "softflowd NetFlow v5 export of the SYN flood",
			file: "flow-exports/derived/softflowd-v5-synflood.pcap",
			want: outcome{
				Stats: Stats{Packets: 1299, Records: 37669,
					Datagrams: map[flow.Source]uint64{flow.SourceNetFlowV5: 1299}},
				Sources: map[flow.Source]int{flow.SourceNetFlowV5: 37669},
				Packets: synflood.Packets, Bytes: synflood.IPBytes,
				Flags: map[uint8]uint64{flow.TCPSyn: 37841},
			},
		},
		{
			name: "softflowd IPFIX export of the SYN flood",
			file: "flow-exports/derived/softflowd-ipfix-synflood.pcap",
			want: outcome{
				Stats: Stats{Packets: 1419, Records: 37669,
					Datagrams: map[flow.Source]uint64{flow.SourceIPFIX: 1419}},
				Sources: map[flow.Source]int{flow.SourceIPFIX: 37669},
				Packets: synflood.Packets, Bytes: synflood.IPBytes,
				Flags: map[uint8]uint64{flow.TCPSyn: 37841},
			},
		},
		{
			// pmacct samples 2,007 of the 2,011 packets of synscan.pcap
			// (it loses the last 4) and sends one counter sample.
			name: "pmacct sFlow export of an nmap SYN scan (pcapng)",
			file: "flow-exports/derived/pmacct-sflow-nmap-synscan.pcap",
			want: outcome{
				Stats: Stats{Packets: 224, Records: 2007, Counters: 1,
					Datagrams: map[flow.Source]uint64{flow.SourceSFlow: 224}},
				Sources: map[flow.Source]int{flow.SourceSFlow: 2007},
				Packets: 2007,
			},
		},
		{
			// Without export ports the datagrams are just UDP packets
			// from one socket to another: one metered flow.
			name:  "export capture metered when its port is not configured",
			file:  "flow-exports/derived/softflowd-v9-synflood.pcap",
			tweak: func(c *Config) { c.NetFlowPorts, c.SFlowPorts = nil, nil },
			want: outcome{
				Stats:   Stats{Packets: 1196, Metered: 1196, Records: 1},
				Sources: map[flow.Source]int{flow.SourceMeter: 1},
				Flags:   map[uint8]uint64{0: 1196},
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := capture(t, c.file)
			ref := ipTotals(t, path)
			cfg := DefaultConfig()
			if c.tweak != nil {
				c.tweak(&cfg)
			}
			got, sink, err := replayFile(t, cfg, path)
			if err != nil {
				t.Fatal(err)
			}
			want := c.want
			want.Stats.Skipped = map[string]uint64{}
			want.Stats.DecodeErrors = map[string]uint64{}
			if want.Stats.Datagrams == nil {
				want.Stats.Datagrams = map[flow.Source]uint64{}
			}
			if want.Packets == 0 {
				want.Packets, want.Bytes = ref.Packets, ref.IPBytes
			}
			if want.Flags == nil {
				got.Flags = nil
			}
			if want.Bytes == 0 {
				got.Bytes = 0
			}
			if diff := cmp.Diff(got, want); diff != "" {
				t.Errorf("(-got +want):\n%s", diff)
			}
			for i, r := range sink.records {
				if r.Source == flow.SourceMeter && (r.SamplingRate != 1 || r.Start > r.End) {
					t.Fatalf("record %d: %+v: want sampling rate 1 and Start <= End", i, r)
				}
			}
			// One Advance per captured second and a last one to the last
			// packet + inactive timeout (15 s) + 1 s.
			wantLast := ref.Last + int64(16*time.Second)
			if n := len(sink.advances); n != ref.Seconds+1 || sink.advances[n-1] != wantLast {
				t.Errorf("%d Advance calls ending at %d, want %d (one per captured second + 1) ending at %d",
					n, sink.advances[n-1], ref.Seconds+1, wantLast)
			}
		})
	}
}
