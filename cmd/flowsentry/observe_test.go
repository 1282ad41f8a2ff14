package main

import (
	"encoding/json"
	"net/http"
	"net/netip"
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestTrafficMetricsDashboardAndHistory runs a server fed a NetFlow v9
// flood into the default traffic group through a named interface, until a
// threshold alert opens, and checks what an operator's monitoring sees:
// the traffic counters per traffic group and named interface on /metrics,
// every metric and label the shipped Grafana dashboard queries, and the
// per-minute rate history, still there after a restart.
func TestTrafficMetricsDashboardAndHistory(t *testing.T) {
	s := startServer(t, `interfaces:
  - {exporter: 127.0.0.1, ifindex: 1, name: uplink}
policies:
  - {id: 60, name: flood, cid: 0, family: threshold, target: traffic_groups, object_type: TGRP, threshold_type: packets_in, threshold: 100, severity: 6, actions: []}
`)
	stop := stallFlood(t, s.netflow, netip.MustParsePrefix("10.9.0.0/16"), 3)
	waitFor(t, func() bool {
		return s.metric(t, "flowsentry_alert_open", `type="threshold_exceeded"`, `severity="6"`) == 1
	}, "the flood's alert on flowsentry_alert_open", s)
	stop()

	for _, c := range []struct {
		name   string
		labels []string
	}{
		{"flowsentry_traffic_group_packets_total", []string{`traffic_group="internal"`, `partition="default"`, `direction="in"`}},
		{"flowsentry_traffic_group_bytes_total", []string{`traffic_group="internal"`, `direction="in"`}},
		{"flowsentry_traffic_group_new_connections_total", []string{`traffic_group="internal"`, `direction="in"`}},
		{"flowsentry_interface_packets_total", []string{`interface="uplink"`}},
		{"flowsentry_interface_bytes_total", []string{`interface="uplink"`}},
	} {
		if got := s.metric(t, c.name, c.labels...); got <= 0 {
			t.Errorf("%s%v = %v, want > 0", c.name, c.labels, got)
		}
	}
	exposition := s.metricsText(t)
	if regexp.MustCompile(`\d+\.\d+\.\d+\.\d+`).MatchString(grepLines(exposition, "flowsentry_traffic_group_", "flowsentry_interface_")) {
		t.Error("a traffic metric carries an address label")
	}
	checkDashboard(t, exposition)

	// The history: the minute in progress is written at the stop.
	s.term(t)
	s.launch(t)
	var h struct {
		T   []int64              `json:"t"`
		Avg map[string][]float64 `json:"avg"`
	}
	if code := s.getJSON(t, "/api/v1/history?kind=group&id=1&counter=packets_in", &h); code != http.StatusOK {
		t.Fatalf("history: HTTP %d", code)
	}
	if len(h.T) == 0 || len(h.Avg["packets_in"]) != len(h.T) || h.Avg["packets_in"][0] <= 0 {
		t.Errorf("history of the flooded group after a restart = %+v, want a minute with packets in", h)
	}
}

// metricsText returns the server's /metrics exposition.
func (s *server) metricsText(t *testing.T) string {
	t.Helper()
	code, body := s.send(t, "GET", "/metrics", "")
	if code != http.StatusOK {
		t.Fatalf("GET /metrics: HTTP %d", code)
	}
	return body
}

// grepLines returns the lines of text starting with any of prefixes.
func grepLines(text string, prefixes ...string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		for _, p := range prefixes {
			if strings.HasPrefix(l, p) {
				out = append(out, l)
			}
		}
	}
	return strings.Join(out, "\n")
}

// checkDashboard checks that every metric the Grafana dashboard of
// examples/grafana queries is exposed with every label it groups by or
// matches on.
func checkDashboard(t *testing.T, exposition string) {
	t.Helper()
	raw, err := os.ReadFile("../../examples/grafana/flowsentry.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Definition string `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("the dashboard is not valid JSON: %v", err)
	}
	var exprs []string
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	for _, v := range dash.Templating.List {
		exprs = append(exprs, v.Definition)
	}
	if len(exprs) < 10 {
		t.Fatalf("only %d queries in the dashboard", len(exprs))
	}
	metricRe := regexp.MustCompile(`flowsentry_[a-z_]+`)
	byRe := regexp.MustCompile(`by \(([^)]*)\)|([a-z_]+)=~?"|label_values\([^,]+, ([a-z_]+)\)`)
	for _, e := range exprs {
		names := metricRe.FindAllString(e, -1)
		if len(names) == 0 {
			t.Errorf("query %q reads no flowsentry metric", e)
		}
		for _, n := range names {
			samples := grepLines(exposition, n+"{", n+" ")
			if samples == "" {
				t.Errorf("query %q: %s is not exposed", e, n)
				continue
			}
			for _, m := range byRe.FindAllStringSubmatch(e, -1) {
				for _, l := range strings.Split(m[1]+","+m[2]+","+m[3], ",") {
					if l = strings.TrimSpace(l); l != "" && !strings.Contains(samples, l+`="`) {
						t.Errorf("query %q: %s has no label %s", e, n, l)
					}
				}
			}
		}
	}
}
