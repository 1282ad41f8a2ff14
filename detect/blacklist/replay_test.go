package blacklist_test

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/flowsentry/flowsentry/flow"
	"github.com/flowsentry/flowsentry/internal/replaytest"
)

var start = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

// tcpSession appends a TCP connection: handshake, one request, a reply
// of payload bytes, and the close.
func tcpSession(c *replaytest.Capture, at time.Time, cli, srv string, cport, sport uint16, payload int) {
	a, b := netip.MustParseAddr(cli), netip.MustParseAddr(srv)
	ms := func(n int) time.Time { return at.Add(time.Duration(n) * time.Millisecond) }
	c.Add(
		replaytest.Packet{Time: ms(0), Src: a, Dst: b, Proto: 6, SrcPort: cport, DstPort: sport, Flags: flow.TCPSyn},
		replaytest.Packet{Time: ms(10), Src: b, Dst: a, Proto: 6, SrcPort: sport, DstPort: cport, Flags: flow.TCPSyn | flow.TCPAck},
		replaytest.Packet{Time: ms(20), Src: a, Dst: b, Proto: 6, SrcPort: cport, DstPort: sport, Flags: flow.TCPAck},
		replaytest.Packet{Time: ms(30), Src: a, Dst: b, Proto: 6, SrcPort: cport, DstPort: sport, Flags: flow.TCPAck | flow.TCPPsh, Payload: 200},
		replaytest.Packet{Time: ms(40), Src: b, Dst: a, Proto: 6, SrcPort: sport, DstPort: cport, Flags: flow.TCPAck | flow.TCPPsh, Payload: payload},
		replaytest.Packet{Time: ms(50), Src: a, Dst: b, Proto: 6, SrcPort: cport, DstPort: sport, Flags: flow.TCPAck | flow.TCPFin},
		replaytest.Packet{Time: ms(60), Src: b, Dst: a, Proto: 6, SrcPort: sport, DstPort: cport, Flags: flow.TCPAck | flow.TCPFin},
	)
}

func udpExchange(c *replaytest.Capture, at time.Time, cli, srv string, cport, sport uint16) {
	a, b := netip.MustParseAddr(cli), netip.MustParseAddr(srv)
	c.Add(
		replaytest.Packet{Time: at, Src: a, Dst: b, Proto: 17, SrcPort: cport, DstPort: sport, Payload: 40},
		replaytest.Packet{Time: at.Add(5 * time.Millisecond), Src: b, Dst: a, Proto: 17, SrcPort: sport, DstPort: cport, Payload: 120},
	)
}

