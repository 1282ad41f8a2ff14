package newserver

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/flowsentry/flowsentry/flow"
	"github.com/flowsentry/flowsentry/internal/replaytest"
	"github.com/flowsentry/flowsentry/internal/testcaptures"
)

// replayConfig makes groups of cidrs (one group each, IDs from 1) and
// puts a new_server and a new_client template on partition 0.
func replayConfig(learning string, cidrs ...string) string {
	var b strings.Builder
	b.WriteString("traffic_groups:\n")
	for i, c := range cidrs {
		b.WriteString("  - {id: " + string(rune('1'+i)) + ", name: g" + string(rune('1'+i)) + ", partition: 0, cidrs: [" + c + "]}\n")
	}
	b.WriteString("policies:\n")
	for i, f := range []string{"new_server", "new_client"} {
		b.WriteString("  - {id: " + string(rune('1'+i)) + ", name: " + f + ", cid: 0, family: " + f +
			", target: traffic_groups, object_type: TGRP, severity: 5, learning_period: " + learning + ", actions: []}\n")
	}
	return b.String()
}

// summary lists the CREATEs of both types as "TYPE SERVER_IP/PROTO/PORT[/CLIENT_IP]".
func summary(events []replaytest.Event) []string {
	var out []string
	for _, e := range replaytest.Creates(events, "") {
		if e.Type() != ServerAlert && e.Type() != ClientAlert {
			continue
		}
		s := e.Type() + " " + e.Str("server_ip") + "/" + e.Str("proto") + "/" + e.Str("server_port")
		if e.Type() == ClientAlert {
			s += "/" + e.Str("client_ip")
		}
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

// conversation adds a TCP session: handshake, data each way, FIN.
func conversation(c *replaytest.Capture, at time.Time, client, server netip.Addr, cport, sport uint16) {
	p := func(d time.Duration, fromClient bool, flags uint8, payload int) {
		pk := replaytest.Packet{Time: at.Add(d), Src: client, Dst: server, Proto: flow.ProtoTCP, SrcPort: cport, DstPort: sport, Flags: flags, Payload: payload}
		if !fromClient {
			pk.Src, pk.Dst, pk.SrcPort, pk.DstPort = server, client, sport, cport
		}
		c.Add(pk)
	}
	const ms = time.Millisecond
	p(0, true, flow.TCPSyn, 0)
	p(1*ms, false, flow.TCPSyn|flow.TCPAck, 0)
	p(2*ms, true, flow.TCPAck, 0)
	p(3*ms, true, flow.TCPAck|flow.TCPPsh, 200)
	p(5*ms, false, flow.TCPAck|flow.TCPPsh, 1400)
	p(6*ms, true, flow.TCPAck|flow.TCPFin, 0)
	p(7*ms, false, flow.TCPAck|flow.TCPFin, 0)
	p(8*ms, true, flow.TCPAck, 0)
}

func TestReplay(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs flowsentry")
	}
	a := netip.MustParseAddr
	start := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	synthetic := func(t *testing.T) string {
		var c replaytest.Capture
		conversation(&c, start, a("198.51.100.7"), a("10.0.0.5"), 50000, 22)
		conversation(&c, start.Add(2*time.Second), a("198.51.100.8"), a("10.0.0.5"), 50001, 22)
		conversation(&c, start.Add(3*time.Second), a("2001:db8::7"), a("fd00::5"), 50002, 80)
		// DNS inside: a query and its answer.
		c.Add(replaytest.Packet{Time: start.Add(4 * time.Second), Src: a("198.51.100.7"), Dst: a("10.0.0.53"), Proto: flow.ProtoUDP, SrcPort: 40000, DstPort: 53, Payload: 40})
		c.Add(replaytest.Packet{Time: start.Add(4*time.Second + time.Millisecond), Src: a("10.0.0.53"), Dst: a("198.51.100.7"), Proto: flow.ProtoUDP, SrcPort: 53, DstPort: 40000, Payload: 120})
		// A one-way UDP flood and a SYN answered by RST: nothing.
		for i := range 500 {
			c.Add(replaytest.Packet{Time: start.Add(5*time.Second + time.Duration(i)*time.Millisecond), Src: a("203.0.113.1"), Dst: a("10.0.0.6"),
				Proto: flow.ProtoUDP, SrcPort: uint16(1024 + i), DstPort: 53, Payload: 100})
		}
		c.Add(replaytest.Packet{Time: start.Add(6 * time.Second), Src: a("203.0.113.2"), Dst: a("10.0.0.7"), Proto: flow.ProtoTCP, SrcPort: 40000, DstPort: 23, Flags: flow.TCPSyn})
		c.Add(replaytest.Packet{Time: start.Add(6*time.Second + time.Millisecond), Src: a("10.0.0.7"), Dst: a("203.0.113.2"), Proto: flow.ProtoTCP, SrcPort: 23, DstPort: 40000, Flags: flow.TCPRst | flow.TCPAck})
		// Enough for the last flows to end.
		c.Add(replaytest.Packet{Time: start.Add(200 * time.Second), Src: a("203.0.113.3"), Dst: a("198.51.100.99"), Proto: flow.ProtoUDP, SrcPort: 1, DstPort: 2})
		return c.Write(t)
	}
	shared := func(name string) func(t *testing.T) string {
		return func(t *testing.T) string { return testcaptures.Path(t, name) }
	}
	cases := []struct {
		name    string
		config  string
		capture func(t *testing.T) string
		want    []string
	}{
		{"synthetic sessions", replayConfig("0", "10.0.0.0/8, fd00::/8"), synthetic, []string{
			"new_client 10.0.0.5/6/22/198.51.100.7", "new_client 10.0.0.5/6/22/198.51.100.8",
			"new_client 10.0.0.53/17/53/198.51.100.7", "new_client fd00::5/6/80/2001:db8::7",
			"new_server 10.0.0.5/6/22", "new_server 10.0.0.53/17/53", "new_server fd00::5/6/80",
		}},
		{"synthetic sessions on 3 shards", "pipeline: {shards: 3}\n" + replayConfig("0", "10.0.0.0/8, fd00::/8"), synthetic, []string{
			"new_client 10.0.0.5/6/22/198.51.100.7", "new_client 10.0.0.5/6/22/198.51.100.8",
			"new_client 10.0.0.53/17/53/198.51.100.7", "new_client fd00::5/6/80/2001:db8::7",
			"new_server 10.0.0.5/6/22", "new_server 10.0.0.53/17/53", "new_server fd00::5/6/80",
		}},
		{"synthetic sessions while learning", replayConfig("1h", "10.0.0.0/8, fd00::/8"), synthetic, nil},
		// The scanned host (in the group) answers SYN-ACK on a few open
		// ports, retransmitted, but the scanner never completes a
		// handshake; the scanner's own group must not make it a server.
		{"syn scan", replayConfig("0", "64.13.134.0/24", "172.16.0.0/12"), shared("attacks/scans/synscan.pcap"), nil},
		{"syn scan through softflowd netflow v9", replayConfig("0", "64.13.134.0/24", "172.16.0.0/12"), shared("flow-exports/derived/softflowd-v9-nmap-synscan.pcap"), nil},
		{"syn scan through softflowd ipfix", replayConfig("0", "64.13.134.0/24", "172.16.0.0/12"), shared("flow-exports/derived/softflowd-ipfix-nmap-synscan.pcap"), nil},
		{"syn scan through pmacct sflow", replayConfig("0", "64.13.134.0/24", "172.16.0.0/12"), shared("flow-exports/derived/pmacct-sflow-nmap-synscan.pcap"), nil},
		{"masscan", replayConfig("0", "198.124.152.0/24", "172.16.0.0/12"), shared("attacks/scans/masscan_tcp_0_1000_20190821.pcap"), nil},
		{"udp host sweep", replayConfig("0", "0.0.0.0/0"), shared("attacks/scans/hs-udpScan.pcap"), nil},
		// A DNS server inside answering every query (a tunnel, but a
		// real service): 192.168.220.56 asks, 192.168.203.167:53 answers.
		{"dns inside", replayConfig("0", "192.168.0.0/16"), shared("attacks/anomalies/dns_exfiltration.pcap"),
			[]string{"new_client 192.168.203.167/17/53/192.168.220.56", "new_server 192.168.203.167/17/53"}},
		{"tcp scan on a lan", replayConfig("0", "192.168.0.0/16"), shared("attacks/scans/tcp_scan.pcapng"), nil},
		// Service detection completes real HTTP sessions with the host.
		{"nmap service detection", replayConfig("0", "130.211.223.0/24"), shared("attacks/scans/nmap_80_w_service_detection.pcap"),
			[]string{"new_client 130.211.223.103/6/80/10.87.1.10", "new_server 130.211.223.103/6/80"}},
		{"nmap service detection, scanner's side", replayConfig("0", "10.0.0.0/8"), shared("attacks/scans/nmap_80_w_service_detection.pcap"), nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			events := replaytest.Run(t, tc.config, tc.capture(t))
			if diff := cmp.Diff(summary(events), tc.want); diff != "" {
				t.Errorf("alerts (-got +want):\n%s", diff)
			}
			// Events: every alert ends after the quiet period.
			deletes := 0
			for _, e := range events {
				if e.Op == "DELETE" && (e.Type() == ServerAlert || e.Type() == ClientAlert) {
					deletes++
				}
			}
			if deletes != len(tc.want) {
				t.Errorf("%d DELETEs for %d alerts", deletes, len(tc.want))
			}
		})
	}
}
