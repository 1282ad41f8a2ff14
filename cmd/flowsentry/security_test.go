package main

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flowsentry/flowsentry/flow"
	"github.com/flowsentry/flowsentry/internal/replaytest"
	"github.com/flowsentry/flowsentry/internal/testcaptures"
)

// The policies of TestSecurityAlertsEndToEnd.
const (
	secFloodThreshold  = 10000   // ddos_flood, packets/s to one address
	secScanThreshold   = 100     // scan, distinct endpoints/s
	secExfilThreshold  = 1000000 // exfil, bytes in one session
	secBlacklistID     = 7
	secBlacklistName   = "bad"
	secAllowedScanTgt  = "192.0.2.99"
	secAllowedScanner  = "10.1.1.30"
	secBlacklisted     = "203.0.113.7"
	secBlacklistClient = "10.1.1.5"
	secExfilSender     = "10.1.1.6"
	secExfilReceiver   = "198.51.100.20"
	secNewServer       = "10.1.1.20"
	secNewClient       = "198.51.100.9"
)

// securityConfig is the configuration of TestSecurityAlertsEndToEnd: a
// blacklist file holding secBlacklisted, one policy of each security
// family on the default traffic groups (1 "internal", the private
// blocks), policy N calling recorder instance N, which logs to
// logFiles[N-1], and shortened lifecycle timings. Each policy has its own
// log because the recorder appends a call in several writes: two alerts
// calling it at once would interleave in one file.
func securityConfig(t *testing.T, logFiles []string, blacklist string) string {
	t.Helper()
	plugins, err := filepath.Abs("testdata/plugins")
	if err != nil {
		t.Fatal(err)
	}
	var instances strings.Builder
	for i, f := range logFiles {
		fmt.Fprintf(&instances, "  - {id: %d, cid: 0, plugin: recorder, name: record %d, values: {LOG_FILE: %s}}\n", i+1, i+1, f)
	}
	common := "cid: 0, target: traffic_groups, object_type: TGRP"
	return fmt.Sprintf(`plugin_dir: %s
admin:
  user: admin
  password: s3cret-pass
alerts:
  update_interval: 1s
  quiet_period: 3s
  max_age: 1h
instances:
%sblacklists:
  - {id: %d, name: %s, file: %s}
policies:
  - {id: 1, name: floods, family: ddos_flood, threshold: %d, severity: 7, %s, actions: [{instance: 1}]}
  - {id: 2, name: scans, family: scan, threshold: %d, severity: 5, allow: [%s/32], %s, actions: [{instance: 2}]}
  - {id: 3, name: blacklisted, family: blacklist, severity: 6, %s, actions: [{instance: 3}]}
  - {id: 4, name: uploads, family: exfil, threshold: %d, severity: 4, %s, actions: [{instance: 4}]}
  - {id: 5, name: new servers, family: new_server, learning_period: 0s, severity: 3, %s, actions: [{instance: 5}]}
  - {id: 6, name: new clients, family: new_client, learning_period: 0s, severity: 2, %s, actions: [{instance: 6}]}
`, plugins, instances.String(), secBlacklistID, secBlacklistName, blacklist,
		secFloodThreshold, common, secScanThreshold, secAllowedScanTgt, common, common,
		secExfilThreshold, common, common, common)
}

