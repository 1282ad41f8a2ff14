// The acceptance tests of every security family together: benign traffic
// of the kinds an office network carries must raise nothing, real attack
// captures cut to 128 bytes a packet and mixed with that traffic must
// still raise their alert (and nothing else) within 10 seconds, and each
// labelled attack capture must raise exactly the alert types of its
// label. Everything goes through `flowsentry replay` (internal/replaytest).
package all_test

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowsentry/flowsentry/flow"
	"github.com/flowsentry/flowsentry/internal/replaytest"
	"github.com/flowsentry/flowsentry/internal/testcaptures"
)

// t0 is when the synthetic captures start.
var t0 = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

// settings are the thresholds of one configuration.
type settings struct {
	flood    float64 // ddos_flood and each subtype family, packets/s
	amp      float64 // ddos_amp on every reflector port, and on 53, 123, 161
	amp53    float64 // ddos_amp on port 53 (0: amp)
	noSub    bool    // without the policies of the ddos_flood subtypes
	learning string  // learning_period of new_server and new_client
}

// typical are operator-typical thresholds; new_server and new_client
// learn for an hour, so that a capture of minutes is silent.
var typical = settings{flood: 1000, amp: 1000, learning: "1h"}

// config returns a configuration with every security family as templates
// on partition 0: groups "internal" (the private blocks), "office"
// (10.1/16) and "servers" (10.2/16), and a blacklist file.
func config(tb testing.TB, s settings) string {
	tb.Helper()
	list := filepath.Join(tb.TempDir(), "drop.txt")
	if err := os.WriteFile(list, []byte("# DROP-style list\n185.220.101.0/24\n45.155.205.233\n2a0b:f4c2::/32\n"), 0o600); err != nil {
		tb.Fatal(err)
	}
	amp53 := s.amp53
	if amp53 == 0 {
		amp53 = s.amp
	}
	var b strings.Builder
	fmt.Fprintf(&b, `partitions:
  - {cid: 0, name: default, internal: [10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, fc00::/7]}
traffic_groups:
  - {id: 1, name: internal, partition: 0, cidrs: [10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, fc00::/7]}
  - {id: 2, name: office, partition: 0, cidrs: [10.1.0.0/16]}
  - {id: 3, name: servers, partition: 0, cidrs: [10.2.0.0/16]}
blacklists:
  - {id: 1, name: drop, file: %s, refresh: 0s}
policies:
`, list)
	pol := func(id int, family, extra string) {
		fmt.Fprintf(&b, "  - {id: %d, name: p%d-%s, cid: 0, family: %s, target: traffic_groups, object_type: TGRP, severity: 5, actions: []%s}\n",
			id, id, family, family, extra)
	}
	for i, f := range []string{"ddos_flood", "ddos_synflood", "ddos_rstflood", "ddos_xmas", "ddos_tcpnull", "ddos_tcpzero",
		"ddos_ipnull", "ddos_frag", "ddos_poison", "ddos_spectrum"} {
		if i == 0 || !s.noSub {
			pol(1+i, f, fmt.Sprintf(", threshold: %v", s.flood))
		}
	}
	pol(20, "ddos_amp", fmt.Sprintf(", threshold: %v", s.amp))
	pol(21, "ddos_amp", fmt.Sprintf(", threshold: %v, port: 53", amp53))
	pol(22, "ddos_amp", fmt.Sprintf(", threshold: %v, port: 123", s.amp))
	pol(23, "ddos_amp", fmt.Sprintf(", threshold: %v, port: 161", s.amp))
	pol(30, "ddos_slow", "")
	pol(40, "scan", "")
	pol(41, "scan", ", threshold_type: new_conn, threshold: 50")
	pol(50, "blacklist", "")
	pol(60, "exfil", ", threshold: 100000000")
	pol(61, "exfil", ", threshold: 10000000")
	pol(70, "new_server", ", learning_period: "+s.learning)
	pol(71, "new_client", ", learning_period: "+s.learning)
	return b.String()
}

// subject names what an alert is about: its type and its main addresses.
func subject(e replaytest.Event) string {
	s := e.Type()
	for _, f := range []string{"target_ip", "scanner_ip", "sender_ip", "receiver_ip", "client_ip", "server_ip", "ip"} {
		if v := e.Str(f); v != "" {
			s += " " + f + "=" + v
		}
	}
	if e.Type() == "ddos_amp" || e.Type() == "new_server" {
		s += " port=" + e.Str("server_port")
	}
	return s
}

