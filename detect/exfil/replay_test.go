package exfil_test

import (
	"net/netip"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/flowsentry/flowsentry/flow"
	"github.com/flowsentry/flowsentry/internal/replaytest"
	"github.com/flowsentry/flowsentry/internal/testcaptures"
)

var start = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

// transfer appends a TCP connection from cli to srv in which from sends
// size payload bytes in 1400-byte segments, evenly over d, acknowledged
// every 10 segments.
func transfer(c *replaytest.Capture, at time.Time, d time.Duration, cli, srv string, cport, sport uint16, fromClient bool, size int) {
	a, b := netip.MustParseAddr(cli), netip.MustParseAddr(srv)
	c.Add(
		replaytest.Packet{Time: at, Src: a, Dst: b, Proto: 6, SrcPort: cport, DstPort: sport, Flags: flow.TCPSyn},
		replaytest.Packet{Time: at.Add(time.Millisecond), Src: b, Dst: a, Proto: 6, SrcPort: sport, DstPort: cport, Flags: flow.TCPSyn | flow.TCPAck},
		replaytest.Packet{Time: at.Add(2 * time.Millisecond), Src: a, Dst: b, Proto: 6, SrcPort: cport, DstPort: sport, Flags: flow.TCPAck | flow.TCPPsh, Payload: 300},
	)
	from, to, fport, tport := a, b, cport, sport
	if !fromClient {
		from, to, fport, tport = b, a, sport, cport
	}
	n := (size + 1399) / 1400
	for i := range n {
		p := min(1400, size-i*1400)
		t := at.Add(3*time.Millisecond + d*time.Duration(i)/time.Duration(n))
		c.Add(replaytest.Packet{Time: t, Src: from, Dst: to, Proto: 6, SrcPort: fport, DstPort: tport, Flags: flow.TCPAck | flow.TCPPsh, Payload: p})
		if i%10 == 9 {
			c.Add(replaytest.Packet{Time: t, Src: to, Dst: from, Proto: 6, SrcPort: tport, DstPort: fport, Flags: flow.TCPAck})
		}
	}
	end := at.Add(d + 10*time.Millisecond)
	c.Add(
		replaytest.Packet{Time: end, Src: a, Dst: b, Proto: 6, SrcPort: cport, DstPort: sport, Flags: flow.TCPAck | flow.TCPFin},
		replaytest.Packet{Time: end.Add(time.Millisecond), Src: b, Dst: a, Proto: 6, SrcPort: sport, DstPort: cport, Flags: flow.TCPAck | flow.TCPFin},
	)
}

// config has two traffic groups inside the INT blocks 10/8, and an exfil
// policy at 5 MB; the meter splits flows every 20 s.
const config = `
partitions:
  - {cid: 0, name: default, internal: [10.0.0.0/8, fd00::/8]}
traffic_groups:
  - {id: 1, name: office, partition: 0, cidrs: [10.1.0.0/16, fd00:1::/32]}
  - {id: 2, name: servers, partition: 0, cidrs: [10.2.0.0/16]}
replay:
  active_timeout: 20s
  inactive_timeout: 15s
policies:
  - {id: 1, name: exfil, cid: 0, family: exfil, target: traffic_groups, object_type: TGRP, severity: 6, threshold: 5000000, actions: []}
`

