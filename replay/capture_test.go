package replay

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/flowsentry/flowsentry/internal/testcaptures"

	"github.com/google/go-cmp/cmp"
	"github.com/gopacket/gopacket/layers"
)

// readAll reads every packet of a capture.
type readResult struct {
	Format  string
	Packets int
	Links   map[layers.LinkType]int
	First   time.Time
	Last    time.Time
	Offset  int64  // after the last packet read
	ReadErr string // "" at a clean end
}

func readAll(c *Capture) readResult {
	res := readResult{Format: c.Format(), Links: map[layers.LinkType]int{}}
	for {
		p, err := c.Next()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				res.ReadErr = err.Error()
			}
			return res
		}
		if res.Packets == 0 {
			res.First = time.Unix(0, p.Time).UTC()
		}
		res.Last = time.Unix(0, p.Time).UTC()
		res.Packets++
		res.Links[p.LinkType]++
		res.Offset = c.Offset()
	}
}

func TestOpenCapture(t *testing.T) {
	read := func(rel string) []byte {
		b, err := os.ReadFile(testcaptures.Path(t, rel))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	synflood := read("attacks/ddos/pkt.TCP.synflood.spoofed.pcap")
	syn := synPacket(t, "192.0.2.1", "198.51.100.1", 1000)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(synflood[:1000])
	zw.Close()

	cases := []struct {
		name    string
		data    []byte
		wantErr string // from OpenCapture
		want    readResult
	}{
		{
			name: "pcap, Ethernet",
			data: synflood,
			want: readResult{Format: "pcap", Packets: 37841, Links: map[layers.LinkType]int{layers.LinkTypeEthernet: 37841},
				First:  time.Date(2021, 4, 28, 10, 30, 21, 99510000, time.UTC),
				Last:   time.Date(2021, 4, 28, 10, 30, 44, 783363000, time.UTC),
				Offset: int64(len(synflood))},
		},
		{
			name: "pcap named .pcapng",
			data: read("attacks/ddos/pkt.TCP.DOMINATE.syn.ecn.cwr.pcapng"),
			want: readResult{Format: "pcap", Packets: 9878, Links: map[layers.LinkType]int{layers.LinkTypeEthernet: 9878},
				First:  time.Date(2021, 4, 1, 15, 55, 45, 785081000, time.UTC),
				Last:   time.Date(2021, 4, 1, 15, 56, 20, 57107000, time.UTC),
				Offset: 750779},
		},
		{
			name: "pcapng named .pcap",
			data: read("flow-exports/derived/softflowd-v9-synflood.pcap"),
			want: readResult{Format: "pcapng", Packets: 1196, Links: map[layers.LinkType]int{layers.LinkTypeEthernet: 1196},
				First:  time.Date(2026, 11, 25, 21, 44, 13, 826928994, time.UTC),
				Last:   time.Date(2026, 11, 25, 21, 44, 13, 841807535, time.UTC),
				Offset: 1726660 - 108}, // a 108-byte interface statistics block follows the last packet
		},
		{
			name: "pcap, raw IP, nanosecond times",
			data: writePcap(t, layers.LinkTypeRaw, []stamped{{0, syn}, {1500 * time.Millisecond, syn}}),
			want: readResult{Format: "pcap", Packets: 2, Links: map[layers.LinkType]int{layers.LinkTypeRaw: 2},
				First: tBase, Last: tBase.Add(1500 * time.Millisecond), Offset: 24 + 2*(16+40)},
		},
		{
			name: "pcapng with several link types",
			data: writePcapng(t, []layers.LinkType{layers.LinkTypeEthernet, layers.LinkTypeLinuxSLL, layers.LinkTypePPP}, [][]stamped{
				{{0, withLink(t, layers.LinkTypeEthernet, syn)}},
				{{time.Second, withLink(t, layers.LinkTypeLinuxSLL, syn)}, {2 * time.Second, withLink(t, layers.LinkTypeLinuxSLL, syn)}},
				{{3 * time.Second, withLink(t, layers.LinkTypePPP, syn)}},
			}),
			want: readResult{Format: "pcapng", Packets: 4,
				Links: map[layers.LinkType]int{layers.LinkTypeEthernet: 1, layers.LinkTypeLinuxSLL: 2, layers.LinkTypePPP: 1},
				First: tBase, Last: tBase.Add(3 * time.Second)},
		},
		{
			name: "pcap cut in a record",
			data: synflood[:24+100*76+30],
			want: readResult{Format: "pcap", Packets: 100, Links: map[layers.LinkType]int{layers.LinkTypeEthernet: 100},
				First:   time.Date(2021, 4, 28, 10, 30, 21, 99510000, time.UTC),
				Last:    time.Date(2021, 4, 28, 10, 30, 21, 137338000, time.UTC),
				Offset:  24 + 100*76,
				ReadErr: "unexpected EOF"},
		},
		{name: "empty", data: nil, wantErr: "not a pcap or pcapng file: it is empty"},
		{name: "three bytes", data: synflood[:3], wantErr: "not a pcap or pcapng file: it holds only 3 bytes"},
		{name: "text", data: []byte("hello, world\n"), wantErr: "not a pcap or pcapng file (magic 0x68656c6c)"},
		{name: "gzip", data: gz.Bytes(), wantErr: "not a pcap or pcapng file: it is gzip-compressed, run gunzip on it first"},
		{name: "pcap header cut", data: synflood[:20], wantErr: "pcap file header: unexpected EOF"},
		{
			name:    "unsupported link type",
			data:    writePcap(t, layers.LinkTypePPP, []stamped{{0, withLink(t, layers.LinkTypePPP, syn)}}),
			wantErr: "pcap link type 9 (PPP) is not supported",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cp, err := OpenCapture(bytes.NewReader(c.data))
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("OpenCapture error %v, want one containing %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := readAll(cp)
			if c.want.Offset == 0 {
				got.Offset = 0 // not checked
			}
			if diff := cmp.Diff(got, c.want); diff != "" {
				t.Errorf("(-got +want):\n%s", diff)
			}
		})
	}
}

// FuzzCapture feeds arbitrary bytes to the capture reader. Whatever the
// input, it must not panic, every packet must come from bytes of the input
// (so no longer than the input), and every packet must consume at least
// 12 bytes (the smallest pcapng packet block), which bounds the number of
// packets and rules out endless loops.
func FuzzCapture(f *testing.F) {
	for _, rel := range []string{
		"attacks/anomalies/ntp_monlist_response.pcap",
		"attacks/anomalies/tcp_one_way_all_flags.pcap",
		"flow-exports/akvorado/netflow-nfv5.pcap",
		"flow-exports/vendor/sflow_print-segv.pcap",
	} {
		b, err := os.ReadFile(testcaptures.Path(f, rel))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	syn := synPacket(f, "192.0.2.1", "198.51.100.1", 1000)
	f.Add(writePcap(f, layers.LinkTypeRaw, []stamped{{0, syn}, {time.Second, syn}}))
	f.Add(writePcapng(f, []layers.LinkType{layers.LinkTypeEthernet, layers.LinkTypeRaw}, [][]stamped{
		{{0, withLink(f, layers.LinkTypeEthernet, syn)}}, {{time.Second, syn}},
	}))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := OpenCapture(bytes.NewReader(data))
		if err != nil {
			return
		}
		prev := c.Offset()
		for n := 0; ; n++ {
			p, err := c.Next()
			if err != nil {
				break
			}
			off := c.Offset()
			if len(p.Data) > len(data) {
				t.Fatalf("packet %d: %d bytes from a %d-byte input", n, len(p.Data), len(data))
			}
			if off-prev < 12 || off > int64(len(data)) {
				t.Fatalf("packet %d: offset moved from %d to %d in a %d-byte input", n, prev, off, len(data))
			}
			prev = off
		}
	})
}