// subjects returns the sorted distinct subjects of the CREATEs.
func subjects(events []replaytest.Event) []string {
	set := map[string]bool{}
	for _, e := range replaytest.Creates(events, "") {
		set[subject(e)] = true
	}
	return sortedKeys(set)
}

// types returns the sorted distinct alert types of the CREATEs.
func types(events []replaytest.Event) []string {
	set := map[string]bool{}
	for _, e := range replaytest.Creates(events, "") {
		set[e.Type()] = true
	}
	return sortedKeys(set)
}

// ---------------------------------------------------------------------
// Benign traffic.

// Outside services.
var (
	resolvers  = []netip.Addr{netip.MustParseAddr("8.8.8.8"), netip.MustParseAddr("1.1.1.1")}
	webServers = func() []netip.Addr {
		var out []netip.Addr
		for _, base := range []string{"142.250.74.", "151.101.1.", "104.16.132.", "13.107.42.", "52.84.150.", "23.45.67.", "185.199.108.", "31.13.72."} {
			for i := range 5 {
				out = append(out, netip.MustParseAddr(base+strconv.Itoa(10+i*17)))
			}
		}
		return out
	}()
	office  = hosts("10.1.1.10", 20)
	monitor = netip.MustParseAddr("10.2.0.5")
)

// browsing is office users loading web pages over HTTPS: before a page,
// the A and AAAA lookups of its domains (those not cached), then one to
// three connections a domain, a TLS handshake, a few objects each, an
// idle keep-alive and a close. About 10 new connections a second in all,
// to 40 servers.
func browsing(c *capture, start time.Time, d time.Duration, clients []netip.Addr, withQUIC bool) {
	end := start.Add(d)
	for _, cli := range clients {
		for t := start.Add(c.between(0, 10*time.Second)); t.Before(end); t = t.Add(c.between(8*time.Second, 30*time.Second)) {
			pageLoad(c, t, cli, withQUIC)
		}
	}
}

func pageLoad(c *capture, t time.Time, cli netip.Addr, withQUIC bool) {
	domains := 3 + c.rng.IntN(8)
	for i := range domains {
		srv := webServers[c.rng.IntN(len(webServers))]
		at := t.Add(ms(float64(i) * (20 + 60*c.rng.Float64())))
		if c.rng.IntN(10) < 6 { // not cached: A and AAAA
			res := resolvers[c.rng.IntN(len(resolvers))]
			rtt := c.between(ms(8), ms(40))
			c.udp(at, cli, c.ephemeral(), res, 53, 30+c.rng.IntN(20), 60+c.rng.IntN(120), rtt)
			c.udp(at.Add(ms(1)), cli, c.ephemeral(), res, 53, 30+c.rng.IntN(20), 70+c.rng.IntN(150), rtt)
			at = at.Add(rtt + ms(2))
		}
		if withQUIC && c.rng.IntN(10) < 3 { // HTTP/3 over QUIC: one UDP flow each way
			quic(c, at.Add(c.between(0, ms(300))), cli, srv, 20_000+c.rng.IntN(380_000), 2000)
			continue
		}
		for range 1 + c.rng.IntN(3) {
			rtt := c.between(ms(10), ms(60))
			x := c.dial(at.Add(c.between(0, ms(300))), cli, srv, 443, rtt)
			next := x.exchange(x.at.Add(ms(1)), 517, 4200, 2000) // TLS handshake
			for range 1 + c.rng.IntN(5) {
				size := 1000 + int(c.rng.ExpFloat64()*40000)
				next = x.exchange(next.Add(c.between(ms(5), ms(200))), 300+c.rng.IntN(400), size, 2000)
			}
			x.finish(next.Add(c.between(5*time.Second, 40*time.Second)), c.rng.IntN(2) == 0)
		}
	}
}

