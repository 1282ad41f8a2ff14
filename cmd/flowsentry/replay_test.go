package main

import (
	"bufio"
	"encoding/json"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/flowsentry/flowsentry/internal/testcaptures"
)

// TestReplayAlerts replays a SYN flood through the detectors and the alert
// engine on the capture's clock: a packets-in policy of 1,000 pps opens an
// alert, and the replay ends it; the default templates (high floors, a
// baseline still warming up) stay quiet.
func TestReplayAlerts(t *testing.T) {
	capture := testcaptures.Path(t, "attacks/ddos/pkt.TCP.synflood.spoofed.pcap")
	policyFile := writeConfig(t, `policies:
  - id: 1
    name: flood
    cid: 0
    family: threshold
    target: traffic_groups
    object_type: TGRP
    threshold_type: packets_in
    threshold: 1000
    severity: 3
    actions: []
`)
	cases := []struct {
		name   string
		args   []string
		events string
	}{
		{"policy fires", []string{"--config", policyFile}, "CREATE UPDATE DELETE"},
		{"defaults stay quiet", nil, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := runBinary(t, append(append([]string{"replay"}, tc.args...), capture)...)
			if code != 0 {
				t.Fatalf("replay: %d %s", code, errOut)
			}
			var ops []string
			var ids []float64
			for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
				var v struct {
					Type  string         `json:"type"`
					Op    string         `json:"op"`
					Alert map[string]any `json:"alert"`
				}
				if err := json.Unmarshal([]byte(line), &v); err != nil {
					t.Fatalf("not a JSON line: %q", line)
				}
				if v.Type != "alert" {
					continue
				}
				ops = append(ops, v.Op)
				ids = append(ids, v.Alert["id"].(float64))
				if v.Alert["alert_type"] != "threshold_exceeded" || v.Alert["tgrp"] != float64(1) || v.Alert["threshold_value"] != float64(1000) {
					t.Errorf("alert event: %v", v.Alert)
				}
				if v.Op == "CREATE" && v.Alert["current_values"].(map[string]any)["packets_in"].(float64) <= 1000 {
					t.Errorf("CREATE below the threshold: %v", v.Alert["current_values"])
				}
			}
			if got := strings.Join(ops, " "); got != tc.events {
				t.Fatalf("alert events %q, want %q\n%s", got, tc.events, out)
			}
			for _, id := range ids {
				if id != ids[0] {
					t.Errorf("events of several alerts: %v", ids)
				}
			}
			if !strings.Contains(out, `"type":"summary","tgrp":1,"tgrp_name":"internal","cid":0,"flows":37669,"packets_in":37841`) {
				t.Errorf("summary missing or wrong:\n%s", out)
			}
		})
	}
}

// TestReplaySeveralFiles replays three captures weeks apart, in time
// order: the summary counts the packets of all three, though the rate
// objects of the first two expire as idle before the summary is taken.
func TestReplaySeveralFiles(t *testing.T) {
	files := []string{
		"attacks/ddos/amp.UDP.snmp.src161.pcapng",     // 2021-05-15
		"attacks/ddos/amp.TCP.reflection.SYNACK.pcap", // 2021-06-05
		"attacks/ddos/amp.UDP.isakmp.pcap",            // 2021-06-14
	}
	args := []string{"replay"}
	var want uint64
	for _, f := range files {
		args = append(args, testcaptures.Path(t, f))
		want += ipPacketsTo(t, f, defaultGroup)
	}
	out, errOut, code := runBinary(t, args...)
	if code != 0 {
		t.Fatalf("replay: %d %s", code, errOut)
	}
	var got uint64
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var v groupSummary
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Fatalf("not a JSON line: %q", line)
		}
		if v.Type == "summary" && v.TGrp == 1 {
			got = v.PacketsIn
		}
	}
	if got != want {
		t.Errorf("summary packets_in = %d, want %d (gopacket: IP packets to the traffic group)\n%s", got, want, out)
	}
}