func TestReplay(t *testing.T) {
	const mb = 1_000_000
	var c replaytest.Capture
	// 8 MB uploaded over 100 s: five records of 1.6 MB, stitched.
	transfer(&c, start, 100*time.Second, "10.1.0.5", "203.0.113.9", 40000, 443, true, 8*mb)
	// An 8 MB download from outside.
	transfer(&c, start, 100*time.Second, "10.1.0.6", "203.0.113.9", 40001, 443, false, 8*mb)
	// 8 MB copied from the office to the servers.
	transfer(&c, start, 60*time.Second, "10.1.0.5", "10.2.0.9", 40002, 445, true, 8*mb)
	// 4.5 MB uploaded: just below the threshold.
	transfer(&c, start, 60*time.Second, "10.1.0.8", "203.0.113.10", 40003, 443, true, 4500000)
	// An office server sends 8 MB to an outside client.
	transfer(&c, start, 40*time.Second, "203.0.113.11", "10.1.0.7", 52000, 443, false, 8*mb)
	// IPv6 upload.
	transfer(&c, start, 30*time.Second, "fd00:1::5", "2001:db8::9", 40004, 22, true, 6*mb)
	sort.SliceStable(c.Packets, func(i, j int) bool { return c.Packets[i].Time.Before(c.Packets[j].Time) })

	events := replaytest.Run(t, config, c.Write(t))
	type want struct{ sport, rport string }
	wants := map[string]want{
		"10.1.0.5/203.0.113.9":  {"40000", "443"},
		"10.1.0.7/203.0.113.11": {"443", "52000"},
		"fd00:1::5/2001:db8::9": {"40004", "22"},
	}
	creates := replaytest.Creates(events, "exfil")
	seen := map[string]bool{}
	for _, e := range creates {
		k := e.Str("sender_ip") + "/" + e.Str("receiver_ip")
		w, ok := wants[k]
		if !ok {
			t.Errorf("unexpected exfil alert %s: %v", k, e.Alert)
			continue
		}
		seen[k] = true
		if e.Str("sender_port") != w.sport || e.Str("receiver_port") != w.rport || e.Str("sender_tg") != "1" ||
			e.Str("sender_tg_name") != `office` || e.Str("receiver_tg") != "0" || e.Str("threshold_value") != "5000000" {
			t.Errorf("%s: %v", k, e.Alert)
		}
		if _, ok := e.Alert["receiver_tg_name"]; ok {
			t.Errorf("%s: receiver_tg_name present with receiver_tg 0", k)
		}
	}
	for k := range wants {
		if !seen[k] {
			t.Errorf("no exfil alert %s", k)
		}
	}
	// The count grows to the whole upload (payload and headers).
	var most uint64
	for _, e := range events {
		if e.Type() == "exfil" && e.Str("sender_ip") == "10.1.0.5" {
			n, _ := strconv.ParseUint(e.Str("bytes_exfiltrated"), 10, 64)
			most = max(most, n)
		}
	}
	if most < 8*mb || most > 8*mb+mb/2 {
		t.Errorf("bytes_exfiltrated of the upload reached %d, want about 8.2 MB", most)
	}
}

// TestReplayDNSTunnel replays a DNS tunnel: 192.168.203.167 answers 150
// queries of 192.168.220.56 with 39 KB of responses, in one UDP session.
// With 192.168.220.56 outside the INT blocks, it is exfiltration; with
// the default model both are internal and nothing fires.
func TestReplayDNSTunnel(t *testing.T) {
	pcap := testcaptures.Path(t, "attacks/anomalies/dns_exfiltration.pcap")
	policy := `
policies:
  - {id: 1, name: exfil, cid: 0, family: exfil, target: traffic_groups, object_type: TGRP, severity: 6, threshold: 20000, actions: []}
`
	outside := `
partitions:
  - {cid: 0, name: default, internal: [192.168.203.0/24]}
traffic_groups:
  - {id: 1, name: lan, partition: 0, cidrs: [192.168.203.0/24]}
` + policy
	creates := replaytest.Creates(replaytest.Run(t, outside, pcap), "exfil")
	if len(creates) != 1 {
		t.Fatalf("%d exfil alerts, want 1: %v", len(creates), creates)
	}
	e := creates[0]
	if e.Str("sender_ip") != "192.168.203.167" || e.Str("receiver_ip") != "192.168.220.56" || e.Str("proto") != "17" ||
		e.Str("sender_port") != "53" || e.Str("receiver_port") != "56373" {
		t.Errorf("alert %v", e.Alert)
	}
	if n, _ := strconv.Atoi(e.Str("bytes_exfiltrated")); n <= 20000 {
		t.Errorf("bytes_exfiltrated %d, want above the threshold", n)
	}
	if got := replaytest.Creates(replaytest.Run(t, policy, pcap), "exfil"); len(got) != 0 {
		t.Errorf("default model: %d exfil alerts, want none", len(got))
	}
}