// quic adds an HTTP/3 connection: the padded Initial, the server's
// handshake flight, then a response of 20-400 KB with the client's ACK
// frames, and the idle close.
func quic(c *capture, t time.Time, cli, srv netip.Addr, size int, pps float64) {
	cport := c.ephemeral()
	rtt := c.between(ms(10), ms(60))
	up := func(t time.Time, n int) {
		c.add(pkt{t: t, src: cli, dst: srv, proto: flow.ProtoUDP, sport: cport, dport: 443, payload: n})
	}
	down := func(t time.Time, n int) {
		c.add(pkt{t: t, src: srv, dst: cli, proto: flow.ProtoUDP, sport: 443, dport: cport, payload: n})
	}
	up(t, 1250)
	for i := range 3 {
		down(t.Add(rtt+ms(float64(i)*0.5)), 1200)
	}
	t = t.Add(rtt + ms(3))
	up(t, 90)
	up(t.Add(ms(1)), 400) // the request
	t = t.Add(rtt)
	gap := time.Duration(float64(time.Second) / pps)
	for i := range size / 1350 {
		down(t, 1350)
		if i%2 == 1 {
			up(t.Add(rtt/2), 45)
		}
		t = t.Add(gap)
	}
	up(t.Add(c.between(5*time.Second, 30*time.Second)), 40) // CONNECTION_CLOSE
}

// vpn is an office host in an IPsec tunnel (IKEv2 over NAT-T: ESP in UDP
// 4500 both ways) to an outside gateway, downloading size bytes through
// it at pps packets a second (the inner TCP ACKs go back every second
// packet); NAT-T keep-alives before.
func vpn(c *capture, t time.Time, cli, gw netip.Addr, size int, pps float64) {
	c.udp(t, cli, 500, gw, 500, 400, 450, ms(20))               // IKE_SA_INIT
	c.udp(t.Add(ms(50)), cli, 4500, gw, 4500, 600, 300, ms(20)) // IKE_AUTH
	c.udp(t.Add(ms(100)), cli, 4500, gw, 4500, 1, 1, ms(20))    // keep-alive
	gap := time.Duration(float64(time.Second) / pps)
	t = t.Add(ms(200))
	for i := range size / 1400 {
		c.add(pkt{t: t, src: gw, dst: cli, proto: flow.ProtoUDP, sport: 4500, dport: 4500, payload: 1400})
		if i%2 == 1 {
			c.add(pkt{t: t.Add(ms(10)), src: cli, dst: gw, proto: flow.ProtoUDP, sport: 4500, dport: 4500, payload: 100})
		}
		t = t.Add(gap)
	}
}

// download is a client fetching size bytes from one outside server over
// conns parallel connections at pps full segments a second each.
func download(c *capture, start time.Time, cli, srv netip.Addr, port uint16, size int, conns int, pps float64) {
	c.udp(start, cli, c.ephemeral(), resolvers[0], 53, 35, 120, ms(15))
	for i := range conns {
		x := c.dial(start.Add(ms(20+float64(i))), cli, srv, port, ms(12))
		end := x.exchange(x.at.Add(ms(1)), 400, size/conns, pps)
		x.finish(end.Add(ms(5)), true)
	}
}

// copyFiles is a copy between two internal hosts over SMB (445): size
// bytes at 1 Gbit/s in bursts of burst bytes (a file each) with a short
// pause between files.
func copyFiles(c *capture, start time.Time, cli, srv netip.Addr, size, burst int, upload bool) {
	x := c.dial(start, cli, srv, 445, ms(0.3))
	t := x.exchange(x.at.Add(ms(1)), 300, 600, 83000) // negotiate, session setup
	for size > 0 {
		n := min(size, burst)
		size -= n
		t = x.transfer(t.Add(ms(1)), upload, n, 83000)
		t = x.transfer(t.Add(ms(1)), !upload, 200, 83000) // the close/ack of the file
		t = t.Add(c.between(ms(200), ms(800)))
	}
	x.finish(t, true)
}

