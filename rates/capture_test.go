package rates

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/flowsentry/flowsentry/internal/testcaptures"

	"github.com/flowsentry/flowsentry/flow"
	"github.com/flowsentry/flowsentry/model"
	"github.com/google/go-cmp/cmp"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// packetReader is what pcapgo's pcap and pcapng readers have in common.
type packetReader interface {
	ReadPacketData() ([]byte, gopacket.CaptureInfo, error)
	LinkType() layers.LinkType
}

// replayCapture turns every IPv4 packet of a capture into a one-packet
// record from exporterA's interface 1 and adds it, ticking at every whole
// second of the capture's clock, and for a window after its end.
func replayCapture(t *testing.T, e *Engine, name string) {
	t.Helper()
	f, err := os.Open(filepath.Join(testcaptures.Dir(t), name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	br := bufio.NewReader(f)
	magic, err := br.Peek(4)
	if err != nil {
		t.Fatal(err)
	}
	var pr packetReader
	if bytes.Equal(magic, []byte{0x0a, 0x0d, 0x0d, 0x0a}) {
		pr, err = pcapgo.NewNgReader(br, pcapgo.DefaultNgReaderOptions)
	} else {
		pr, err = pcapgo.NewReader(br)
	}
	if err != nil {
		t.Fatal(err)
	}

	var next int64
	for {
		data, ci, err := pr.ReadPacketData()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		ts := ci.Timestamp.UnixNano()
		if next == 0 {
			next = floorDiv(ts, nsPerSec) * nsPerSec
		}
		for ; next <= ts; next += nsPerSec {
			e.Tick(next)
		}
		pkt := gopacket.NewPacket(data, pr.LinkType(), gopacket.Default)
		ip, ok := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		if !ok {
			continue
		}
		r := flow.Record{
			Start: ts, End: ts, Exporter: exporterA, InIf: 1,
			Src: netip.AddrFrom4([4]byte(ip.SrcIP.To4())), Dst: netip.AddrFrom4([4]byte(ip.DstIP.To4())),
			Packets: 1, Bytes: uint64(ip.Length), SamplingRate: 1, Proto: uint8(ip.Protocol),
		}
		switch l := pkt.TransportLayer().(type) {
		case *layers.TCP:
			r.SrcPort, r.DstPort = uint16(l.SrcPort), uint16(l.DstPort)
			for _, f := range []struct {
				set  bool
				flag uint8
			}{{l.FIN, flow.TCPFin}, {l.SYN, flow.TCPSyn}, {l.RST, flow.TCPRst}, {l.PSH, flow.TCPPsh}, {l.ACK, flow.TCPAck}, {l.URG, flow.TCPUrg}, {l.ECE, flow.TCPEce}, {l.CWR, flow.TCPCwr}} {
				if f.set {
					r.TCPFlags |= f.flag
				}
			}
		case *layers.UDP:
			r.SrcPort, r.DstPort = uint16(l.SrcPort), uint16(l.DstPort)
		}
		e.Add(&r)
	}
	for range e.window + 1 {
		e.Tick(next)
		next += nsPerSec
	}
}

// TestCaptures replays real attacks and compares the traffic group totals
// with tshark's counts (ip.len summed), the peak packet rate with tshark's
// per-second counts over 10-second windows, and the scanner's unique local
// endpoints with the number of hosts it swept.
func TestCaptures(t *testing.T) {
	type result struct {
		Group      Totals
		Hosts      int
		PeakIn     float64 // TGRP packets in
		ScannerOut Totals  // the scanning host, when there is one
	}
	cases := []struct {
		name    string
		file    string
		group   netip.Prefix
		scanner string
		want    result
		// uniqLocal is the distinct local endpoints the scanner hit.
		uniqLocal int
	}{
		{
			// 37,841 SYNs of 40 bytes to 10.10.10.10:25565; 37,039 of them in
			// the first five seconds.
			name:  "spoofed SYN flood",
			file:  "attacks/ddos/pkt.TCP.synflood.spoofed.pcap",
			group: netip.MustParsePrefix("10.10.10.0/24"),
			want: result{
				Group:  Totals{PacketsIn: 37841, BytesIn: 1513640, NewConn: 37841, Updates: 37841},
				Hosts:  1,
				PeakIn: 3703.9,
			},
		},
		{
			// 10.0.0.128 sends 511 SYNs and 2 RSTs to every address of its
			// own /24, itself included, within 1.8 s of one window.
			name:    "SYN host sweep inside the group",
			file:    "attacks/scans/hs-tcp_synPingSweepRand.pcapng",
			group:   netip.MustParsePrefix("10.0.0.0/24"),
			scanner: "10.0.0.128",
			want: result{
				Group:      Totals{PacketsIn: 513, BytesIn: 22564, NewConn: 511, PacketsOut: 513, BytesOut: 22564, NewConnOut: 511, Updates: 513},
				Hosts:      256,
				PeakIn:     51.3,
				ScannerOut: Totals{PacketsIn: 2, BytesIn: 88, PacketsOut: 513, BytesOut: 22564, NewConnOut: 511, NewConn: 2, Updates: 513},
			},
			uniqLocal: 255,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e, err := New(DefaultConfig(), nil)
			if err != nil {
				t.Fatal(err)
			}
			e.SetModel(model.New(
				[]model.Partition{{CID: 1, Name: "p"}},
				[]model.TrafficGroup{{ID: 9, Name: "g", CID: 1, CIDRs: []netip.Prefix{tc.group}}},
				nil))
			replayCapture(t, e, tc.file)

			s := e.Snapshot()
			all := allStats(s)
			g := all[kGroup(9)]
			got := result{Group: g.Totals, Hosts: len(s.Hosts), PeakIn: g.Peak.PacketsIn}
			var scanner Stats
			if tc.scanner != "" {
				scanner = all[kHost(9, tc.scanner)]
				got.ScannerOut = scanner.Totals
			}
			if diff := cmp.Diff(got, tc.want, cmpAddr); diff != "" {
				t.Errorf("(-got +want):\n%s", diff)
			}
			if tc.uniqLocal == 0 {
				return
			}
			est := scanner.Peak.UniqLocalEndpoint * float64(e.window)
			bound := 3 * 1.04 / math.Sqrt(float64(uint(1)<<e.cfg.HLLPrecision))
			if rel := math.Abs(est-float64(tc.uniqLocal)) / float64(tc.uniqLocal); rel > bound {
				t.Errorf("scanner's peak unique local endpoints × window = %v, want %d within %.1f%%", est, tc.uniqLocal, 100*bound)
			}
		})
	}
}
