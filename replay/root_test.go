package replay

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowsentry/flowsentry/internal/testcaptures"

	"github.com/google/go-cmp/cmp"
	"github.com/gopacket/gopacket/layers"

	"github.com/flowsentry/flowsentry/flow"
)

// outcome is what a replay produced, as the tests compare it.
type outcome struct {
	Stats Stats
	// Sources counts the records by source.
	Sources map[flow.Source]int
	// Flows counts the records that are not Continued: the flows.
	Flows int
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
		if !r.Continued {
			o.Flows++
		}
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
	synflood := ipTotals(t, testcaptures.Path(t, "attacks/ddos/pkt.TCP.synflood.spoofed.pcap"))
	// softflowd counts the captured bytes after the Ethernet header, frame
	// padding included: 46 bytes per 60-byte frame where the IP total
	// length, which the meter counts, is 40.
	softflowdBytes := synflood.Packets * 46
	cases := []struct {
		name string
		file string
		// tweak changes the default configuration when not nil.
		tweak func(*Config)
		// refTotals says the record totals must be the packets and IP
		// bytes gopacket finds in the file; otherwise want has them.
		refTotals bool
		want      outcome
	}{
		{
			// softflowd makes 37,669 flows from this file (captures
			// README): the distinct 5-tuples, none of which repeats after
			// more than a second.
			name:      "SYN flood metered",
			refTotals: true,
			file:      "attacks/ddos/pkt.TCP.synflood.spoofed.pcap",
			want: outcome{
				Stats:   Stats{Packets: 37841, Metered: 37841, Records: 37669},
				Sources: map[flow.Source]int{flow.SourceMeter: 37669},
				Flows:   37669,
				Flags:   map[uint8]uint64{flow.TCPSyn: 37841},
			},
		},
		{
			// A pcap file despite its name: 9,639 SYN+ECE+CWR, 208 RST and
			// 31 RST+ACK packets. From tshark's fields: 9,705 distinct
			// 5-tuples, none repeating after more than a second; OR-ing
			// the flags per 5-tuple gives the packets by flags below (many
			// RSTs share the 5-tuple of a SYN). The meter reports each
			// flow every second, with the flags seen so far: 60 flows
			// span a second boundary, so there are 60 more records than
			// flows, and 60 packets reported before their flow's RST
			// carry only SYN+ECE+CWR.
			name:      "DOMINATE SYN flood with ECE and CWR",
			refTotals: true,
			file:      "attacks/ddos/pkt.TCP.DOMINATE.syn.ecn.cwr.pcapng",
			want: outcome{
				Stats:   Stats{Packets: 9878, Metered: 9878, Records: 9765},
				Sources: map[flow.Source]int{flow.SourceMeter: 9765},
				Flows:   9705,
				Flags: map[uint8]uint64{
					flow.TCPSyn | flow.TCPEce | flow.TCPCwr:                             9526,
					flow.TCPSyn | flow.TCPEce | flow.TCPCwr | flow.TCPRst:               238,
					flow.TCPSyn | flow.TCPEce | flow.TCPCwr | flow.TCPRst | flow.TCPAck: 48,
					flow.TCPRst: 66,
				},
			},
		},
		{
			// 802.1Q-tagged frames: 1,001 SYNs to as many ports and 4
			// RSTs, which share the 5-tuples of 2 of the SYNs (tshark);
			// 2 flows span a second boundary and are reported twice by
			// the meter's reports each second.
			name:      "masscan over VLAN",
			refTotals: true,
			file:      "attacks/scans/masscan_tcp_0_1000_20190821.pcap",
			want: outcome{
				Stats:   Stats{Packets: 1005, Metered: 1005, Records: 1003},
				Sources: map[flow.Source]int{flow.SourceMeter: 1003},
				Flows:   1001,
				Flags:   map[uint8]uint64{flow.TCPSyn: 999, flow.TCPSyn | flow.TCPRst: 6},
			},
		},
		{
			name: "softflowd NetFlow v9 export of the SYN flood (pcapng)",
			file: "flow-exports/derived/softflowd-v9-synflood.pcap",
			want: outcome{
				Stats: Stats{Packets: 1196, Records: 37669,
					Datagrams: map[flow.Source]uint64{flow.SourceNetFlowV9: 1196}},
				Sources: map[flow.Source]int{flow.SourceNetFlowV9: 37669},
				Flows:   37669,
				Packets: synflood.Packets, Bytes: softflowdBytes,
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
				Flows:   37669,
				Packets: synflood.Packets, Bytes: softflowdBytes,
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
				Flows:   37669,
				Packets: synflood.Packets, Bytes: softflowdBytes,
				Flags: map[uint8]uint64{flow.TCPSyn: 37841},
			},
		},
		{
			// pmacct samples 2,007 of the 2,011 packets of synscan.pcap
			// (it loses the last 4) and sends one counter sample. tshark:
			// the first 2,007 packets hold 88,288 IP bytes.
			name: "pmacct sFlow export of an nmap SYN scan (pcapng)",
			file: "flow-exports/derived/pmacct-sflow-nmap-synscan.pcap",
			want: outcome{
				Stats: Stats{Packets: 224, Records: 2007, Counters: 1,
					Datagrams: map[flow.Source]uint64{flow.SourceSFlow: 224}},
				Sources: map[flow.Source]int{flow.SourceSFlow: 2007},
				Flows:   2007,
				Packets: 2007, Bytes: 88288,
			},
		},
		{
			name: "malformed sFlow datagram",
			file: "flow-exports/vendor/sflow_print-segv.pcap",
			want: outcome{
				Stats: Stats{Packets: 1,
					Datagrams:    map[flow.Source]uint64{flow.SourceSFlow: 1},
					DecodeErrors: map[string]uint64{"truncated": 1}},
				Sources: map[flow.Source]int{},
				Flows:   0,
			},
		},
		{
			// Without export ports the datagrams are recognised by their
			// content.
			name:  "export capture decoded when its port is not configured",
			file:  "flow-exports/derived/softflowd-v9-synflood.pcap",
			tweak: func(c *Config) { c.NetFlowPorts, c.SFlowPorts = nil, nil },
			want: outcome{
				Stats: Stats{Packets: 1196, Records: 37669,
					Datagrams: map[flow.Source]uint64{flow.SourceNetFlowV9: 1196}},
				Sources: map[flow.Source]int{flow.SourceNetFlowV9: 37669},
				Flows:   37669,
				Packets: synflood.Packets, Bytes: softflowdBytes,
				Flags: map[uint8]uint64{flow.TCPSyn: 37841},
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := testcaptures.Path(t, c.file)
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
			if want.Stats.DecodeErrors == nil {
				want.Stats.DecodeErrors = map[string]uint64{}
			}
			if want.Stats.Datagrams == nil {
				want.Stats.Datagrams = map[flow.Source]uint64{}
			}
			if c.refTotals {
				want.Packets, want.Bytes = ref.Packets, ref.IPBytes
			}
			if want.Flags == nil {
				got.Flags = nil
			}
			if diff := cmp.Diff(got, want); diff != "" {
				t.Errorf("(-got +want):\n%s", diff)
			}
			for i, r := range sink.records {
				if r.Source == flow.SourceMeter && (r.SamplingRate != 1 || r.Start > r.End) {
					t.Fatalf("record %d: %+v: want sampling rate 1 and Start <= End", i, r)
				}
			}
			// One Advance per second from one holding packets to 11 s
			// after it, and a last one to the last packet + inactive
			// timeout (15 s) + 1 s.
			wantLast := ref.Last + int64(16*time.Second)
			if n := len(sink.advances); n != ref.Ticked+1 || sink.advances[n-1] != wantLast {
				t.Errorf("%d Advance calls ending at %d, want %d (one per ticked second + 1) ending at %d",
					n, sink.advances[n-1], ref.Ticked+1, wantLast)
			}
		})
	}
}