// ntp is time keeping: an internal chrony server (10.2.0.123) polling 4
// pool servers, 200 office ntpd clients (source port 123) starting with
// iburst within 20 s then polling it every 64 s, and 30 SNTP clients
// (ephemeral ports) asking an outside server once.
func ntp(c *capture, start time.Time, d time.Duration) {
	server := netip.MustParseAddr("10.2.0.123")
	end := start.Add(d)
	pool := []netip.Addr{netip.MustParseAddr("162.159.200.1"), netip.MustParseAddr("194.58.204.20"), netip.MustParseAddr("129.250.35.250"), netip.MustParseAddr("85.199.214.100")}
	for _, p := range pool {
		t := start.Add(c.between(0, time.Second))
		for i := 0; t.Before(end); i++ {
			c.udp(t, server, 123, p, 123, 48, 48, c.between(ms(5), ms(40)))
			if i < 4 {
				t = t.Add(2 * time.Second)
			} else {
				t = t.Add(64 * time.Second)
			}
		}
	}
	for _, cli := range hosts("10.1.2.1", 200) {
		t := start.Add(c.between(0, 20*time.Second))
		for i := 0; t.Before(end); i++ {
			c.udp(t, cli, 123, server, 123, 48, 48, ms(0.4))
			if i < 4 {
				t = t.Add(2 * time.Second)
			} else {
				t = t.Add(64 * time.Second)
			}
		}
	}
	for _, cli := range hosts("10.1.3.1", 30) {
		c.udp(start.Add(c.between(0, d)), cli, c.ephemeral(), netip.MustParseAddr("20.101.57.9"), 123, 48, 48, ms(20))
	}
}

// pings are pings at one a second: a monitoring host pinging 20 servers,
// a user pinging an outside address (IPv4 and IPv6), an outside uptime
// monitor pinging a server.
func pings(c *capture, start time.Time, d time.Duration) {
	type pair struct{ from, to netip.Addr }
	var pairs []pair
	for _, s := range hosts("10.2.0.10", 20) {
		pairs = append(pairs, pair{monitor, s})
	}
	pairs = append(pairs, pair{office[3], resolvers[0]},
		pair{netip.MustParseAddr("fd00::15"), netip.MustParseAddr("2001:4860:4860::8888")},
		pair{netip.MustParseAddr("216.144.250.150"), netip.MustParseAddr("10.2.0.80")})
	for i, p := range pairs {
		off := c.between(0, time.Second)
		for s := time.Duration(0); s < d; s += time.Second {
			c.ping(start.Add(off+s), p.from, p.to, uint8(i), c.between(ms(0.3), ms(30)))
		}
	}
}

// ssh is interactive SSH for d: an office user on an outside server and
// an outside admin on an internal server, typing commands (a keystroke,
// its echo and a delayed ACK), reading their output, and pausing.
func ssh(c *capture, start time.Time, d time.Duration) {
	sessions := []struct{ cli, srv netip.Addr }{
		{office[5], netip.MustParseAddr("139.162.10.20")},
		{netip.MustParseAddr("203.0.113.44"), netip.MustParseAddr("10.2.0.22")},
	}
	for _, s := range sessions {
		x := c.dial(start, s.cli, s.srv, 22, ms(25))
		t := x.exchange(x.at.Add(ms(1)), 1500, 1100, 1000) // key exchange
		t = x.exchange(t.Add(ms(50)), 700, 1200, 1000)     // auth, banner
		end := start.Add(d)
		for t.Before(end) {
			for range 3 + c.rng.IntN(25) { // a command, key by key
				t = t.Add(c.between(ms(80), ms(400)))
				x.send(t, true, ack|psh, 36)
				x.send(t.Add(x.rtt/2), false, ack|psh, 36)
				x.send(t.Add(x.rtt/2+ms(40)), true, ack, 0)
			}
			t = x.transfer(t.Add(ms(300)), false, 100+c.rng.IntN(20000), 500) // its output
			t = t.Add(c.between(2*time.Second, 25*time.Second))
		}
		x.finish(t, true)
	}
}

// scenario is one kind of benign traffic.
type scenario struct {
	name string
	make func(c *capture)
}