// secConversation adds a TCP session to c: handshake, payload bytes from
// the client in segments of 1400 (spread over spread), a short answer,
// and FIN from both sides. Steps are 20 ms apart so that the exporter's
// millisecond timestamps keep the SYN before the SYN-ACK.
func secConversation(c *replaytest.Capture, at time.Time, client, server string, cport, sport uint16, upload int, spread time.Duration) time.Time {
	cl, sv := netip.MustParseAddr(client), netip.MustParseAddr(server)
	p := func(when time.Time, fromClient bool, flags uint8, payload int) {
		pk := replaytest.Packet{Time: when, Src: cl, Dst: sv, Proto: flow.ProtoTCP, SrcPort: cport, DstPort: sport, Flags: flags, Payload: payload}
		if !fromClient {
			pk.Src, pk.Dst, pk.SrcPort, pk.DstPort = sv, cl, sport, cport
		}
		c.Add(pk)
	}
	const step = 20 * time.Millisecond
	p(at, true, flow.TCPSyn, 0)
	p(at.Add(step), false, flow.TCPSyn|flow.TCPAck, 0)
	p(at.Add(2*step), true, flow.TCPAck, 0)
	at = at.Add(3 * step)
	segments := max(1, (upload+1399)/1400)
	for i := range segments {
		n := min(1400, upload-i*1400)
		if upload == 0 {
			n = 200
		}
		when := at.Add(spread * time.Duration(i) / time.Duration(segments))
		p(when, true, flow.TCPAck|flow.TCPPsh, n)
		if i%2 == 1 {
			p(when.Add(time.Millisecond), false, flow.TCPAck, 0)
		}
	}
	at = at.Add(spread + step)
	p(at, false, flow.TCPAck|flow.TCPPsh, 600)
	p(at.Add(step), true, flow.TCPAck|flow.TCPFin, 0)
	p(at.Add(2*step), false, flow.TCPAck|flow.TCPFin, 0)
	p(at.Add(3*step), true, flow.TCPAck, 0)
	return at.Add(4 * step)
}

// secCapture writes the synthetic capture of the blacklist, exfil, new
// server and allow-listed scanner phases.
func secCapture(t *testing.T) string {
	t.Helper()
	var c replaytest.Capture
	at := time.Now().Add(-30 * time.Second).Truncate(time.Second)
	// An internal host opens a small HTTPS session to a blacklisted one.
	at = secConversation(&c, at, secBlacklistClient, secBlacklisted, 50000, 443, 3000, 100*time.Millisecond)
	// An internal host uploads 5 MB to an outside one over 5 s.
	at = secConversation(&c, at, secExfilSender, secExfilReceiver, 51000, 443, 5_000_000, 5*time.Second)
	// A new internal service on 8443 answers an outside client.
	at = secConversation(&c, at, secNewClient, secNewServer, 52000, 8443, 800, 50*time.Millisecond)
	// An internal host probes 600 ports of an allow-listed address within
	// a second: far above the scan threshold, but allowed.
	scanner, target := netip.MustParseAddr(secAllowedScanner), netip.MustParseAddr(secAllowedScanTgt)
	for i := range 600 {
		c.Add(replaytest.Packet{Time: at.Add(time.Duration(i) * time.Millisecond), Src: scanner, Dst: target,
			Proto: flow.ProtoTCP, SrcPort: 40000, DstPort: uint16(1 + i), Flags: flow.TCPSyn})
	}
	return c.Write(t)
}

// secCalls are the recorder's logs of the test, read again at each look.
type secCalls struct {
	t        *testing.T
	s        *server
	logFiles []string
	calls    []call
}

// read refreshes the calls: those of each log in order, the logs one
// after the other.
func (c *secCalls) read() []call {
	c.calls = c.calls[:0]
	for _, f := range c.logFiles {
		c.calls = append(c.calls, readCalls(c.t, f)...)
	}
	return c.calls
}

// summary lists the calls as "OP TYPE ID" lines for failure messages.
func (c *secCalls) summary() string {
	var b strings.Builder
	for _, x := range c.calls {
		fmt.Fprintf(&b, "  %s %s id=%s", x.op, x.env["ALERT_TYPE"], x.env["ID"])
		for _, k := range []string{"TARGET_IP", "SCANNER_IP", "CLIENT_IP", "SERVER_IP", "SENDER_IP", "SERVER_PORT"} {
			if v, ok := x.env[k]; ok {
				fmt.Fprintf(&b, " %s=%s", k, v)
			}
		}
		b.WriteByte('\n')
	}
	if b.Len() == 0 {
		return "  (none)\n"
	}
	return b.String()
}