// recordEnds walks the records of a little-endian pcap or pcapng file and
// returns where the header ends and where each whole packet record ends.
func recordEnds(data []byte, ng bool) (header int, ends []int) {
	le := binary.LittleEndian
	if !ng {
		for off := 24; off+16 <= len(data); {
			end := off + 16 + int(le.Uint32(data[off+8:]))
			if end > len(data) {
				break
			}
			ends = append(ends, end)
			off = end
		}
		return 24, ends
	}
	header = int(le.Uint32(data[4:])) // the section header block
	for off := header; off+8 <= len(data); {
		typ, end := le.Uint32(data[off:]), off+int(le.Uint32(data[off+4:]))
		if end > len(data) {
			break
		}
		if typ == 6 { // enhanced packet block
			ends = append(ends, end)
		}
		off = end
	}
	return header, ends
}

func TestRunCorruptCapture(t *testing.T) {
	cases := []struct {
		name   string
		file   string
		cut    int
		format string
	}{
		{"pcap cut in a packet record", "attacks/ddos/pkt.TCP.synflood.spoofed.pcap", 1_000_000, "pcap"},
		{"pcap cut in a record header", "attacks/ddos/pkt.TCP.synflood.spoofed.pcap", 24 + 76*1000 + 7, "pcap"},
		{"pcapng cut in a packet block", "flow-exports/derived/softflowd-v9-synflood.pcap", 100_000, "pcapng"},
		{"pcapng cut before the first packet", "flow-exports/derived/softflowd-v9-synflood.pcap", 200, "pcapng"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			orig, err := os.ReadFile(testcaptures.Path(t, c.file))
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "cut")
			if err := os.WriteFile(path, orig[:c.cut], 0o600); err != nil {
				t.Fatal(err)
			}
			offset, ends := recordEnds(orig[:c.cut], c.format == "pcapng")
			if len(ends) > 0 {
				offset = ends[len(ends)-1]
			}
			got, sink, err := replayFile(t, DefaultConfig(), path)
			wantMsg := fmt.Sprintf("%s: %s capture is cut short or corrupt from byte offset %d on; the %d packets before were replayed: unexpected EOF",
				path, c.format, offset, len(ends))
			if err == nil || err.Error() != wantMsg || !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("error %v, want %q wrapping io.ErrUnexpectedEOF", err, wantMsg)
			}
			if got.Stats.Packets != uint64(len(ends)) {
				t.Errorf("%d packets read, want the %d whole packets before the cut", got.Stats.Packets, len(ends))
			}
			// Whatever was read was flushed: metered packets, or the
			// records of the whole datagrams.
			if got.Stats.Metered > 0 && got.Packets != got.Stats.Metered || len(ends) > 0 && len(sink.records) == 0 {
				t.Errorf("%d records holding %d packets reached the sink after %d packets were metered", len(sink.records), got.Packets, got.Stats.Metered)
			}
		})
	}
}