var scenarios = []scenario{
	{"web browsing with DNS", func(c *capture) { browsing(c, t0, 2*time.Minute, office, false) }},
	{"web browsing with DNS, HTTP/3 too", func(c *capture) { browsing(c, t0, 2*time.Minute, office, true) }},
	{"QUIC download 100 MB at 100 Mbit/s", func(c *capture) {
		c.udp(t0, office[7], c.ephemeral(), resolvers[0], 53, 35, 120, ms(15))
		quic(c, t0.Add(ms(20)), office[7], netip.MustParseAddr("142.250.74.110"), 100_000_000, 9000)
	}},
	{"IPsec VPN (NAT-T, UDP 4500) download 50 MB at 90 Mbit/s", func(c *capture) {
		vpn(c, t0, office[8], netip.MustParseAddr("81.2.69.160"), 50_000_000, 8000)
	}},
	{"large download 200 MB at 100 Mbit/s", func(c *capture) {
		download(c, t0, office[0], netip.MustParseAddr("151.101.66.217"), 443, 200_000_000, 1, 8400)
	}},
	{"download over 4 connections from a CDN", func(c *capture) {
		download(c, t0, office[1], netip.MustParseAddr("23.45.67.200"), 443, 60_000_000, 4, 2500)
	}},
	{"10 MB download", func(c *capture) {
		download(c, t0, office[2], netip.MustParseAddr("52.84.150.80"), 80, 10_500_000, 1, 8400)
	}},
	{"download at 1 Gbit/s over 8 connections", func(c *capture) {
		download(c, t0, office[4], netip.MustParseAddr("185.199.108.153"), 443, 400_000_000, 8, 10400)
	}},
	{"NTP clients and server", func(c *capture) { ntp(c, t0, 200*time.Second) }},
	{"pings", func(c *capture) { pings(c, t0, 3*time.Minute) }},
	{"interactive SSH", func(c *capture) { ssh(c, t0, 5*time.Minute) }},
	{"copy office to servers at 1 Gbit/s (SMB)", func(c *capture) {
		copyFiles(c, t0, netip.MustParseAddr("10.1.1.60"), netip.MustParseAddr("10.2.0.20"), 150_000_000, 50_000_000, true)
	}},
	{"copy servers to office at 1 Gbit/s (SMB)", func(c *capture) {
		copyFiles(c, t0, netip.MustParseAddr("10.1.1.61"), netip.MustParseAddr("10.2.0.21"), 120_000_000, 120_000_000, false)
	}},
}

// background is a mix of every kind of benign traffic over about 90 s:
// the traffic the attacks are replayed over.
var background = sync.OnceValue(func() []frame {
	c := newCapture(99)
	browsing(c, t0, 90*time.Second, office[:15], false) // HTTP/3: see TestBenignRaisesNothing
	ntp(c, t0, 90*time.Second)
	pings(c, t0, 90*time.Second)
	ssh(c, t0, 90*time.Second)
	download(c, t0.Add(20*time.Second), office[0], netip.MustParseAddr("151.101.66.217"), 443, 80_000_000, 1, 8400)
	copyFiles(c, t0.Add(40*time.Second), netip.MustParseAddr("10.1.1.60"), netip.MustParseAddr("10.2.0.20"), 40_000_000, 40_000_000, true)
	return c.frames()
})

// TestBenignRaisesNothing replays each kind of benign traffic, cut to 128
// bytes a packet, with every security family in force at typical
// thresholds (exfil at 100 MB and 10 MB; new_server and new_client
// learning, so silent by design): nothing may be raised.
func TestBenignRaisesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs flowsentry")
	}
	cfg := config(t, typical)
	for i, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			c := newCapture(uint64(i + 1))
			sc.make(c)
			frames := c.frames()
			first, last := span(frames)
			events := replaytest.Run(t, cfg, writeFrames(t, "benign.pcap", frames))
			t.Logf("%d packets over %.0f s: %d events", len(frames), last.Sub(first).Seconds(), len(events))
			if got := subjects(events); len(got) > 0 {
				t.Errorf("raised %q", got)
			}
		})
	}
	// The controls show the captures reach the detectors: an upload of
	// 20 MB to the outside is exfiltration at 10 MB, and a new service
	// of the servers group is new with no learning period.
	t.Run("control: 20 MB upload raises exfil", func(t *testing.T) {
		c := newCapture(50)
		x := c.dial(t0, office[6], netip.MustParseAddr("91.198.174.192"), 443, ms(20))
		end := x.exchange(x.at.Add(ms(1)), 20_000_000, 300, 5000)
		x.finish(end, true)
		events := replaytest.Run(t, cfg, writeFrames(t, "upload.pcap", c.frames()))
		if got := subjects(events); !slices.Equal(got, []string{"exfil sender_ip=10.1.1.16 receiver_ip=91.198.174.192"}) {
			t.Errorf("raised %q, want the exfil of 10.1.1.16", got)
		}
	})
	t.Run("control: new service without learning", func(t *testing.T) {
		c := newCapture(51)
		ssh(c, t0, time.Minute)
		events := replaytest.Run(t, config(t, settings{flood: 1000, amp: 1000, learning: "0s"}), writeFrames(t, "ssh.pcap", c.frames()))
		if got := types(events); !slices.Equal(got, []string{"new_client", "new_server"}) {
			t.Errorf("raised %q, want new_client and new_server", subjects(events))
		}
	})
	t.Run("all together", func(t *testing.T) {
		frames := background()
		events := replaytest.Run(t, cfg, writeFrames(t, "background.pcap", frames))
		t.Logf("%d packets", len(frames))
		if got := subjects(events); len(got) > 0 {
			t.Errorf("raised %q", got)
		}
	})
}

