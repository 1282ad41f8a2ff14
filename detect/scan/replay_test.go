package scan_test

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/flowsentry/flowsentry/flow"
	"github.com/flowsentry/flowsentry/internal/replaytest"
	"github.com/flowsentry/flowsentry/internal/testcaptures"
)

// config returns a replay configuration with one scan policy (params are
// its family keys, e.g. "threshold: 50"), shards shards, and extra
// top-level YAML (traffic_groups:, partitions:).
func config(shards int, params, extra string) string {
	return fmt.Sprintf(`pipeline: {shards: %d}
%s
policies:
  - {id: 7, name: scan, cid: 0, family: scan, target: traffic_groups, object_type: TGRP, severity: 4, actions: [], %s}
`, shards, extra, params)
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

// sweep returns SYN probes from the scanners (taken in turn) to port port
// of n hosts of base (base + 1 …), spread evenly over dur.
func sweep(scanners []string, base string, n int, port uint16, dur time.Duration) []replaytest.Packet {
	var out []replaytest.Packet
	b := addr(base)
	for i := range n {
		b = b.Next()
		out = append(out, replaytest.Packet{
			Time: t0.Add(dur * time.Duration(i) / time.Duration(n)),
			Src:  addr(scanners[i%len(scanners)]), Dst: b, Proto: 6,
			SrcPort: uint16(40000 + i%3), DstPort: port, Flags: flow.TCPSyn,
		})
	}
	return out
}

// portScan returns SYN probes from src to n ports (1 …) of dst over dur.
func portScan(src, dst string, n int, dur time.Duration) []replaytest.Packet {
	var out []replaytest.Packet
	for i := range n {
		out = append(out, replaytest.Packet{
			Time: t0.Add(dur * time.Duration(i) / time.Duration(n)),
			Src:  addr(src), Dst: addr(dst), Proto: 6, SrcPort: 50000, DstPort: uint16(1 + i), Flags: flow.TCPSyn,
		})
	}
	return out
}

// webClient returns a client opening perSec whole TCP connections a second
// for secs seconds, to servers in turn, each answered by its server.
func webClient(client string, servers []string, perSec, secs int) []replaytest.Packet {
	var out []replaytest.Packet
	for i := range perSec * secs {
		t := t0.Add(time.Second * time.Duration(i) / time.Duration(perSec))
		c, s := addr(client), addr(servers[i%len(servers)])
		sp := uint16(30000 + i)
		ms := func(n int) time.Time { return t.Add(time.Duration(n) * time.Millisecond) }
		out = append(out,
			replaytest.Packet{Time: t, Src: c, Dst: s, Proto: 6, SrcPort: sp, DstPort: 443, Flags: flow.TCPSyn},
			replaytest.Packet{Time: ms(10), Src: s, Dst: c, Proto: 6, SrcPort: 443, DstPort: sp, Flags: flow.TCPSyn | flow.TCPAck},
			replaytest.Packet{Time: ms(11), Src: c, Dst: s, Proto: 6, SrcPort: sp, DstPort: 443, Flags: flow.TCPAck},
			replaytest.Packet{Time: ms(12), Src: c, Dst: s, Proto: 6, SrcPort: sp, DstPort: 443, Flags: flow.TCPAck | flow.TCPPsh, Payload: 300},
			replaytest.Packet{Time: ms(30), Src: s, Dst: c, Proto: 6, SrcPort: 443, DstPort: sp, Flags: flow.TCPAck | flow.TCPPsh, Payload: 1200},
			replaytest.Packet{Time: ms(40), Src: c, Dst: s, Proto: 6, SrcPort: sp, DstPort: 443, Flags: flow.TCPAck | flow.TCPFin},
			replaytest.Packet{Time: ms(50), Src: s, Dst: c, Proto: 6, SrcPort: 443, DstPort: sp, Flags: flow.TCPAck | flow.TCPFin},
		)
	}
	return out
}

// dnsClient returns perSec queries a second for secs seconds from client to
// resolver, each from a new source port, each answered.
func dnsClient(client, resolver string, perSec, secs int) []replaytest.Packet {
	var out []replaytest.Packet
	for i := range perSec * secs {
		t := t0.Add(time.Second * time.Duration(i) / time.Duration(perSec))
		sp := uint16(20000 + i)
		out = append(out,
			replaytest.Packet{Time: t, Src: addr(client), Dst: addr(resolver), Proto: 17, SrcPort: sp, DstPort: 53, Payload: 40},
			replaytest.Packet{Time: t.Add(5 * time.Millisecond), Src: addr(resolver), Dst: addr(client), Proto: 17, SrcPort: 53, DstPort: sp, Payload: 120})
	}
	return out
}

// reflection returns amplification replies from n reflectors (in a few
// /24s) on UDP port port to random ports of victim over one second.
func reflection(victim string, port uint16, n int) []replaytest.Packet {
	var out []replaytest.Packet
	for i := range n {
		src := netip.AddrFrom4([4]byte{198, 18, byte(i / 250 % 4), byte(1 + i%250)})
		out = append(out, replaytest.Packet{Time: t0.Add(time.Second * time.Duration(i) / time.Duration(n)),
			Src: src, Dst: addr(victim), Proto: 17, SrcPort: port, DstPort: uint16(1024 + i*7), Payload: 400})
	}
	return out
}

// resolver returns the traffic of a busy recursive resolver: perSec
// queries a second for secs seconds, each from a random high port to port
// 53 of another authoritative server (spread over many /24s, a new one
// for each query), answered after 5 to 150 ms, except one query in
// unansweredEvery (a lame server: no answer, retried elsewhere; 0: all
// answered).
func resolver(res string, perSec, secs, unansweredEvery int) []replaytest.Packet {
	rng := rand.New(rand.NewPCG(53, 1))
	var out []replaytest.Packet
	for i := range perSec * secs {
		t := t0.Add(time.Second*time.Duration(i)/time.Duration(perSec) + time.Duration(rng.IntN(3000))*time.Microsecond)
		srv := netip.AddrFrom4([4]byte{byte(20 + i%180), byte(rng.IntN(256)), byte(i / 180 % 256), byte(1 + rng.IntN(250))})
		sp := uint16(1024 + rng.IntN(64511))
		out = append(out, replaytest.Packet{Time: t, Src: addr(res), Dst: srv, Proto: 17, SrcPort: sp, DstPort: 53, Payload: 30 + rng.IntN(40)})
		if unansweredEvery > 0 && i%unansweredEvery == 0 {
			continue
		}
		rtt := time.Duration(5+rng.IntN(145)) * time.Millisecond
		out = append(out, replaytest.Packet{Time: t.Add(rtt), Src: srv, Dst: addr(res), Proto: 17, SrcPort: 53, DstPort: sp, Payload: 80 + rng.IntN(400)})
	}
	slices.SortStableFunc(out, func(a, b replaytest.Packet) int { return a.Time.Compare(b.Time) })
	return out
}

// spoofedFlood returns n SYNs from random sources (each in a /24 of its
// own, but for rare collisions) to port 25565 of victim over dur.
func spoofedFlood(victim string, n int, dur time.Duration) []replaytest.Packet {
	rng := rand.New(rand.NewPCG(25565, 1))
	out := make([]replaytest.Packet, n)
	for i := range out {
		src := netip.AddrFrom4([4]byte{byte(11 + rng.IntN(180)), byte(rng.IntN(256)), byte(rng.IntN(256)), byte(1 + rng.IntN(254))})
		out[i] = replaytest.Packet{Time: t0.Add(dur * time.Duration(i) / time.Duration(n)), Src: src, Dst: addr(victim),
			Proto: 6, SrcPort: uint16(1024 + rng.IntN(60000)), DstPort: 25565, Flags: flow.TCPSyn}
	}
	return out
}

// victimReplies returns the replies of the victim of a spoofed SYN flood
// to each SYN of flood: a SYN-ACK and retrans retransmissions of it (1 s,
// then 2 s, 4 s … later, as Linux does) when flags is SYN|ACK, or one
// reply of flags (a closed port's RST|ACK).
func victimReplies(flood []replaytest.Packet, flags uint8, retrans int) []replaytest.Packet {
	var out []replaytest.Packet
	for _, p := range flood {
		r := replaytest.Packet{Time: p.Time.Add(200 * time.Microsecond), Src: p.Dst, Dst: p.Src, Proto: 6,
			SrcPort: p.DstPort, DstPort: p.SrcPort, Flags: flags}
		out = append(out, r)
		if flags != flow.TCPSyn|flow.TCPAck {
			continue
		}
		for i, d := 0, time.Second; i < retrans; i, d = i+1, 2*d {
			r.Time = r.Time.Add(d)
			out = append(out, r)
		}
	}
	return out
}

// crawler returns a client opening perSec whole connections a second for
// secs seconds, each to a server of its own.
func crawler(client string, perSec, secs int) []replaytest.Packet {
	servers := make([]string, perSec*secs)
	for i := range servers {
		servers[i] = netip.AddrFrom4([4]byte{byte(20 + i%180), byte(i / 180), 7, 1}).String()
	}
	return webClient(client, servers, perSec, secs)
}

// shift moves packets by d.
func shift(d time.Duration, pkts []replaytest.Packet) []replaytest.Packet {
	for i := range pkts {
		pkts[i].Time = pkts[i].Time.Add(d)
	}
	return pkts
}

// interleave merges packet lists by time.
func interleave(lists ...[]replaytest.Packet) []replaytest.Packet {
	var out []replaytest.Packet
	for _, l := range lists {
		out = append(out, l...)
	}
	slices.SortStableFunc(out, func(a, b replaytest.Packet) int { return a.Time.Compare(b.Time) })
	return out
}

// sameSecond writes one Ethernet pcap of the packets of the captures
// first and then, moved in time to follow first's last packet by 1 ms,
// second's: two exports replayed in the same second, as two exporters
// sending at once would be received. (Replaying the two files in one run
// replays them in turn, each on its own clock: seconds apart.)
func sameSecond(t *testing.T, first, second string) string {
	t.Helper()
	type pkt struct {
		ci   gopacket.CaptureInfo
		data []byte
	}
	read := func(path string) []pkt {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		r, err := pcapgo.NewNgReader(f, pcapgo.DefaultNgReaderOptions)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if r.LinkType() != layers.LinkTypeEthernet {
			t.Fatalf("%s: link type %v, want Ethernet", path, r.LinkType())
		}
		var out []pkt
		for {
			data, ci, err := r.ReadPacketData()
			if errors.Is(err, io.EOF) {
				return out
			}
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			out = append(out, pkt{ci, data})
		}
	}
	a, b := read(first), read(second)
	shift := a[len(a)-1].ci.Timestamp.Add(time.Millisecond).Sub(b[0].ci.Timestamp)
	for i := range b {
		b[i].ci.Timestamp = b[i].ci.Timestamp.Add(shift)
	}
	if a[0].ci.Timestamp.Truncate(time.Second) != b[len(b)-1].ci.Timestamp.Truncate(time.Second) {
		t.Fatalf("the merged capture spans more than one second")
	}
	path := filepath.Join(t.TempDir(), "merged.pcap")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := pcapgo.NewWriterNanos(f)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	for _, p := range append(a, b...) {
		if err := w.WritePacket(p.ci, p.data); err != nil {
			t.Fatal(err)
		}
	}
	return path
}

func write(t *testing.T, pkts ...[]replaytest.Packet) string {
	var c replaytest.Capture
	for _, p := range pkts {
		c.Add(p...)
	}
	return c.Write(t)
}

// want is an expected scan alert: the fields given must match.
type want map[string]string

func TestReplay(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs flowsentry replay")
	}
	capture := func(name string) func(*testing.T) string {
		return func(t *testing.T) string { return testcaptures.Path(t, name) }
	}
	synth := func(pkts ...[]replaytest.Packet) func(*testing.T) string {
		return func(t *testing.T) string { return write(t, pkts...) }
	}
	const (
		// 10.0.0.0/25 internal: the sweeping 10.0.0.128 is remote.
		lowerHalf = "traffic_groups: [{id: 5, name: lower, partition: 0, cidrs: [10.0.0.0/25]}]"
		udpTarget = "traffic_groups: [{id: 6, name: lab, partition: 0, cidrs: [246.237.103.0/24]}]"
		allowed   = "partitions: [{cid: 0, name: default, internal: [10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, fc00::/7], allow: [203.0.113.0/24]}]"
	)
	cases := []struct {
		name   string
		shards []int
		params string
		extra  string
		file   func(*testing.T) string
		want   []want // nil: no scan alert at all
	}{
		{"nmap SYN port scan out", []int{1, 3}, "threshold: 30", "", capture("attacks/scans/synscan.pcap"),
			[]want{{"scanner_ip": "172.16.0.8", "scanner_cidr": "172.16.0.8/32", "scanner_tg": "1", "scanner_tg_name": "internal",
				"direction": "outbound", "proto": "6", "target_tg": "0", "unique_hosts": "1", "threshold_type": "uniq_endpoints"}}},
		{"nmap SYN scan via softflowd netflow v9", []int{1, 3}, "threshold: 30", "", capture("flow-exports/derived/softflowd-v9-nmap-synscan.pcap"),
			[]want{{"scanner_ip": "172.16.0.8", "direction": "outbound", "proto": "6"}}},
		{"nmap SYN scan via softflowd ipfix", []int{3}, "threshold: 30", "", capture("flow-exports/derived/softflowd-ipfix-nmap-synscan.pcap"),
			[]want{{"scanner_ip": "172.16.0.8", "direction": "outbound", "proto": "6"}}},
		{"nmap SYN scan via pmacct sflow", []int{1}, "threshold: 30", "", capture("flow-exports/derived/pmacct-sflow-nmap-synscan.pcap"),
			[]want{{"scanner_ip": "172.16.0.8", "direction": "outbound", "proto": "6"}}},
		{"masscan tcp", []int{1}, "threshold: 50, threshold_type: new_conn", "", capture("attacks/scans/masscan_tcp_0_1000_20190821.pcap"),
			[]want{{"scanner_ip": "172.31.15.102", "direction": "outbound", "proto": "6", "threshold_type": "new_conn"}}},
		{"masscan udp", []int{1}, "threshold: 50", "", capture("attacks/scans/masscan_udp_0_1000_20190821.pcap"),
			[]want{{"scanner_ip": "172.31.15.102", "direction": "outbound", "proto": "17", "unique_hosts": "1"}}},
		{"syn sweep by a local host", []int{1}, "threshold: 50", "", capture("attacks/scans/hs-tcp_synPingSweepRand.pcapng"),
			[]want{{"scanner_ip": "10.0.0.128", "direction": "outbound", "unique_ports": "1", "ports": `[80]`}}},
		{"syn sweep by a remote host", []int{1, 3}, "threshold: 30", lowerHalf, capture("attacks/scans/hs-tcp_synPingSweepRand.pcapng"),
			[]want{{"scanner_ip": "10.0.0.128", "scanner_cidr": "10.0.0.0/24", "scanner_tg": "0", "direction": "inbound",
				"target_tg": "5", "target_tg_name": "lower", "proto": "6", "unique_ports": "1"}}},
		{"syn sweep by a remote host over the threshold of one shard's part", []int{3}, "threshold: 50", lowerHalf, capture("attacks/scans/hs-tcp_synPingSweepRand.pcapng"),
			[]want{{"scanner_ip": "10.0.0.128", "direction": "inbound"}}},
		// nmap -PA: 256 lone bare ACKs to port 80 in 7 ms.
		{"ack sweep by a local host", []int{1, 3}, "", "", capture("attacks/scans/hs-tcp_ackPingSweepRand.pcapng"),
			[]want{{"scanner_ip": "10.0.0.128", "direction": "outbound", "proto": "6", "unique_hosts": "256", "unique_ports": "1",
				"ports": `[80]`, "threshold_type": "uniq_endpoints", "connection_count": "0"}}},
		{"ack sweep by a remote host", []int{1, 3}, "threshold: 30", lowerHalf, capture("attacks/scans/hs-tcp_ackPingSweepRand.pcapng"),
			[]want{{"scanner_ip": "10.0.0.128", "scanner_cidr": "10.0.0.0/24", "direction": "inbound", "target_tg": "5", "proto": "6",
				"unique_hosts": "128", "ports": `[80]`}}},
		{"ack sweep is no connection attempt", []int{1}, "threshold: 30, threshold_type: new_conn", "", capture("attacks/scans/hs-tcp_ackPingSweepRand.pcapng"), nil},
		{"icmp sweep", []int{1, 3}, "threshold: 50", "", capture("attacks/scans/hs-icmpScan.pcap"),
			[]want{{"scanner_ip": "10.0.0.128", "direction": "outbound", "proto": "1", "ports": "[]"}}},
		{"slow udp sweep from outside", []int{1, 3}, "threshold: 4, threshold_type: new_conn, window_seconds: 4", udpTarget, capture("attacks/scans/hs-udpScan.pcap"),
			[]want{{"scanner_ip": "246.237.45.150", "scanner_cidr": "246.237.45.0/24", "direction": "inbound", "proto": "17", "ports": `[40125]`}}},
		// 34 connections to port 80 of one host, 26 in one second: a
		// scan by its connections, not by its endpoints.
		{"nmap -A on one port", []int{1}, "threshold: 5, threshold_type: new_conn", "", capture("attacks/scans/nmap_80_all.pcap"),
			[]want{{"scanner_ip": "10.87.1.10", "direction": "outbound", "unique_hosts": "1"}}},
		{"nmap -A on one port by endpoints", []int{1}, "threshold: 5", "", capture("attacks/scans/nmap_80_all.pcap"), nil},
		{"remote /24 sweeping 300 hosts from 3 addresses", []int{1, 3}, "threshold: 50", "",
			synth(sweep([]string{"203.0.113.5", "203.0.113.6", "203.0.113.77"}, "10.1.0.0", 300, 22, 3*time.Second)),
			[]want{{"scanner_ip": "203.0.113.5", "scanner_cidr": "203.0.113.0/24", "direction": "inbound", "target_tg": "1", "ports": `[22]`, "unique_ports": "1"}}},
		{"ipv6 remote scanner", []int{1, 3}, "threshold: 50", "",
			synth(sweep([]string{"2001:db8:bad::1"}, "fd00::", 300, 443, 3*time.Second)),
			[]want{{"scanner_ip": "2001:db8:bad::1", "scanner_cidr": "2001:db8:bad::/64", "direction": "inbound"}}},
		{"port scan just above", []int{1}, "threshold: 50", "", synth(portScan("10.2.0.9", "198.51.100.20", 330, 5*time.Second)),
			[]want{{"scanner_ip": "10.2.0.9", "direction": "outbound", "unique_hosts": "1"}}},
		{"port scan just below", []int{1}, "threshold: 50", "", synth(portScan("10.2.0.9", "198.51.100.20", 220, 5*time.Second)), nil},
		{"sweep just below from outside", []int{3}, "threshold: 50", "",
			synth(sweep([]string{"203.0.113.5"}, "10.1.0.0", 220, 22, 5*time.Second)), nil},
		{"inbound only ignores a local scanner", []int{1}, "threshold: 50, direction: inbound", "", synth(portScan("10.2.0.9", "198.51.100.20", 600, 3*time.Second)), nil},
		{"allow-listed remote scanner", []int{1, 3}, "threshold: 50", allowed,
			synth(sweep([]string{"203.0.113.5", "203.0.113.6"}, "10.1.0.0", 300, 22, 3*time.Second)), nil},
		{"busy web client", []int{1, 3}, "threshold: 10", "",
			synth(webClient("10.3.0.4", []string{"93.184.216.34", "151.101.1.69", "104.16.132.229", "142.250.74.46", "13.107.42.14"}, 20, 10)), nil},
		{"busy web client by new connections", []int{1}, "threshold: 30, threshold_type: new_conn", "",
			synth(webClient("10.3.0.4", []string{"93.184.216.34", "151.101.1.69"}, 20, 10)), nil},
		{"dns client", []int{1}, "threshold: 10", "", synth(dnsClient("10.3.0.5", "8.8.8.8", 40, 10)), nil},
		{"dns client by new connections", []int{1}, "threshold: 50, threshold_type: new_conn", "", synth(dnsClient("10.3.0.5", "8.8.8.8", 40, 10)), nil},
		{"busy recursive resolver", []int{1, 3}, "", "", synth(resolver("10.3.0.53", 300, 10, 50)), nil},
		{"busy recursive resolver, every query answered", []int{1}, "threshold: 50", "", synth(resolver("10.3.0.53", 300, 5, 0)), nil},
		{"resolver-like udp sweep without answers", []int{1, 3}, "", "", synth(resolver("10.3.0.53", 300, 5, 1)),
			[]want{{"scanner_ip": "10.3.0.53", "direction": "outbound", "proto": "17", "ports": `[53]`}}},
		// softflowd's NetFlow v9 exports of a spoofed SYN flood (37,623
		// sources, a /24 each) and of nmap's SYN scan received in the
		// same second: the flood's sources take no place among the
		// scanners and the scan alerts (it did not, with the flood
		// filling the shard's table of the second).
		{"spoofed syn flood and nmap scan in one second via netflow v9", []int{1, 3}, "threshold: 100", "",
			func(t *testing.T) string {
				return sameSecond(t, testcaptures.Path(t, "flow-exports/derived/softflowd-v9-synflood.pcap"),
					testcaptures.Path(t, "flow-exports/derived/softflowd-v9-nmap-synscan.pcap"))
			},
			[]want{{"scanner_ip": "172.16.0.8", "direction": "outbound", "proto": "6", "unique_hosts": "1"}}},
		// The flood fills the first 600 ms, the scan the next 300.
		{"40,000 spoofed syns and a port scan in one second", []int{1, 3}, "threshold: 100", "",
			synth(interleave(spoofedFlood("10.10.10.10", 40_000, 600*time.Millisecond), shift(600*time.Millisecond, portScan("10.2.0.9", "198.51.100.20", 1000, 300*time.Millisecond)))),
			[]want{{"scanner_ip": "10.2.0.9", "direction": "outbound", "proto": "6", "unique_hosts": "1", "unique_ports": "1000"}}},
		{"40,000 spoofed syns alone", []int{1}, "threshold: 2, window_seconds: 1", "", synth(spoofedFlood("10.10.10.10", 40_000, time.Second)), nil},
		// The victim of a two-way SYN flood answers each spoofed SYN
		// with a SYN-ACK, retransmitted twice: tens of thousands of
		// endpoints on random ports, from its service port. Its
		// SYN-ACK records carry no payload, PSH or FIN: no attempt.
		{"syn flood victim's syn-acks", []int{1, 3}, "direction: both", "",
			synth(func() []replaytest.Packet {
				f := spoofedFlood("10.10.10.10", 40_000, 3*time.Second)
				return interleave(f, victimReplies(f, flow.TCPSyn|flow.TCPAck, 2))
			}()), nil},
		{"syn flood victim's syn-acks by new connections", []int{1, 3}, "threshold: 50, threshold_type: new_conn, direction: both", "",
			synth(func() []replaytest.Packet {
				f := spoofedFlood("10.10.10.10", 40_000, 3*time.Second)
				return interleave(f, victimReplies(f, flow.TCPSyn|flow.TCPAck, 2))
			}()), nil},
		{"syn flood victim's rst-acks from a closed port", []int{1, 3}, "direction: both", "",
			synth(func() []replaytest.Packet {
				f := spoofedFlood("10.10.10.10", 40_000, 3*time.Second)
				return interleave(f, victimReplies(f, flow.TCPRst|flow.TCPAck, 0))
			}()), nil},
		{"syn flood victim's rst-acks by new connections", []int{1, 3}, "threshold: 50, threshold_type: new_conn, direction: both", "",
			synth(func() []replaytest.Packet {
				f := spoofedFlood("10.10.10.10", 40_000, 3*time.Second)
				return interleave(f, victimReplies(f, flow.TCPRst|flow.TCPAck, 0))
			}()), nil},
		// A local host completing 200 connections a second to 200
		// new servers each second: what a worm spreading does, and a
		// crawler too. It alerts, as the family's purpose is to catch
		// a local host opening connections to many endpoints; allow-list
		// a known crawler or raise its policy's threshold.
		{"crawler of 200 servers a second", []int{1, 3}, "threshold: 100", "", synth(crawler("10.3.0.4", 200, 3)),
			[]want{{"scanner_ip": "10.3.0.4", "direction": "outbound", "proto": "6", "unique_hosts": "200", "ports": "[443]"}}},
		{"crawler of 200 servers a second by new connections", []int{1}, "threshold: 100, threshold_type: new_conn", "", synth(crawler("10.3.0.4", 200, 3)),
			[]want{{"scanner_ip": "10.3.0.4", "direction": "outbound", "threshold_type": "new_conn"}}},
		{"crawler just below the threshold", []int{1}, "threshold: 250", "", synth(crawler("10.3.0.4", 200, 3)), nil},
		{"busy recursive resolver by new connections", []int{1, 3}, "threshold: 50, threshold_type: new_conn", "", synth(resolver("10.3.0.53", 300, 10, 50)), nil},
		{"busy recursive resolver, every query answered, by new connections", []int{1}, "threshold: 50, threshold_type: new_conn", "", synth(resolver("10.3.0.53", 300, 5, 0)), nil},
		{"resolver-like udp sweep without answers by new connections", []int{1, 3}, "threshold: 50, threshold_type: new_conn", "", synth(resolver("10.3.0.53", 300, 5, 1)),
			[]want{{"scanner_ip": "10.3.0.53", "direction": "outbound", "proto": "17", "ports": `[53]`, "threshold_type": "new_conn"}}},
		{"masscan udp by new connections", []int{1, 3}, "threshold: 50, threshold_type: new_conn", "", capture("attacks/scans/masscan_udp_0_1000_20190821.pcap"),
			[]want{{"scanner_ip": "172.31.15.102", "direction": "outbound", "proto": "17", "threshold_type": "new_conn"}}},
		{"ntp and dns reflection", []int{1, 3}, "threshold: 5, threshold_type: new_conn", "",
			synth(reflection("10.9.9.9", 123, 1000), reflection("10.9.9.8", 53, 1000)), nil},
		{"snmp amplification", []int{1, 3}, "threshold: 5", "", capture("attacks/ddos/amp.UDP.snmp.src161.pcapng"), nil},
		{"syn-ack backscatter", []int{1, 3}, "threshold: 5", "", capture("attacks/ddos/amp.TCP.reflection.SYNACK.pcap"), nil},
	}
	for _, tc := range cases {
		for _, n := range tc.shards {
			t.Run(fmt.Sprintf("%s/shards=%d", tc.name, n), func(t *testing.T) {
				t.Parallel()
				events := replaytest.Run(t, config(n, tc.params, tc.extra), tc.file(t))
				got := replaytest.Creates(events, "scan")
				if len(got) != len(tc.want) {
					var lines []string
					for _, e := range got {
						lines = append(lines, fmt.Sprint(e.Alert))
					}
					t.Fatalf("%d scan alerts, want %d:\n%s", len(got), len(tc.want), strings.Join(lines, "\n"))
				}
				for i, w := range tc.want {
					for k, v := range w {
						if g := got[i].Str(k); g != v {
							t.Errorf("alert %d: %s = %s, want %s (alert %v)", i, k, g, v, got[i].Alert)
						}
					}
				}
			})
		}
	}
}