func TestRunLinkTypes(t *testing.T) {
	syn := func(src string) []byte { return synPacket(t, src, "198.51.100.1", 1000) }
	dir := t.TempDir()
	pcapng := filepath.Join(dir, "mixed.pcapng")
	err := os.WriteFile(pcapng, writePcapng(t,
		[]layers.LinkType{layers.LinkTypeEthernet, layers.LinkTypeLinuxSLL, layers.LinkTypeRaw, layers.LinkTypePPP},
		[][]stamped{
			{{0, withLink(t, layers.LinkTypeEthernet, syn("192.0.2.1"))}, {100 * time.Millisecond, withLink(t, layers.LinkTypeEthernet, []byte{0x45})}},
			{{time.Second, withLink(t, layers.LinkTypeLinuxSLL, syn("192.0.2.2"))}},
			{{2 * time.Second, syn("192.0.2.3")}},
			{{3 * time.Second, withLink(t, layers.LinkTypePPP, syn("192.0.2.4"))}},
		}), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	got, sink, err := replayFile(t, DefaultConfig(), pcapng)
	if err != nil {
		t.Fatal(err)
	}
	want := Stats{Packets: 5, Metered: 3, Records: 3,
		Skipped:   map[string]uint64{"link_type": 1, "header_truncated": 1},
		Datagrams: map[flow.Source]uint64{}, DecodeErrors: map[string]uint64{}}
	if diff := cmp.Diff(got.Stats, want); diff != "" {
		t.Errorf("Stats (-got +want):\n%s", diff)
	}
	var srcs []string
	for _, r := range sink.records {
		srcs = append(srcs, r.Src.String())
	}
	if diff := cmp.Diff(srcs, []string{"192.0.2.1", "192.0.2.2", "192.0.2.3"}); diff != "" {
		t.Errorf("record sources (-got +want):\n%s", diff)
	}
	// Seconds 0, 1, 2 and 3 each hold a packet; the seconds tick up to
	// 11 s after the last one, and the end comes 16 s after it.
	base := tBase.UnixNano()
	var wantAdv []int64
	for s := range int64(15) {
		wantAdv = append(wantAdv, base+s*1e9)
	}
	wantAdv = append(wantAdv, base+19e9)
	if diff := cmp.Diff(sink.advances, wantAdv); diff != "" {
		t.Errorf("Advance calls (-got +want):\n%s", diff)
	}
}

func TestRunErrors(t *testing.T) {
	dir := t.TempDir()
	text := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(text, []byte("not a capture\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	cases := []struct {
		name    string
		ctx     context.Context
		path    string
		wantErr string
		wantIs  error
	}{
		{"missing file", context.Background(), filepath.Join(dir, "none.pcap"), "replay: open " + filepath.Join(dir, "none.pcap") + ": no such file or directory", os.ErrNotExist},
		{"not a capture", context.Background(), text, text + ": not a pcap or pcapng file (magic 0x6e6f7420)", nil},
		{"cancelled", cancelled, testcaptures.Path(t, "attacks/ddos/pkt.TCP.synflood.spoofed.pcap"),
			testcaptures.Path(t, "attacks/ddos/pkt.TCP.synflood.spoofed.pcap") + ": replay stopped after 0 packets: context canceled", context.Canceled},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sink := &testSink{t: t}
			r, err := New(DefaultConfig(), sink, nil)
			if err != nil {
				t.Fatal(err)
			}
			st, err := r.Run(c.ctx, c.path, nil)
			if err == nil || err.Error() != c.wantErr {
				t.Errorf("error %v, want %q", err, c.wantErr)
			}
			if c.wantIs != nil && !errors.Is(err, c.wantIs) {
				t.Errorf("error %v does not wrap %v", err, c.wantIs)
			}
			if st.Packets != 0 || len(sink.records) != 0 || len(sink.advances) != 0 {
				t.Errorf("read %d packets, sink got %d records and %d Advance calls, want none", st.Packets, len(sink.records), len(sink.advances))
			}
		})
	}
}