// ---------------------------------------------------------------------
// Attacks.

// TestTruncatedAttacksStillDetected replays shared attack captures cut to
// 128 bytes a packet, alone and over the benign background (shifted to
// start 30 s before the attack): the attack must raise its alert on its
// target within 10 s of its first packet, and the background must add
// nothing to what the attack alone raises.
func TestTruncatedAttacksStillDetected(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs flowsentry")
	}
	cases := []struct {
		name    string
		capture string
		s       settings
		want    string // the subject that must be raised
	}{
		{"syn flood at 1000 pps", "attacks/ddos/pkt.TCP.synflood.spoofed.pcap", typical,
			"ddos_synflood target_ip=10.10.10.10"},
		{"snmp amplification at 1000 pps", "attacks/ddos/amp.UDP.snmp.src161.pcapng", typical,
			"ddos_amp target_ip=10.10.10.10 port=161"},
		{"dns rrsig amplification at 40 pps", "attacks/ddos/amp.dns.RRSIG.fragmented.pcap", settings{flood: 1000, amp: 1000, amp53: 40, learning: "1h"},
			"ddos_amp target_ip=10.10.10.10 port=53"},
		{"nmap syn scan", "attacks/scans/synscan.pcap", typical,
			"scan scanner_ip=172.16.0.8"},
	}
	bg := background()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config(t, tc.s)
			attack := readTruncated(t, testcaptures.Path(t, tc.capture))
			first, _ := span(attack)
			bgFirst, _ := span(bg)
			mixed := merge(attack, shift(bg, first.Add(-30*time.Second).Sub(bgFirst)))

			alone := replaytest.Run(t, cfg, writeFrames(t, "attack.pcap", attack))
			withBG := replaytest.Run(t, cfg, writeFrames(t, "mixed.pcap", mixed))
			t.Logf("alone: %q", subjects(alone))
			t.Logf("with background: %q", subjects(withBG))
			for _, run := range []struct {
				name   string
				events []replaytest.Event
			}{{"alone", alone}, {"with background", withBG}} {
				var hit *replaytest.Event
				for _, e := range replaytest.Creates(run.events, "") {
					if subject(e) == tc.want {
						hit = &e
						break
					}
				}
				if hit == nil {
					t.Errorf("%s: no %q among %q", run.name, tc.want, subjects(run.events))
					continue
				}
				earliest, err := strconv.ParseFloat(hit.Str("earliest_utc"), 64)
				if err != nil {
					t.Errorf("%s: earliest_utc %q: %v", run.name, hit.Str("earliest_utc"), err)
				} else if delay := earliest - float64(first.UnixNano())/1e9; delay > 10 || delay < -1 {
					t.Errorf("%s: alert starts %.1f s after the attack's first packet, want 0-10", run.name, delay)
				} else {
					t.Logf("%s: alert starts %.2f s after the attack's first packet", run.name, delay)
				}
			}
			if a, b := subjects(alone), subjects(withBG); !slices.Equal(a, b) {
				t.Errorf("the background changed the alerts:\nalone           %q\nwith background %q", a, b)
			}
		})
	}
}