func TestReplay(t *testing.T) {
	dir := t.TempDir()
	list := filepath.Join(dir, "drop.txt")
	if err := os.WriteFile(list, []byte("# test list\n203.0.113.7\n198.51.100.0/24\n2001:db8:bad::/48\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	config := `
blacklists:
  - {id: 3, name: drop, file: ` + list + `, refresh: 0s}
policies:
  - {id: 1, name: blacklisted, cid: 0, family: blacklist, target: traffic_groups, object_type: TGRP, severity: 5, actions: [], allow: [198.51.100.99/32]}
`
	var c replaytest.Capture
	s := func(sec int) time.Time { return start.Add(time.Duration(sec) * time.Second) }
	// An internal client of a listed server.
	tcpSession(&c, s(0), "10.0.0.5", "203.0.113.7", 40000, 443, 5000)
	// A listed client probes an internal server, which resets.
	c.Add(replaytest.Packet{Time: s(1), Src: netip.MustParseAddr("198.51.100.20"), Dst: netip.MustParseAddr("10.0.0.6"), Proto: 6, SrcPort: 51000, DstPort: 22, Flags: flow.TCPSyn},
		replaytest.Packet{Time: s(1).Add(time.Millisecond), Src: netip.MustParseAddr("10.0.0.6"), Dst: netip.MustParseAddr("198.51.100.20"), Proto: 6, SrcPort: 22, DstPort: 51000, Flags: flow.TCPRst | flow.TCPAck})
	// Several connections on several ports: one alert.
	tcpSession(&c, s(2), "10.0.0.7", "203.0.113.7", 40001, 80, 1000)
	tcpSession(&c, s(3), "10.0.0.7", "203.0.113.7", 40002, 443, 1000)
	tcpSession(&c, s(4), "10.0.0.7", "203.0.113.7", 40003, 8080, 1000)
	tcpSession(&c, s(5), "10.0.0.7", "203.0.113.7", 40004, 443, 1000)
	// IPv6.
	tcpSession(&c, s(6), "fd00::5", "2001:db8:bad::1", 50123, 443, 3000)
	// UDP: no flags, the port decides.
	udpExchange(&c, s(7), "10.0.0.8", "198.51.100.30", 53000, 53)
	// Not listed, allow-listed, no side in a group: nothing.
	tcpSession(&c, s(8), "10.0.0.5", "93.184.216.34", 40010, 443, 5000)
	tcpSession(&c, s(9), "10.0.0.5", "198.51.100.99", 40011, 443, 5000)
	tcpSession(&c, s(10), "8.8.8.8", "203.0.113.7", 40012, 443, 5000)

	events := replaytest.Run(t, config, c.Write(t))
	got := map[string]map[string]string{}
	for _, e := range replaytest.Creates(events, "blacklisted_ip") {
		k := e.Str("client_ip") + "/" + e.Str("server_ip")
		if _, dup := got[k]; dup {
			t.Errorf("second CREATE for %s", k)
		}
		got[k] = map[string]string{"server_port": e.Str("server_port"), "proto": e.Str("proto"),
			"client_blacklist": e.Str("client_blacklist"), "server_blacklist": e.Str("server_blacklist"),
			"server_bl_name": e.Str("server_bl_name"), "client_bl_name": e.Str("client_bl_name"),
			"client_tg": e.Str("client_tg"), "server_tg": e.Str("server_tg")}
	}
	// The grouped alert's counts grow after its CREATE: read the last event.
	last := map[string]replaytest.Event{}
	for _, e := range events {
		if e.Type() == "blacklisted_ip" {
			last[e.Str("client_ip")+"/"+e.Str("server_ip")] = e
		}
	}
	want := map[string]map[string]string{
		"10.0.0.5/203.0.113.7": {"server_port": "443", "proto": "6", "client_blacklist": "0", "server_blacklist": "3",
			"server_bl_name": "drop", "client_bl_name": "", "client_tg": "1", "server_tg": "0"},
		"198.51.100.20/10.0.0.6": {"server_port": "22", "proto": "6", "client_blacklist": "3", "server_blacklist": "0",
			"server_bl_name": "", "client_bl_name": "drop", "client_tg": "0", "server_tg": "1"},
		"10.0.0.7/203.0.113.7": {"server_port": "80", "proto": "6", "client_blacklist": "0", "server_blacklist": "3",
			"server_bl_name": "drop", "client_bl_name": "", "client_tg": "1", "server_tg": "0"},
		"fd00::5/2001:db8:bad::1": {"server_port": "443", "proto": "6", "client_blacklist": "0", "server_blacklist": "3",
			"server_bl_name": "drop", "client_bl_name": "", "client_tg": "1", "server_tg": "0"},
		"10.0.0.8/198.51.100.30": {"server_port": "53", "proto": "17", "client_blacklist": "0", "server_blacklist": "3",
			"server_bl_name": "drop", "client_bl_name": "", "client_tg": "1", "server_tg": "0"},
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("CREATEs (-got, +want)\n%s", diff)
	}
	multi := last["10.0.0.7/203.0.113.7"]
	if multi.Str("connection_count") != "4" || multi.Str("total_ports") != "2" || multi.Str("additional_ports") != "[443,8080]" {
		t.Errorf("grouped alert: connection_count %s, total_ports %s, additional_ports %s; want 4, 2, [443,8080]",
			multi.Str("connection_count"), multi.Str("total_ports"), multi.Str("additional_ports"))
	}
	if one := last["10.0.0.5/203.0.113.7"]; one.Str("connection_count") != "1" || one.Str("total_ports") != "0" {
		t.Errorf("single connection: connection_count %s, total_ports %s; want 1, 0", one.Str("connection_count"), one.Str("total_ports"))
	}
}