// fakeClock returns a wall clock that moves by step at every reading.
func fakeClock(step time.Duration) func() time.Time {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	return func() time.Time {
		now = now.Add(step)
		return now
	}
}

func TestRunProgress(t *testing.T) {
	path := testcaptures.Path(t, "attacks/ddos/pkt.TCP.synflood.spoofed.pcap")
	cases := []struct {
		name string
		step time.Duration // wall time per clock reading
		// wantDraws is the number of progress lines drawn.
		wantDraws int
	}{
		// Run reads the clock once at the start and every 1,024 packets,
		// 37 times: 3.8 s of fake time, lines from 2 s on, 200 ms apart.
		{name: "slow replay", step: 100 * time.Millisecond, wantDraws: 9},
		{name: "fast replay", step: time.Millisecond, wantDraws: 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out bytes.Buffer
			r, err := New(DefaultConfig(), &testSink{t: t}, nil)
			if err != nil {
				t.Fatal(err)
			}
			r.wallClock = fakeClock(c.step)
			if _, err := r.Run(context.Background(), path, &out); err != nil {
				t.Fatal(err)
			}
			s := out.String()
			draws := strings.Count(s, "pkt/s")
			if draws != c.wantDraws {
				t.Errorf("%d lines drawn, want %d:\n%q", draws, c.wantDraws, s)
			}
			if draws == 0 {
				if s != "" {
					t.Errorf("output %q, want none", s)
				}
				return
			}
			if !strings.HasPrefix(s, "\rpkt.TCP.synflood.spoofed.pcap [") {
				t.Errorf("output starts with %q, want the file name and a bar", s[:min(len(s), 40)])
			}
			lines := strings.Split(s, "\r")
			last := lines[len(lines)-2]
			if strings.Trim(last, " ") != "" || lines[len(lines)-1] != "" || len(last) < len(lines[len(lines)-3]) {
				t.Errorf("output ends with %q, want the line erased", s[max(0, len(s)-200):])
			}
		})
	}
}