// TestLabelledAttacksRaiseOnlyTheirAlert replays every shared attack
// capture, whole and cut to 128 bytes a packet, with every security
// family in force at typical thresholds (new_server and new_client
// without learning, so that they show whether an attack looks like a
// new service): the alert types raised must be exactly the expected set.
func TestLabelledAttacksRaiseOnlyTheirAlert(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs flowsentry")
	}
	noLearning := settings{flood: 1000, amp: 1000, learning: "0s"}
	lowFlood := noLearning
	lowFlood.flood = 200
	amp40 := noLearning
	amp40.amp53 = 40
	cases := []struct {
		capture string
		s       settings
		want    []string
	}{
		{"attacks/ddos/pkt.TCP.synflood.spoofed.pcap", noLearning, []string{"ddos_synflood"}},
		{"attacks/ddos/pkt.TCP.DOMINATE.syn.ecn.cwr.pcapng", lowFlood, []string{"ddos_synflood"}},
		// SYN-ACKs are established TCP (ACK set) and count from 32 remote
		// blocks; the RST and ICMP backscatter spreads over 100+ ports.
		{"attacks/ddos/amp.TCP.reflection.SYNACK.pcap", noLearning, []string{"ddos_spectrum"}},
		{"attacks/ddos/amp.TCP.syn.optionallyACK.optionallysamePort.pcapng", noLearning, nil},
		{"attacks/ddos/amp.UDP.bacnet.IOT.37810.pcapng", noLearning, []string{"ddos_amp"}},
		{"attacks/ddos/amp.UDP.isakmp.pcap", noLearning, []string{"ddos_amp"}},
		{"attacks/ddos/amp.UDP.snmp.src161.pcapng", noLearning, []string{"ddos_amp"}},
		{"attacks/ddos/amp.dns.RRSIG.fragmented.pcap", amp40, []string{"ddos_amp"}},
		{"attacks/scans/synscan.pcap", noLearning, []string{"scan"}},
		{"attacks/scans/tcp_scan.pcapng", noLearning, nil},
		{"attacks/scans/masscan_tcp_0_1000_20190821.pcap", noLearning, []string{"scan"}},
		{"attacks/scans/masscan_udp_0_1000_20190821.pcap", noLearning, []string{"scan"}},
		{"attacks/scans/nmap_80_all.pcap", noLearning, nil},
		{"attacks/scans/nmap_80_w_service_detection.pcap", noLearning, nil},
		{"attacks/scans/hs-tcp_synPingSweepRand.pcapng", noLearning, []string{"scan"}},
		{"attacks/scans/hs-tcp_ackPingSweepRand.pcapng", noLearning, []string{"scan"}},
		{"attacks/scans/hs-icmpScan.pcap", noLearning, []string{"scan"}},
		{"attacks/scans/hs-udpScan.pcap", noLearning, nil},
		{"attacks/anomalies/tcp_one_way_all_flags.pcap", noLearning, nil},
		{"attacks/anomalies/ip_fragmented_garbage.pcap", noLearning, []string{"ddos_frag"}},
		{"attacks/anomalies/ntp_monlist_response.pcap", noLearning, nil},
		{"attacks/anomalies/dns_exfiltration.pcap", noLearning, []string{"new_client", "new_server"}},
	}
	var table []string
	for _, tc := range cases {
		name := strings.TrimPrefix(tc.capture, "attacks/")
		t.Run(name, func(t *testing.T) {
			path := testcaptures.Path(t, tc.capture)
			cutPath := writeFrames(t, "cut.pcap", readTruncated(t, path))
			want := slices.Clone(tc.want)
			slices.Sort(want)
			amp53 := tc.s.amp53
			if amp53 == 0 {
				amp53 = tc.s.amp
			}
			row := fmt.Sprintf("%-60s flood %-4v amp53 %-4v", name, tc.s.flood, amp53)
			for _, v := range []struct {
				name  string
				noSub bool
			}{{"every subtype", false}, {"ddos_flood only", true}} {
				s := tc.s
				s.noSub = v.noSub
				cfg := config(t, s)
				whole, cut := replaytest.Run(t, cfg, path), replaytest.Run(t, cfg, cutPath)
				got, gotCut := types(whole), types(cut)
				row += fmt.Sprintf(" | %s: %v", v.name, got)
				if !slices.Equal(got, gotCut) {
					row += fmt.Sprintf(" (cut to 128 B: %v)", gotCut)
				}
				if !slices.Equal(got, want) {
					t.Errorf("%s: raised %v, want %v: %q", v.name, got, want, subjects(whole))
				}
				if !slices.Equal(gotCut, want) {
					t.Errorf("%s, cut to 128 bytes: raised %v, want %v: %q", v.name, gotCut, want, subjects(cut))
				}
			}
			table = append(table, row)
		})
	}
	t.Logf("capture → alert types (all security families, typical thresholds, new_server/new_client without learning):\n%s", strings.Join(table, "\n"))
}
