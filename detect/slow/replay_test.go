package slow_test

import (
	"net/netip"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/flowsentry/flowsentry/flow"
	"github.com/flowsentry/flowsentry/internal/replaytest"
	"github.com/flowsentry/flowsentry/internal/testcaptures"
)

const (
	ack    = flow.TCPAck
	pshAck = flow.TCPPsh | flow.TCPAck
)

var start = time.Unix(1_700_000_000, 0)

// builder writes TCP conversations packet by packet.
type builder struct{ c replaytest.Capture }

func (b *builder) pkt(at time.Duration, src, dst netip.Addr, sport, dport uint16, flags uint8, payload int) {
	b.c.Add(replaytest.Packet{Time: start.Add(at), Src: src, Dst: dst, Proto: 6, SrcPort: sport, DstPort: dport, Flags: flags, Payload: payload})
}

// conn writes a connection from client:cport to server:port opened at
// open: the handshake, a first request of first bytes, then every
// interval until end a client packet of each bytes, each answered by the
// server with reply bytes (0: a bare ACK); closed with FINs at end when
// fin.
func (b *builder) conn(client, server netip.Addr, cport, port uint16, open, end, interval time.Duration, first, each, reply int, fin bool) {
	b.pkt(open, client, server, cport, port, flow.TCPSyn, 0)
	b.pkt(open+time.Millisecond, server, client, port, cport, flow.TCPSyn|ack, 0)
	b.pkt(open+2*time.Millisecond, client, server, cport, port, ack, 0)
	b.pkt(open+3*time.Millisecond, client, server, cport, port, pshAck, first)
	b.pkt(open+4*time.Millisecond, server, client, port, cport, ack, 0)
	for at := open + interval; at < end; at += interval {
		b.pkt(at, client, server, cport, port, pshAck, each)
		flags := uint8(ack)
		if reply > 0 {
			flags = pshAck
		}
		b.pkt(at+time.Millisecond, server, client, port, cport, flags, reply)
	}
	if fin {
		b.pkt(end, client, server, cport, port, flow.TCPFin|ack, 0)
		b.pkt(end+time.Millisecond, server, client, port, cport, flow.TCPFin|ack, 0)
		b.pkt(end+2*time.Millisecond, client, server, cport, port, ack, 0)
	}
}

func (b *builder) write(t *testing.T) string {
	slices.SortStableFunc(b.c.Packets, func(x, y replaytest.Packet) int { return x.Time.Compare(y.Time) })
	return b.c.Write(t)
}

// slowloris opens n connections from each attacker to server:port, 20 a
// second, each sending a 20-byte header line every 10 s for 200 s.
func slowloris(b *builder, server string, port uint16, n int, attackers ...string) {
	for a, at := range attackers {
		for i := range n {
			open := time.Duration(a*n+i) * 50 * time.Millisecond
			b.conn(netip.MustParseAddr(at), netip.MustParseAddr(server), uint16(20000+i), port, open, 200*time.Second, 10*time.Second, 180, 20, 0, false)
		}
	}
}

func config(threshold int, extra string) string {
	return `policies:
  - {id: 1, name: slow, cid: 0, family: ddos_slow, target: traffic_groups, object_type: TGRP, threshold: ` +
		strconv.Itoa(threshold) + `, severity: 3, actions: []` + extra + `}
`
}