func TestRunDecodeErrors(t *testing.T) {
	// Three datagrams with an unknown sFlow version and one NetFlow
	// datagram too short for its version field, from one exporter.
	garbage := []byte("garbage, not sFlow")
	var pkts []stamped
	for i := range 3 {
		pkts = append(pkts, stamped{time.Duration(i) * time.Millisecond, udpPacket(t, "192.0.2.9", "198.51.100.1", 6343, garbage)})
	}
	pkts = append(pkts, stamped{5 * time.Millisecond, udpPacket(t, "192.0.2.9", "198.51.100.1", 2055, []byte{0})})
	path := filepath.Join(t.TempDir(), "bad-exports.pcap")
	if err := os.WriteFile(path, writePcap(t, layers.LinkTypeRaw, pkts), 0o600); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	r, err := New(DefaultConfig(), &testSink{t: t}, slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	})))
	if err != nil {
		t.Fatal(err)
	}
	st, err := r.Run(context.Background(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := Stats{Packets: 4,
		Skipped:      map[string]uint64{},
		Datagrams:    map[flow.Source]uint64{flow.SourceSFlow: 3, flow.SourceUnknown: 1},
		DecodeErrors: map[string]uint64{"version": 3, "truncated": 1}}
	if diff := cmp.Diff(st, want); diff != "" {
		t.Errorf("Stats (-got +want):\n%s", diff)
	}
	// One warning per reason, not one per datagram.
	wantLog := `level=WARN msg="export datagram rejected" reason=version exporter=192.0.2.9 packet=1 err="sflow: datagram version is not 5: only sFlow v5 is supported, configure the agent to send sFlow version 5 or send it to the NetFlow/IPFIX listener"` + "\n" +
		`level=WARN msg="export datagram rejected" reason=truncated exporter=192.0.2.9 packet=4 err="netflow: datagram ends inside its header or inside a data record; the exporter or the network cut it (check the exporter's MTU / export packet size)"` + "\n"
	if diff := cmp.Diff(log.String(), wantLog); diff != "" {
		t.Errorf("log (-got +want):\n%s", diff)
	}
}

func TestNew(t *testing.T) {
	bad := DefaultConfig()
	bad.MaxFlows = -1
	cases := []struct {
		name    string
		cfg     Config
		sink    Sink
		wantErr string
	}{
		{"default", DefaultConfig(), &testSink{t: t}, ""},
		{"zero config", Config{}, &testSink{t: t}, ""},
		{"invalid config", bad, &testSink{t: t}, "max_flows: -1 is out of range: use 1 to 2147483647, or 0 for the default"},
		{"no sink", DefaultConfig(), nil, "replay: no sink to hand the flows to"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := New(c.cfg, c.sink, nil)
			var got string
			if err != nil {
				got = err.Error()
			}
			if got != c.wantErr {
				t.Errorf("error %q, want %q", got, c.wantErr)
			}
		})
	}
}

// TestRunKeepsTemplates replays a NetFlow v9 template capture, then a
// capture holding only data for it, with the same Replayer.
func TestRunKeepsTemplates(t *testing.T) {
	sink := &testSink{t: t}
	r, err := New(DefaultConfig(), sink, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []Stats
	for _, f := range []string{"flow-exports/akvorado/netflow-template.pcap", "flow-exports/akvorado/netflow-data.pcap"} {
		st, err := r.Run(context.Background(), testcaptures.Path(t, f), nil)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, st)
		sink.advances, sink.polls = nil, nil // each Run has its own clock
	}
	v9 := map[flow.Source]uint64{flow.SourceNetFlowV9: 1}
	want := []Stats{
		{Packets: 1, Skipped: map[string]uint64{}, Datagrams: v9, DecodeErrors: map[string]uint64{}},
		{Packets: 1, Skipped: map[string]uint64{}, Datagrams: v9, DecodeErrors: map[string]uint64{}, Records: 4},
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("(-got +want):\n%s", diff)
	}
}
