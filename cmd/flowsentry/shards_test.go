package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/flowsentry/flowsentry/internal/testcaptures"
)

// shardsConfig is the configuration of TestReplayShardsAgree with
// pipeline.shards set to n (on line 2): nested and overlapping traffic
// groups holding both sides of the captures' traffic — so that a record's
// two sides often belong to different shards and the hosts of a group are
// spread over them — and packets-in policies on the groups (1 pps) and on
// their hosts (0.1 pps) that fire on every capture.
func shardsConfig(n int) string {
	return fmt.Sprintf(`pipeline:
  shards: %d
traffic_groups:
  - id: 1
    name: victims
    partition: 0
    cidrs: [10.10.10.0/24, 172.16.0.0/12]
  - id: 2
    name: ten
    partition: 0
    cidrs: [10.0.0.0/8, 64.13.134.0/24]
  - id: 3
    name: low half
    partition: 0
    cidrs: [0.0.0.0/1]
  - id: 4
    name: v6
    partition: 0
    cidrs: ["2000::/3"]
  - id: 5
    name: v6 sites
    partition: 0
    cidrs: ["2a02:a90:4007::/48", "2001:4d98:a100:200::/56"]
policies:
  - id: 1
    name: group flood
    cid: 0
    family: threshold
    target: traffic_groups
    object_type: TGRP
    threshold_type: packets_in
    threshold: 1
    severity: 3
    actions: []
  - id: 2
    name: host flood
    cid: 0
    family: port_threshold
    target: traffic_groups
    object_type: TGRP+IP
    threshold_type: packets_in
    threshold: 0.1
    severity: 3
    actions: []
`, n)
}

// shardedReplay is what TestReplayShardsAgree compares of a replay.
type shardedReplay struct {
	// Summary holds the summary lines by traffic group.
	Summary map[uint32]groupSummary
	// Alerts holds the events of each alert, in the order printed, by the
	// alert's identity (see alertIdentity). The alert engine orders the
	// alerts of a tick by policy and object, so IDs do not depend on the
	// order the shards report them in, and are compared too.
	Alerts map[string][]alertEvent
	// Lines are the alert lines as printed, in order.
	Lines []string
}

// alertEvent is an alert line; the alert's members keep their numbers as
// printed (json.Number).
type alertEvent struct {
	Op    string
	Alert map[string]any
}

// parseShardedReplay reads replay's output.
func parseShardedReplay(t *testing.T, out string) shardedReplay {
	t.Helper()
	res := shardedReplay{Summary: map[uint32]groupSummary{}, Alerts: map[string][]alertEvent{}}
	byID := map[json.Number][]alertEvent{}
	var ids []json.Number // in order of first event
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var v struct {
			groupSummary
			Op    string         `json:"op"`
			Alert map[string]any `json:"alert"`
		}
		d := json.NewDecoder(strings.NewReader(line))
		d.UseNumber()
		if err := d.Decode(&v); err != nil {
			t.Fatalf("not a JSON line: %q: %v", line, err)
		}
		switch v.Type {
		case "summary":
			res.Summary[v.TGrp] = v.groupSummary
		case "alert":
			id, ok := v.Alert["id"].(json.Number)
			if !ok {
				t.Fatalf("alert without a numeric id: %q", line)
			}
			res.Lines = append(res.Lines, line)
			if byID[id] == nil {
				ids = append(ids, id)
			}
			byID[id] = append(byID[id], alertEvent{Op: v.Op, Alert: v.Alert})
		}
	}
	for _, id := range ids {
		events := byID[id]
		key := alertIdentity(events[0].Alert)
		for n := 2; res.Alerts[key] != nil; n++ {
			key = fmt.Sprintf("%s #%d", alertIdentity(events[0].Alert), n)
		}
		res.Alerts[key] = events
	}
	return res
}

// alertIdentity names an alert by the members of its first event that are
// neither times nor values: its type, policy threshold and object (group,
// address...), and when it began.
func alertIdentity(a map[string]any) string {
	var parts []string
	for k, v := range a {
		switch k {
		case "latest_utc", "current_values", "peak_values", "average_values":
			continue
		}
		parts = append(parts, fmt.Sprintf("%s=%v", k, v))
	}
	slices.Sort(parts)
	return strings.Join(parts, " ")
}