func TestReplay(t *testing.T) {
	attackers := []string{"198.51.100.7", "203.0.113.9", "192.0.2.33"}
	cases := []struct {
		name   string
		build  func(b *builder)
		config string
		// want are the members of the one ddos_slow CREATE expected;
		// nil expects no alert of any type from the family.
		want map[string]string
	}{
		{
			name:   "slowloris, three hosts × 200 connections",
			build:  func(b *builder) { slowloris(b, "10.0.0.5", 80, 200, attackers...) },
			config: config(100, ""),
			want: map[string]string{"target_ip": "10.0.0.5", "target_mask": "8", "target_tg": "1", "proto": "6", "server_port": "80",
				"total_sources": "3", "threshold_value": "100", "sources": `["198.51.100.0/24","203.0.113.0/24","192.0.2.0/24"]`}, // by packets: the first attacker has been at it longest,
		},
		{
			name: "rudy: slow POST body, one byte every 10 s",
			build: func(b *builder) {
				for i := range 150 {
					b.conn(netip.MustParseAddr("198.51.100.7"), netip.MustParseAddr("10.0.0.5"), uint16(20000+i), 8080,
						time.Duration(i)*20*time.Millisecond, 200*time.Second, 10*time.Second, 350, 1, 0, false)
				}
			},
			config: config(100, ""),
			want:   map[string]string{"target_ip": "10.0.0.5", "server_port": "8080", "total_sources": "1", "sources": `["198.51.100.0/24"]`},
		},
		{
			name:   "slowloris over IPv6",
			build:  func(b *builder) { slowloris(b, "fd00::80", 443, 150, "2001:db8:77::5") },
			config: config(100, ""),
			want:   map[string]string{"target_ip": "fd00::80", "target_mask": "7", "server_port": "443", "sources": `["2001:db8:77::/64"]`},
		},
		{
			name:   "slowloris just below the threshold",
			build:  func(b *builder) { slowloris(b, "10.0.0.5", 80, 50, attackers[:2]...) },
			config: config(100, ""),
		},
		{
			name:   "allow-listed attackers",
			build:  func(b *builder) { slowloris(b, "10.0.0.5", 80, 200, attackers...) },
			config: config(100, ", allow: [198.51.100.0/24, 203.0.113.0/24, 192.0.2.0/24]"),
		},
		{
			name: "300 WebSocket clients, one connection each, pings",
			build: func(b *builder) {
				for i := range 300 {
					b.conn(netip.AddrFrom4([4]byte{198, 18, byte(i / 200), byte(i % 200)}), netip.MustParseAddr("10.0.0.5"), 40000, 443,
						time.Duration(i)*100*time.Millisecond, 200*time.Second, 30*time.Second, 400, 6, 2, false)
				}
			},
			config: config(100, ""),
		},
		{
			name: "the WebSocket clients counted with min_per_client 1 (the guard's control)",
			build: func(b *builder) {
				for i := range 300 {
					b.conn(netip.AddrFrom4([4]byte{198, 18, byte(i / 200), byte(i % 200)}), netip.MustParseAddr("10.0.0.5"), 40000, 443,
						time.Duration(i)*100*time.Millisecond, 200*time.Second, 30*time.Second, 400, 6, 2, false)
				}
			},
			config: config(100, ", min_per_client: 1"),
			want:   map[string]string{"target_ip": "10.0.0.5", "server_port": "443", "total_sources": "2"},
		},
		{
			name: "interactive SSH session",
			build: func(b *builder) {
				b.conn(netip.MustParseAddr("198.51.100.7"), netip.MustParseAddr("10.0.0.22"), 51000, 22, 0, 200*time.Second, time.Second, 40, 36, 36, true)
			},
			config: config(1, ", min_per_client: 1"),
		},
		{
			name: "database pool: 40 connections from two internal app servers",
			build: func(b *builder) {
				for i := range 40 {
					app := netip.AddrFrom4([4]byte{10, 1, 0, byte(4 + i%2)})
					b.conn(app, netip.MustParseAddr("10.0.0.9"), uint16(40000+i), 5432, time.Duration(i)*10*time.Millisecond, 200*time.Second, 10*time.Second, 200, 60, 40, false)
				}
			},
			config: config(30, ""),
		},
		{
			name: "the database pool counted with internal_sources (the guard's control)",
			build: func(b *builder) {
				for i := range 40 {
					app := netip.AddrFrom4([4]byte{10, 1, 0, byte(4 + i%2)})
					b.conn(app, netip.MustParseAddr("10.0.0.9"), uint16(40000+i), 5432, time.Duration(i)*10*time.Millisecond, 200*time.Second, 10*time.Second, 200, 60, 40, false)
				}
			},
			config: config(30, ", internal_sources: true"),
			want:   map[string]string{"target_ip": "10.0.0.9", "server_port": "5432", "sources": `["10.1.0.0/24"]`},
		},
		{
			name: "busy web server, short connections",
			build: func(b *builder) {
				for i := range 3000 {
					client := netip.AddrFrom4([4]byte{198, 51, byte(100 + i%3), byte(i % 250)})
					open := time.Duration(i) * 60 * time.Millisecond
					b.conn(client, netip.MustParseAddr("10.0.0.5"), uint16(30000+i), 80, open, open+3*time.Second, time.Second, 400, 0, 1400, true)
				}
			},
			config: config(100, ""),
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var b builder
			tc.build(&b)
			events := replaytest.Run(t, tc.config, b.write(t))
			got := replaytest.Creates(events, "ddos_slow")
			if tc.want == nil {
				if len(got) != 0 {
					t.Fatalf("CREATEs %v, want none", got)
				}
				return
			}
			if len(got) != 1 {
				t.Fatalf("CREATEs %v, want one", got)
			}
			// The alert's last state: the attackers join one after the
			// other, the CREATE may list the first ones only.
			var last replaytest.Event
			for _, e := range events {
				if e.Type() == "ddos_slow" {
					last = e
				}
			}
			t.Logf("%s %v", last.Op, last.Alert)
			for k, v := range tc.want {
				if s := last.Str(k); s != v {
					t.Errorf("%s = %s, want %s", k, s, v)
				}
			}
			// The manual's ddos_slow example, member for member.
			for _, k := range []string{"target_ip", "target_mask", "target_tg", "proto", "server_port", "sources", "total_sources",
				"threshold_value", "current_values", "peak_values", "average_values"} {
				if _, ok := got[0].Alert[k]; !ok {
					t.Errorf("alert has no %s: %v", k, got[0].Alert)
				}
			}
			for _, k := range []string{"port", "target_tg_name"} {
				if _, ok := got[0].Alert[k]; ok {
					t.Errorf("alert has %s, not in the manual's JSON", k)
				}
			}
		})
	}
}

// TestReplaySharedCaptures: real attack captures of other kinds (floods,
// reflection, a slow TCP reflection over 13 minutes) raise no ddos_slow
// even at a low index threshold.
func TestReplaySharedCaptures(t *testing.T) {
	for _, name := range []string{
		"attacks/ddos/pkt.TCP.synflood.spoofed.pcap",
		"attacks/ddos/amp.TCP.syn.optionallyACK.optionallysamePort.pcapng",
		"attacks/ddos/amp.dns.RRSIG.fragmented.pcap",
		"attacks/scans/synscan.pcap",
	} {
		t.Run(name, func(t *testing.T) {
			events := replaytest.Run(t, config(5, ", min_per_client: 2"), testcaptures.Path(t, name))
			if got := replaytest.Creates(events, "ddos_slow"); len(got) != 0 {
				t.Fatalf("CREATEs %v, want none", got)
			}
		})
	}
}