// defaultGroup holds the CIDRs of the default traffic group.
var defaultGroup = []netip.Prefix{
	netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.168.0.0/16"), netip.MustParsePrefix("fc00::/7"),
}

// ipPacketsTo counts, with gopacket, the IP packets of a shared capture
// whose destination is in one of prefixes.
func ipPacketsTo(t *testing.T, rel string, prefixes []netip.Prefix) uint64 {
	t.Helper()
	frames, link := testcaptures.Frames(t, rel)
	var n uint64
	for _, f := range frames {
		nl := gopacket.NewPacket(f, link, gopacket.DecodeOptions{Lazy: true, NoCopy: true}).NetworkLayer()
		if nl == nil {
			continue
		}
		dst, ok := netip.AddrFromSlice(nl.NetworkFlow().Dst().Raw())
		if !ok {
			continue
		}
		for _, p := range prefixes {
			if p.Contains(dst.Unmap()) {
				n++
				break
			}
		}
	}
	return n
}

// floodConfig has a traffic group holding the victim and packets_in
// policies of 100 pps on the group (TGRP) and on its hosts (TGRP+IP).
const floodConfig = `traffic_groups:
  - id: 1
    name: victims
    partition: 0
    cidrs: [10.10.10.0/24]
policies:
  - id: 1
    name: group flood
    cid: 0
    family: threshold
    target: traffic_groups
    object_type: TGRP
    threshold_type: packets_in
    threshold: 100
    severity: 3
    actions: []
  - id: 2
    name: host flood
    cid: 0
    family: port_threshold
    target: traffic_groups
    object_type: TGRP+IP
    threshold_type: packets_in
    threshold: 100
    severity: 3
    actions: []
`

// burst is a stretch of a generated capture: pps one-packet TCP flows
// with the given flags, from sources spoofed addresses cycled through, to
// 10.10.10.10:80; background is one UDP packet every 100 ms from
// 203.0.113.1 to 10.10.10.20:53 (always below the threshold).
type burst struct {
	from, to time.Duration // after the capture's start
	pps      int           // 0 for background
	flags    uint8         // TCP flags of the flood
	sources  int
}

// TestReplayFloods replays generated captures holding floods of
// one-packet TCP flows: each raises its TGRP and TGRP+IP alerts within
// 10 s of capture time of its start, wherever it sits in the capture,
// with a peak rate close to the flood's.
func TestReplayFloods(t *testing.T) {
	const rst, syn = 0x04, 0x02
	cases := []struct {
		name   string
		bursts []burst
		flood  int // index of the flood in bursts
	}{
		{"RST flood in the last 15 s", []burst{
			{from: 0, to: 10 * time.Second},
			{from: 10 * time.Second, to: 25 * time.Second, pps: 7500, flags: rst, sources: 20000},
		}, 1},
		{"RST flood in the middle", []burst{
			{from: 0, to: 5 * time.Second},
			{from: 5 * time.Second, to: 20 * time.Second, pps: 7500, flags: rst, sources: 20000},
			{from: 20 * time.Second, to: 40 * time.Second},
		}, 1},
		{"SYN flood then background", []burst{
			{from: 0, to: 15 * time.Second, pps: 20000, flags: syn, sources: 65536},
			{from: 15 * time.Second, to: 23 * time.Second},
		}, 0},
	}
	config := writeConfig(t, floodConfig)
	start := time.Date(2024, 3, 1, 10, 0, 0, 250_000_000, time.UTC)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			capture := writeFloodCapture(t, start, tc.bursts)
			out, errOut, code := runBinary(t, "replay", "--config", config, capture)
			if code != 0 {
				t.Fatalf("replay: %d %s", code, errOut)
			}
			flood := tc.bursts[tc.flood]
			floodStart := float64(start.Add(flood.from).UnixNano()) / 1e9
			created := map[string]float64{} // object type → earliest_utc of the CREATE
			peak := map[string]float64{}    // object type → highest peak packets_in seen
			for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
				var v struct {
					Type  string `json:"type"`
					Op    string `json:"op"`
					Alert struct {
						ObjectType string             `json:"object_type"`
						IP         string             `json:"ip"`
						Earliest   float64            `json:"earliest_utc"`
						Peak       map[string]float64 `json:"peak_values"`
					} `json:"alert"`
				}
				if err := json.Unmarshal([]byte(line), &v); err != nil {
					t.Fatalf("not a JSON line: %q", line)
				}
				if v.Type != "alert" {
					continue
				}
				a := v.Alert
				if v.Op == "CREATE" {
					if _, dup := created[a.ObjectType]; dup {
						t.Errorf("a second %s alert: %s", a.ObjectType, line)
					}
					created[a.ObjectType] = a.Earliest
				}
				peak[a.ObjectType] = max(peak[a.ObjectType], a.Peak["packets_in"])
			}
			for _, typ := range []string{"TGRP", "TGRP+IP"} {
				at, ok := created[typ]
				if !ok {
					t.Errorf("no %s alert\n%s", typ, out)
					continue
				}
				if d := at - floodStart; d < -1 || d > 10 {
					t.Errorf("%s alert created %.1f s after the flood began, want within 10 s", typ, d)
				}
				if got, want := peak[typ], float64(flood.pps); got < 0.8*want || got > 1.2*want {
					t.Errorf("%s alert peak packets_in %.0f, want within 20%% of the flood's %.0f pps", typ, got, want)
				}
			}
		})
	}
}