// find returns the first call of op and alert type whose environment
// holds every pair of match.
func (c *secCalls) find(op, typ string, match map[string]string, exclude ...string) (call, bool) {
outer:
	for _, x := range c.calls {
		if x.op != op || x.env["ALERT_TYPE"] != typ || slices.Contains(exclude, x.env["ID"]) {
			continue
		}
		for k, v := range match {
			if x.env[k] != v {
				continue outer
			}
		}
		return x, true
	}
	return call{}, false
}

// wait polls the log until a call of op and alert type matching match
// (and of no alert ID in exclude) arrives, or fails naming what is
// missing, with every call seen and the server's log.
func (c *secCalls) wait(op, typ string, match map[string]string, timeout time.Duration, exclude ...string) call {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		c.read()
		if x, ok := c.find(op, typ, match, exclude...); ok {
			return x
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("no %s of ALERT_TYPE=%s with %v within %v; the plugin got:\n%sdatagrams %v records %v decode errors %v\nserver logs:\n%s",
				op, typ, match, timeout, c.summary(), c.s.metric(c.t, "flowsentry_collector_datagrams_total"),
				c.s.metric(c.t, "flowsentry_pipeline_records_total"), c.s.metric(c.t, "flowsentry_collector_decode_errors_total"), c.s.logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// secBaseEnv are the variables of every call besides the alert type's
// own: those the manual gives every alert, the counters, the action's
// (AID, TKN, FLOWSENTRY_URL, PATH for ftnbi), the server's HOME, LANG and
// TZ when it has them, and the recorder instance's configuration values.
var secBaseEnv = []string{"ID", "EARLIEST_UTC", "LATEST_UTC", "CID", "CID_NAME", "SEVERITY", "ALERT_TYPE",
	"AID", "TKN", "FLOWSENTRY_URL", "PATH", "HOME", "LANG", "TZ", "LOG_FILE", "NOTE"}

// checkEnv compares a call's environment with want, the variables of its
// alert type (a value "" means present, any value; "=" present and
// empty): no other variable than those and secBaseEnv may be set, the
// variables of absent in particular; and checks the variables every alert
// carries.
func checkEnv(t *testing.T, name string, c call, want map[string]string, absent ...string) {
	t.Helper()
	allowed := map[string]bool{}
	for _, k := range secBaseEnv {
		allowed[k] = true
	}
	for _, cnt := range []string{"PACKETS_IN", "PACKETS_OUT", "BYTES_IN", "BYTES_OUT", "NEW_CONN"} {
		for _, p := range []string{"PEAK_", "AVG_", "CUR_"} {
			allowed[p+cnt] = true
		}
	}
	for k := range want {
		allowed[k] = true
	}
	var extra []string
	for k, v := range c.env {
		if !allowed[k] && !slices.Contains(absent, k) {
			extra = append(extra, k+"="+v)
		}
	}
	if len(extra) > 0 {
		slices.Sort(extra)
		t.Errorf("%s: %s has variables the contract of ALERT_TYPE=%s does not list: %v", name, c.op, c.env["ALERT_TYPE"], extra)
	}
	for k, v := range want {
		got, ok := c.env[k]
		switch {
		case !ok:
			t.Errorf("%s: %s %s is missing", name, c.op, k)
		case v == "=" && got != "":
			t.Errorf("%s: %s %s=%q, want it empty", name, c.op, k, got)
		case v != "" && v != "=" && got != v:
			t.Errorf("%s: %s %s=%q, want %q", name, c.op, k, got, v)
		}
	}
	for _, k := range absent {
		if v, ok := c.env[k]; ok {
			t.Errorf("%s: %s has %s=%q, which the contract leaves out here", name, c.op, k, v)
		}
	}
	patterns := map[string]string{
		"ID": `^[1-9][0-9]*$`, "AID": `^[1-9][0-9]*$`, "CID": `^0$`, "CID_NAME": `^default$`, "SEVERITY": `^([1-9]|10)$`,
		"EARLIEST_UTC": `^[0-9]{10}\.[0-9]{6}$`, "LATEST_UTC": `^[0-9]{10}\.[0-9]{6}$`, "TKN": `^[0-9a-f]{32}$`,
	}
	for _, cnt := range []string{"PACKETS_IN", "PACKETS_OUT", "BYTES_IN", "BYTES_OUT", "NEW_CONN"} {
		for _, p := range []string{"PEAK_", "AVG_", "CUR_"} {
			patterns[p+cnt] = `^[0-9]+\.[0-9]{2}$`
		}
	}
	for k, re := range patterns {
		if !regexp.MustCompile(re).MatchString(c.env[k]) {
			t.Errorf("%s: %s %s=%q does not match %s", name, c.op, k, c.env[k], re)
		}
	}
}

// envFloat reads a numeric variable.
func envFloat(t *testing.T, name string, c call, k string) float64 {
	t.Helper()
	v, err := strconv.ParseFloat(c.env[k], 64)
	if err != nil {
		t.Errorf("%s: %s %s=%q is not a number", name, c.op, k, c.env[k])
	}
	return v
}

// checkDDoS checks a ddos_synflood CREATE on 10.10.10.10:25565 and its
// alert in the API; each packet of the export stands for sampling.
func checkDDoS(t *testing.T, s *server, name string, c call, sampling int) {
	t.Helper()
	checkEnv(t, name, c, map[string]string{
		"ALERT_TYPE": "ddos_synflood", "TARGET_IP": "10.10.10.10", "TARGET_MASK": "8", "TARGET_TG": "1",
		"TARGET_TG_NAME": "internal", "PROTO": "6", "PORT": "25565", "SEVERITY": "7",
		"THRESHOLD_VALUE": fmt.Sprintf("%d.00", secFloodThreshold), "SOURCES": "", "TOTAL_SOURCES": "",
	}, "OBJECT_TYPE", "THRESHOLD_TYPE", "SERVER_PORT")
	if n := envFloat(t, name, c, "TOTAL_SOURCES"); n <= 1000 {
		t.Errorf("%s: TOTAL_SOURCES=%v, want above 1000 (the flood's sources are spoofed at random)", name, n)
	}
	if !regexp.MustCompile(`^[0-9]+\.[0-9]+\.[0-9]+\.0/24( [0-9]+\.[0-9]+\.[0-9]+\.0/24){0,9}$`).MatchString(c.env["SOURCES"]) {
		t.Errorf("%s: SOURCES=%q, want 1 to 10 space-separated /24 blocks", name, c.env["SOURCES"])
	}
	peak := envFloat(t, name, c, "PEAK_PACKETS_IN")
	if peak <= secFloodThreshold {
		t.Errorf("%s: PEAK_PACKETS_IN=%v, want above the threshold %d", name, peak, secFloodThreshold)
	}
	if int64(peak)%int64(sampling) != 0 || peak != float64(int64(peak)) {
		t.Errorf("%s: PEAK_PACKETS_IN=%v, want a multiple of the sampling rate %d", name, peak, sampling)
	}
	if cur := envFloat(t, name, c, "CUR_PACKETS_IN"); cur <= secFloodThreshold {
		t.Errorf("%s: CUR_PACKETS_IN=%v at CREATE, want above the threshold %d", name, cur, secFloodThreshold)
	}

	// The API shows the manual's ddos_slow members, and neither
	// target_tg_name nor port.
	var detail struct {
		Alert map[string]any `json:"alert"`
	}
	s.authGet(t, "/api/v1/alerts/"+c.env["ID"], &detail)
	a := detail.Alert
	for k, v := range map[string]any{"alert_type": "ddos_synflood", "target_ip": "10.10.10.10", "target_mask": 8.0,
		"target_tg": 1.0, "proto": 6.0, "server_port": 25565.0, "threshold_value": float64(secFloodThreshold)} {
		if a[k] != v {
			t.Errorf("%s: alert JSON %s=%#v, want %#v", name, k, a[k], v)
		}
	}
	if n, ok := a["total_sources"].(float64); !ok || n <= 1000 {
		t.Errorf("%s: alert JSON total_sources=%#v, want a number above 1000", name, a["total_sources"])
	}
	// The alert may have been updated since the CREATE: its sources are
	// the latest top blocks.
	block := regexp.MustCompile(`^[0-9]+\.[0-9]+\.[0-9]+\.0/24$`)
	src, ok := a["sources"].([]any)
	if !ok || len(src) == 0 || len(src) > 10 {
		t.Errorf("%s: alert JSON sources=%#v, want an array of 1 to 10 blocks", name, a["sources"])
	}
	for _, b := range src {
		if s, _ := b.(string); !block.MatchString(s) {
			t.Errorf("%s: alert JSON sources holds %#v, want /24 blocks as strings", name, b)
		}
	}
	for _, k := range []string{"target_tg_name", "port", "TARGET_TG_NAME", "PORT"} {
		if v, ok := a[k]; ok {
			t.Errorf("%s: alert JSON has %s=%#v; the manual's DDoS JSON has no such member", name, k, v)
		}
	}
}

// TestSecurityAlertsEndToEnd runs one `flowsentry serve` with a policy of
// every security family calling the recorder plugin, sends it real
// exports over UDP on loopback, and checks each alert's CREATE (its
// environment as the plugin contract lists it for its ALERT_TYPE), the
// alert in the API and in `ftnbi -alert -j`:
//
//  1. DDoS over NetFlow v9: softflowd's export of the spoofed SYN flood
//     (37,669 one-packet records to 10.10.10.10:25565, arriving within a
//     fraction of a second) → ddos_synflood on 10.10.10.10; it ends
//     (DELETE) after the quiet period.
//  2. DDoS over sFlow 1:10: pmacct's export of the same flood → a new
//     ddos_synflood on the same target whose packet rate is only above
//     the threshold because each sample counts 10 (3,807 samples).
//  3. Scan: softflowd's export of nmap's SYN scan → scan on 172.16.0.8.
//  4. Blacklist, exfil, new server and client: softflowd's export of a
//     synthetic capture → blacklisted_ip, exfil, new_server, new_client.
//  5. An internal host scanning an allow-listed address raises nothing,
//     and no other alert than those above is created.
func TestSecurityAlertsEndToEnd(t *testing.T) {
	softflowd := need(t, "softflowd")
	caps := testcaptures.Dir(t)
	begin := time.Now()
	dir := t.TempDir()
	var logFiles []string
	for i := range 6 {
		logFiles = append(logFiles, filepath.Join(dir, fmt.Sprintf("calls-%d.log", i+1)))
	}
	blacklist := filepath.Join(dir, "bad.txt")
	if err := os.WriteFile(blacklist, []byte("# test list\n"+secBlacklisted+"\n198.18.255.0/24 ; unused\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, securityConfig(t, logFiles, blacklist))
	calls := &secCalls{t: t, s: s, logFiles: logFiles}
	lap := func(what string) { t.Logf("%5.1fs %s", time.Since(begin).Seconds(), what) }
	lap("server up")

	// 1. DDoS over NetFlow v9.
	sendPayloads(t, filepath.Join(caps, "flow-exports/derived/softflowd-v9-synflood.pcap"), s.netflow)
	flood := calls.wait("CREATE", "ddos_synflood", map[string]string{"TARGET_IP": "10.10.10.10"}, 15*time.Second)
	lap("1. ddos_synflood over NetFlow v9")
	checkDDoS(t, s, "NetFlow v9 flood", flood, 1)

	// 3. Scan over NetFlow v9, right after the flood: the flood's 37,623
	// spoofed sources, each a remote /24 probing the group once, must not
	// crowd the local scanner out of the scan detector's tables.
	sendPayloads(t, filepath.Join(caps, "flow-exports/derived/softflowd-v9-nmap-synscan.pcap"), s.netflow)
	scan := calls.wait("CREATE", "scan", map[string]string{"SCANNER_IP": "172.16.0.8"}, 15*time.Second)
	lap("3. scan")
	checkEnv(t, "scan", scan, map[string]string{
		"ALERT_TYPE": "scan", "SEVERITY": "5", "SCANNER_IP": "172.16.0.8", "SCANNER_CIDR": "172.16.0.8/32",
		"SCANNER_TG": "1", "SCANNER_TG_NAME": "internal", "DIRECTION": "outbound", "PROTO": "6", "TARGET_TG": "0",
		"UNIQUE_HOSTS": "1", "UNIQUE_PORTS": "", "CONNECTION_COUNT": "", "PORTS": "",
		"THRESHOLD_TYPE": "uniq_endpoints", "THRESHOLD_VALUE": "",
	}, "TARGET_TG_NAME")
	if n := envFloat(t, "scan", scan, "UNIQUE_PORTS"); n <= secScanThreshold {
		t.Errorf("scan: UNIQUE_PORTS=%v, want above %d (nmap probes ~1,000 ports)", n, secScanThreshold)
	}
	if n := envFloat(t, "scan", scan, "THRESHOLD_VALUE"); n != secScanThreshold {
		t.Errorf("scan: THRESHOLD_VALUE=%v, want %d", n, secScanThreshold)
	}
	if ports := strings.Fields(scan.env["PORTS"]); len(ports) == 0 || len(ports) > 8 {
		t.Errorf("scan: PORTS=%q, want 1 to 8 ports", scan.env["PORTS"])
	}
	if n := envFloat(t, "scan", scan, "CUR_NEW_CONN"); n <= 0 {
		t.Errorf("scan: CUR_NEW_CONN=%v, want the attempts per second", n)
	}

	// 4. Blacklist, exfil, new server/client and the allow-listed scanner,
	// exported by softflowd from a synthetic capture.
	capture := secCapture(t)
	args := []string{"-d", "-c", "none", "-m", "100000", "-p", filepath.Join(dir, "sf.pid"), "-r", capture, "-n", s.netflow, "-v", "9", "-a"}
	if out, err := exec.Command(softflowd, args...).CombinedOutput(); err != nil {
		t.Fatalf("softflowd %v: %v\n%s", args, err, out)
	}
	bl := calls.wait("CREATE", "blacklisted_ip", map[string]string{"CLIENT_IP": secBlacklistClient}, 15*time.Second)
	ex := calls.wait("CREATE", "exfil", map[string]string{"SENDER_IP": secExfilSender}, 5*time.Second)
	ns := calls.wait("CREATE", "new_server", map[string]string{"SERVER_IP": secNewServer}, 5*time.Second)
	nc := calls.wait("CREATE", "new_client", map[string]string{"SERVER_IP": secNewServer}, 5*time.Second)
	lap("4. blacklisted_ip, exfil, new_server, new_client")
	checkEnv(t, "blacklist", bl, map[string]string{
		"ALERT_TYPE": "blacklisted_ip", "SEVERITY": "6",
		"CLIENT_IP": secBlacklistClient, "CLIENT_BLACKLIST": "0", "CLIENT_TG": "1", "CLIENT_TG_NAME": "internal",
		"SERVER_IP": secBlacklisted, "SERVER_BLACKLIST": strconv.Itoa(secBlacklistID), "SERVER_BL_NAME": secBlacklistName,
		"SERVER_TG": "0", "PROTO": "6", "SERVER_PORT": "443", "CONNECTION_COUNT": "1", "TOTAL_PORTS": "0", "ADDITIONAL_PORTS": "=",
	}, "CLIENT_BL_NAME", "SERVER_TG_NAME", "OBJECT_TYPE", "THRESHOLD_VALUE")
	checkEnv(t, "exfil", ex, map[string]string{
		"ALERT_TYPE": "exfil", "SEVERITY": "4",
		"SENDER_IP": secExfilSender, "SENDER_TG": "1", "SENDER_TG_NAME": "internal", "SENDER_PORT": "51000",
		"RECEIVER_IP": secExfilReceiver, "RECEIVER_TG": "0", "RECEIVER_PORT": "443", "PROTO": "6",
		"BYTES_EXFILTRATED": "", "THRESHOLD_VALUE": "", "TOTAL_PORTS": "0", "ADDITIONAL_PORTS": "=",
	}, "RECEIVER_TG_NAME", "OBJECT_TYPE")
	if n := envFloat(t, "exfil", ex, "THRESHOLD_VALUE"); n != secExfilThreshold {
		t.Errorf("exfil: THRESHOLD_VALUE=%v, want %d", n, secExfilThreshold)
	}
	// The session record holds 5 MB of payload in 3,572 segments with 40
	// bytes of headers each, and 4 bare segments (SYN, ACK, FIN, ACK)
	// counted 46 bytes each by softflowd (Ethernet padding).
	if got, want := ex.env["BYTES_EXFILTRATED"], strconv.Itoa(5_000_000+3572*40+4*46); got != want {
		t.Errorf("exfil: BYTES_EXFILTRATED=%s, want the %s bytes of the session", got, want)
	}
	checkEnv(t, "new_server", ns, map[string]string{
		"ALERT_TYPE": "new_server", "SEVERITY": "3",
		"SERVER_IP": secNewServer, "SERVER_TG": "1", "SERVER_TG_NAME": "internal", "PROTO": "6", "SERVER_PORT": "8443",
	}, "CLIENT_IP", "OBJECT_TYPE")
	checkEnv(t, "new_client", nc, map[string]string{
		"ALERT_TYPE": "new_client", "SEVERITY": "2",
		"SERVER_IP": secNewServer, "SERVER_TG": "1", "SERVER_TG_NAME": "internal", "PROTO": "6", "SERVER_PORT": "8443",
		"CLIENT_IP": secNewClient,
	}, "OBJECT_TYPE")

	// 2. The NetFlow flood's alert ends after the quiet period; pmacct's
	// sFlow 1:10 export of the same flood then raises a new one. Its
	// 3,807 samples are below the threshold: it fires only because each
	// sample counts 10 packets.
	calls.wait("DELETE", "ddos_synflood", map[string]string{"ID": flood.env["ID"]}, 15*time.Second)
	lap("1. ddos_synflood DELETE after the quiet period")
	sendPayloads(t, filepath.Join(caps, "flow-exports/derived/pmacct-sflow-s10-synflood.pcap"), s.sflow)
	sampled := calls.wait("CREATE", "ddos_synflood", map[string]string{"TARGET_IP": "10.10.10.10"}, 15*time.Second, flood.env["ID"])
	lap("2. ddos_synflood over sFlow 1:10")
	checkDDoS(t, s, "sFlow 1:10 flood", sampled, 10)

	// 5. Nothing else was raised: not by the allow-listed scanner, not by
	// one family on another's traffic.
	calls.read()
	want := map[string]int{"ddos_synflood": 2, "scan": 1, "blacklisted_ip": 1, "exfil": 1, "new_server": 1, "new_client": 1}
	got := map[string]int{}
	for _, c := range calls.calls {
		if c.op == "CREATE" {
			got[c.env["ALERT_TYPE"]]++
		}
		if c.env["SCANNER_IP"] == secAllowedScanner {
			t.Errorf("the scanner of an allow-listed address raised a scan alert: %s %v", c.op, c.env)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("CREATEs per ALERT_TYPE %v, want %v; the plugin got:\n%s", got, want, calls.summary())
	}

	// The API and ftnbi list every alert created.
	ids := map[string]string{}
	for _, c := range []call{flood, sampled, scan, bl, ex, ns, nc} {
		ids[c.env["ID"]] = c.env["ALERT_TYPE"]
	}
	var listed []map[string]any
	s.authGet(t, "/api/v1/alerts", &listed)
	apiSeen := map[string]bool{}
	for _, a := range listed {
		apiSeen[fmt.Sprint(a["id"])] = true
		if typ, ok := ids[fmt.Sprint(a["id"])]; ok && a["alert_type"] != typ {
			t.Errorf("GET /api/v1/alerts: alert %v has alert_type %v, the plugin was told %s", a["id"], a["alert_type"], typ)
		}
	}
	ftnbi := filepath.Join(filepath.Dir(binary), "ftnbi")
	out, err := exec.Command(ftnbi, "-s", strings.TrimPrefix(s.base, "http://"), "-un", "admin", "-up", "s3cret-pass", "-alert", "-tn", "-3m", "-j").Output()
	if err != nil {
		t.Fatalf("ftnbi -alert: %v", err)
	}
	var ft []map[string]any
	if err := json.Unmarshal(out, &ft); err != nil {
		t.Fatalf("ftnbi printed no JSON array: %v\n%s", err, out)
	}
	ftSeen := map[string]map[string]any{}
	for _, a := range ft {
		ftSeen[fmt.Sprint(a["id"])] = a
	}
	for id, typ := range ids {
		if !apiSeen[id] {
			t.Errorf("GET /api/v1/alerts does not list %s alert %s", typ, id)
		}
		if a, ok := ftSeen[id]; !ok {
			t.Errorf("ftnbi -alert -tn -3m -j does not list %s alert %s", typ, id)
		} else if a["alert_type"] != typ {
			t.Errorf("ftnbi: alert %s has alert_type %v, want %s", id, a["alert_type"], typ)
		}
	}
	// The manual's JSON members of each type, lower-case names of the
	// variables, numbers as numbers; the names left out of the
	// environment are left out of the JSON too.
	members := []struct {
		c      call
		want   map[string]any
		absent []string
	}{
		{scan, map[string]any{"scanner_ip": "172.16.0.8", "scanner_tg": 1.0, "direction": "outbound", "unique_hosts": 1.0}, []string{"target_tg_name"}},
		{bl, map[string]any{"client_ip": secBlacklistClient, "client_blacklist": 0.0, "client_tg": 1.0, "server_ip": secBlacklisted,
			"server_blacklist": float64(secBlacklistID), "server_bl_name": secBlacklistName, "server_tg": 0.0, "server_port": 443.0,
			"connection_count": 1.0, "total_ports": 0.0}, []string{"client_bl_name", "server_tg_name"}},
		{ex, map[string]any{"sender_ip": secExfilSender, "sender_tg": 1.0, "sender_port": 51000.0, "receiver_ip": secExfilReceiver,
			"receiver_tg": 0.0, "receiver_port": 443.0, "bytes_exfiltrated": float64(5_000_000 + 3572*40 + 4*46),
			"threshold_value": float64(secExfilThreshold)}, []string{"receiver_tg_name"}},
		{ns, map[string]any{"server_ip": secNewServer, "server_tg": 1.0, "server_tg_name": "internal", "proto": 6.0, "server_port": 8443.0}, []string{"client_ip"}},
		{nc, map[string]any{"server_ip": secNewServer, "server_port": 8443.0, "client_ip": secNewClient}, nil},
	}
	for _, m := range members {
		a := ftSeen[m.c.env["ID"]]
		if a == nil {
			continue // reported above
		}
		for k, v := range m.want {
			if a[k] != v {
				t.Errorf("ftnbi: %s alert %s member %s=%#v, want %#v", m.c.env["ALERT_TYPE"], m.c.env["ID"], k, a[k], v)
			}
		}
		for _, k := range m.absent {
			if v, ok := a[k]; ok {
				t.Errorf("ftnbi: %s alert %s has member %s=%#v, absent from the environment", m.c.env["ALERT_TYPE"], m.c.env["ID"], k, v)
			}
		}
	}
	for _, k := range []string{"additional_ports"} {
		for _, c := range []call{bl, ex} {
			if v, ok := ftSeen[c.env["ID"]][k].([]any); !ok || len(v) != 0 {
				t.Errorf("ftnbi: %s alert %s member %s=%#v, want an empty array", c.env["ALERT_TYPE"], c.env["ID"], k, ftSeen[c.env["ID"]][k])
			}
		}
	}
	lap("API and ftnbi checked")
}
