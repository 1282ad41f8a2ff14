package main

import (
	"encoding/json"
	"net/netip"
	"strings"
	"testing"

	"github.com/gopacket/gopacket"

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