// writeFloodCapture writes an Ethernet pcap of the bursts into a temporary
// folder and returns its path. The frames are built once with gopacket
// and then patched (source address and port) per packet.
func writeFloodCapture(t testing.TB, start time.Time, bursts []burst) string {
	t.Helper()
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{0, 1, 2, 3, 4, 5}, DstMAC: net.HardwareAddr{0, 1, 2, 3, 4, 6}, EthernetType: layers.EthernetTypeIPv4}
	frame := func(src, dst string, l4 gopacket.SerializableLayer, proto layers.IPProtocol) []byte {
		ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: proto, SrcIP: net.ParseIP(src).To4(), DstIP: net.ParseIP(dst).To4()}
		if err := l4.(interface {
			SetNetworkLayerForChecksum(gopacket.NetworkLayer) error
		}).SetNetworkLayerForChecksum(ip); err != nil {
			t.Fatal(err)
		}
		buf := gopacket.NewSerializeBuffer()
		if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, eth, ip, l4); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	background := frame("203.0.113.1", "10.10.10.20", &layers.UDP{SrcPort: 5353, DstPort: 53}, layers.IPProtocolUDP)
	path := filepath.Join(t.TempDir(), "flood.pcap")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	w := pcapgo.NewWriterNanos(bw)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	write := func(at time.Duration, data []byte) {
		ci := gopacket.CaptureInfo{Timestamp: start.Add(at), CaptureLength: len(data), Length: len(data)}
		if err := w.WritePacket(ci, data); err != nil {
			t.Fatal(err)
		}
	}
	for _, b := range bursts {
		if b.pps == 0 {
			for at := b.from; at < b.to; at += 100 * time.Millisecond {
				write(at, background)
			}
			continue
		}
		tcp := &layers.TCP{SrcPort: 1024, DstPort: 80, Window: 1024, SYN: b.flags&0x02 != 0, RST: b.flags&0x04 != 0}
		pkt := frame("198.18.0.0", "10.10.10.10", tcp, layers.IPProtocolTCP)
		step := time.Second / time.Duration(b.pps)
		n := 0
		for at := b.from; at < b.to; at += step {
			src := n % b.sources
			pkt[14+12], pkt[14+13], pkt[14+14], pkt[14+15] = 198, 18+byte(src>>16), byte(src>>8), byte(src)
			sport := 1024 + n%60000
			pkt[14+20], pkt[14+21] = byte(sport>>8), byte(sport)
			write(at, pkt)
			n++
		}
	}
	if err := bw.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}