// TestReplayShardsAgree replays captures with 1, 2, 3 and 7 shards: the
// totals of every traffic group and every alert event (its times, values
// and peaks) are the same whatever the number of shards, since traffic
// groups are merged exactly at each tick and a host is counted whole by
// its shard. A shard count above 64 is refused with the file and line.
func TestReplayShardsAgree(t *testing.T) {
	agree := []int{1, 2, 3, 7}
	cases := []struct {
		name    string
		capture string   // relative to the shared captures
		shards  []int    // pipeline.shards of each replay; the first is the reference
		groups  []uint32 // groups with traffic, a TGRP and a TGRP+IP alert in the reference
		errs    []string // when set, each replay fails with all of these on stderr
	}{
		{name: "SYN flood from spoofed sources", capture: "attacks/ddos/pkt.TCP.synflood.spoofed.pcap",
			shards: agree, groups: []uint32{1, 2, 3}},
		{name: "nmap SYN scan", capture: "attacks/scans/synscan.pcap",
			shards: agree, groups: []uint32{1, 2, 3}},
		{name: "SYN host sweep", capture: "attacks/scans/hs-tcp_synPingSweepRand.pcapng",
			shards: agree, groups: []uint32{2, 3}},
		{name: "DNS amplification with IPv6 background", capture: "attacks/ddos/amp.dns.RRSIG.fragmented.pcap",
			shards: agree, groups: []uint32{1, 2, 3, 4}},
		{name: "IPFIX export of the DNS amplification", capture: "flow-exports/derived/softflowd-ipfix-dns-rrsig-amp.pcap",
			shards: agree, groups: []uint32{1, 2, 3, 4}},
		{name: "NetFlow v9 export of the nmap SYN scan", capture: "flow-exports/derived/softflowd-v9-nmap-synscan.pcap",
			shards: agree, groups: []uint32{2, 3}},
		{name: "sFlow export of the SYN flood sampled 1 in 10", capture: "flow-exports/derived/pmacct-sflow-s10-synflood.pcap",
			shards: agree, groups: []uint32{1, 2, 3}},
		{name: "IPFIX of IPv6 flows", capture: "flow-exports/vendor/pmacct-ta-111-ipfix-cisco-ipv6.pcap",
			shards: agree, groups: []uint32{4, 5}},
		{name: "65 shards refused", capture: "attacks/scans/synscan.pcap",
			shards: []int{65}, errs: []string{"flowsentry.yaml:2:", "pipeline.shards", "65 is not valid", "1 to 64"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			capture := testcaptures.Path(t, tc.capture)
			var want shardedReplay
			for i, n := range tc.shards {
				out, errOut, code := runBinary(t, "replay", "--config", writeConfig(t, shardsConfig(n)), capture)
				if tc.errs != nil {
					if code != 1 {
						t.Fatalf("shards %d: exit code %d, want 1\nstdout: %s\nstderr: %s", n, code, out, errOut)
					}
					for _, s := range tc.errs {
						if !strings.Contains(errOut, s) {
							t.Errorf("shards %d: stderr lacks %q:\n%s", n, s, errOut)
						}
					}
					continue
				}
				if code != 0 {
					t.Fatalf("shards %d: replay exit code %d\n%s", n, code, errOut)
				}
				got := parseShardedReplay(t, out)
				if i == 0 {
					checkReference(t, got, tc.groups)
					want = got
					continue
				}
				if diff := cmp.Diff(got.Summary, want.Summary); diff != "" {
					t.Errorf("shards %d: summary lines differ from shards %d (-got, +want):\n%s", n, tc.shards[0], diff)
				}
				if diff := cmp.Diff(got.Alerts, want.Alerts); diff != "" {
					t.Errorf("shards %d: alert events differ from shards %d (-got, +want):\n%s", n, tc.shards[0], diff)
				}
				if diff := cmp.Diff(got.Lines, want.Lines); diff != "" {
					t.Errorf("shards %d: alert lines (IDs, order) differ from shards %d (-got, +want):\n%s", n, tc.shards[0], diff)
				}
			}
		})
	}
}

// checkReference fails unless each of groups has traffic and a CREATE for
// both a TGRP and a TGRP+IP alert, so that the comparison is not between
// empty outputs.
func checkReference(t *testing.T, r shardedReplay, groups []uint32) {
	t.Helper()
	created := map[string]bool{} // "TGRP 1", "TGRP+IP 1", ...
	for key, events := range r.Alerts {
		if events[0].Op != "CREATE" {
			t.Errorf("alert %s: the first event is %s", key, events[0].Op)
			continue
		}
		created[fmt.Sprint(events[0].Alert["object_type"], " ", events[0].Alert["tgrp"])] = true
	}
	for _, g := range groups {
		s := r.Summary[g]
		if s.Flows == 0 || s.PacketsIn+s.PacketsOut == 0 {
			t.Errorf("traffic group %d has no traffic in the reference replay: %+v", g, s)
		}
		for _, typ := range []string{"TGRP", "TGRP+IP"} {
			if !created[fmt.Sprint(typ, " ", g)] {
				t.Errorf("no %s alert on traffic group %d in the reference replay", typ, g)
			}
		}
	}
}
