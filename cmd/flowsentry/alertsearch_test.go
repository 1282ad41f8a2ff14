package main

import (
	"net/http"
	"net/netip"
	"strconv"
	"testing"
)

// searchResult is the part of GET /api/v1/alerts/search the test reads.
type searchResult struct {
	Total  int `json:"total"`
	Alerts []struct {
		ID     uint64   `json:"id"`
		Type   string   `json:"type"`
		Object string   `json:"object"`
		Tags   []string `json:"tags"`
		Policy struct {
			Name string `json:"name"`
		} `json:"policy"`
	} `json:"alerts"`
	Facets    map[string]map[string]int `json:"facets"`
	Histogram struct {
		Types map[string][]int `json:"types"`
	} `json:"histogram"`
}

// TestAlertSearchServe runs the real server: a NetFlow flood raises a
// threshold alert, the search finds it with its facets and histogram, a
// note's @tag filters it, and all of it survives a restart.
func TestAlertSearchServe(t *testing.T) {
	s := startServer(t, `policies:
  - {id: 61, name: flood, cid: 0, family: threshold, target: traffic_groups, object_type: TGRP, threshold_type: packets_in, threshold: 100, severity: 6, actions: []}
`)
	stop := stallFlood(t, s.netflow, netip.MustParsePrefix("10.9.0.0/16"), 5)
	var r searchResult
	waitFor(t, func() bool {
		return s.getJSON(t, "/api/v1/alerts/search?type=threshold_exceeded", &r) == http.StatusOK && r.Total == 1
	}, "the flood's alert in the search", s)
	stop()
	a := r.Alerts[0]
	if a.Type != "threshold_exceeded" || a.Policy.Name != "flood" || a.Object == "" {
		t.Errorf("alert %+v", a)
	}
	if r.Facets["severity"]["6"] != 1 || r.Facets["status"]["none"] != 1 || r.Facets["note"]["none"] != 1 {
		t.Errorf("facets %v", r.Facets)
	}
	if h := r.Histogram.Types["threshold_exceeded"]; len(h) != 120 || h[119] != 1 {
		t.Errorf("histogram %v", r.Histogram.Types)
	}
	id := a.ID
	code, body := s.send(t, "POST", "/api/v1/alerts/"+strconv.FormatUint(id, 10)+"/notes", `{"text": "flood from the lab, @Lab-Test"}`)
	if code != http.StatusCreated {
		t.Fatalf("POST note: HTTP %d: %s", code, body)
	}
	check := func(when string) {
		var r searchResult
		if code := s.getJSON(t, "/api/v1/alerts/search?note=@lab-test", &r); code != http.StatusOK || r.Total != 1 || r.Alerts[0].ID != id ||
			len(r.Alerts[0].Tags) != 1 || r.Alerts[0].Tags[0] != "@lab-test" || r.Facets["note"]["@lab-test"] != 1 {
			t.Errorf("%s: search by tag: HTTP %d, %+v", when, code, r)
		}
		if code := s.getJSON(t, "/api/v1/alerts/search?note=none", &r); code != http.StatusOK || r.Total != 0 {
			t.Errorf("%s: alerts without notes: HTTP %d, %+v", when, code, r)
		}
	}
	check("after the note")
	s.term(t)
	s.launch(t)
	check("after a restart")
}
