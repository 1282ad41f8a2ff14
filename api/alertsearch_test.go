package api

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flowsentry/flowsentry/alert"
	"github.com/flowsentry/flowsentry/alertindex"
	"github.com/flowsentry/flowsentry/model"
	"github.com/flowsentry/flowsentry/rates"
)

// newSearchServer serves a real SQLite store's alerts through a real
// index: alert 1 (partition 0, "Packets In", open for 10 minutes, on
// 10.1.2.3), alert 2 (partition 5, a blacklisted_ip alert of blacklist 3,
// ended after half a second) and alert 3 (partition 0, out of the last
// 24 hours).
func newSearchServer(t *testing.T) (*httptest.Server, PolicyRef) {
	t.Helper()
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	st, pm, pol := storeWithPolicies(t, log)
	now := time.Now()
	alerts := []*alert.Alert{
		{Policy: pol.ID, Key: "TGRP/1/10.1.2.3", Type: "threshold_exceeded", CID: 0, CIDName: "zero", Severity: 4,
			Earliest: now.Add(-10 * time.Minute), Latest: now,
			Fields: []alert.Field{{Name: "TGRP_NAME", Value: "one"}, {Name: "IP", Value: "10.1.2.3"},
				{Name: "THRESHOLD_TYPE", Value: "packets_in"}, {Name: "THRESHOLD_VALUE", Value: "5000.0", Number: true}},
			Cur: alert.Values{PacketsIn: 12400}},
		{Policy: 999, Key: "bl", Type: "blacklisted_ip", CID: 5, CIDName: "five", Severity: 7,
			Earliest: now.Add(-time.Hour), Latest: now.Add(-time.Hour), Ended: now.Add(-time.Hour + 500*time.Millisecond),
			Fields: []alert.Field{{Name: "CLIENT_IP", Value: "10.3.0.1"}, {Name: "CLIENT_BLACKLIST", Value: "3"},
				{Name: "SERVER_IP", Value: "192.0.2.1"}, {Name: "SERVER_BLACKLIST", Value: "0"}}},
		{Policy: pol.ID, Key: "old", Type: "threshold_exceeded", CID: 0, Severity: 4,
			Earliest: now.Add(-72 * time.Hour), Latest: now.Add(-71 * time.Hour), Ended: now.Add(-71 * time.Hour)},
	}
	if err := st.SaveAlerts(ctx, alerts); err != nil {
		t.Fatal(err)
	}
	idx, err := alertindex.New(alertindex.Config{}, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := idx.Load(ctx); err != nil {
		t.Fatal(err)
	}
	m, err := model.Build(model.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(DefaultConfig(), withAuth(t, Deps{
		Gatherer: prometheus.NewRegistry(), Registerer: prometheus.NewRegistry(),
		Model: model.NewHolder(m), Rates: func() *rates.Snapshot { return &rates.Snapshot{} }, Log: log,
		Alerting: &Alerting{
			Policies: pm, Annotator: http.NotFoundHandler(), Reader: emptyReader(t, log), Search: idx,
		},
	}))
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.srv.Handler)
	t.Cleanup(ts.Close)
	return ts, pol
}

func TestAlertSearch(t *testing.T) {
	ts, pol := newSearchServer(t)
	type result struct {
		Total  int                       `json:"total"`
		Alerts []alertindex.Hit          `json:"alerts"`
		Facets map[string]map[string]int `json:"facets"`
		Hist   alertindex.Histogram      `json:"histogram"`
	}
	search := func(t *testing.T, user, query string) result {
		var r result
		getJSON(t, ts, "/api/v1/alerts/search"+query, user, &r)
		return r
	}
	hitIDs := func(r result) []uint64 {
		var ids []uint64
		for _, h := range r.Alerts {
			ids = append(ids, h.ID)
		}
		return ids
	}
	for _, tc := range []struct {
		name, user, query string
		want              []uint64
		facet             string
		counts            map[string]int
	}{
		{"admin, last 24 h", "root", "", []uint64{1, 2}, "type", map[string]int{"threshold_exceeded": 1, "blacklisted_ip": 1}},
		{"viewer of partition 0", "viewer", "", []uint64{1}, "type", map[string]int{"threshold_exceeded": 1}},
		{"manager of partition 5", "mgr5", "", []uint64{2}, "blacklist", map[string]int{"3": 1}},
		{"severity, its facet unfiltered", "root", "?severity=7", []uint64{2}, "severity", map[string]int{"4": 1, "7": 1}},
		{"status", "root", "?status=none&status=running", []uint64{1, 2}, "status",
			map[string]int{"waiting": 0, "running": 0, "ended": 0, "none": 2}},
		{"type", "root", "?type=threshold_exceeded", []uint64{1}, "duration",
			map[string]int{"instant": 0, "seconds": 0, "minutes": 1, "hours": 0, "days": 0}},
		{"blacklist", "root", "?blacklist=3", []uint64{2}, "", nil},
		{"duration", "root", "?duration=instant", []uint64{2}, "type", map[string]int{"threshold_exceeded": 0, "blacklisted_ip": 1}},
		{"note none", "root", "?note=none", []uint64{1, 2}, "note", map[string]int{"none": 2}},
		{"cid", "root", "?cid=5", []uint64{2}, "cid", map[string]int{"0": 1, "5": 1}},
		{"q", "root", "?q=10.1.2", []uint64{1}, "", nil},
		{"sort severity", "root", "?sort=severity", []uint64{2, 1}, "", nil},
		{"range", "root", "?from=" + time.Now().Add(-100*time.Hour).UTC().Format(time.RFC3339) + "&limit=1&offset=2",
			[]uint64{3}, "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := search(t, tc.user, tc.query)
			if got := hitIDs(r); !slices.Equal(got, tc.want) {
				t.Errorf("alerts %v, want %v", got, tc.want)
			}
			if tc.facet != "" && !equalCounts(r.Facets[tc.facet], tc.counts) {
				t.Errorf("facet %s %v, want %v", tc.facet, r.Facets[tc.facet], tc.counts)
			}
		})
	}
	t.Run("row", func(t *testing.T) {
		r := search(t, "viewer", "?slices=24")
		h := r.Alerts[0]
		if h.Object != "10.1.2.3 in one" || h.Reason != "packets_in 12.4 k/s > 5 k/s" || h.Policy != alertindex.PolicyRef(pol) ||
			h.ActionStatus != "none" || h.Ended || h.DurationSeconds < 600 {
			t.Errorf("row %+v", h)
		}
		if len(r.Hist.T) != 24 || r.Hist.Step != 3600 || r.Hist.Types["threshold_exceeded"][23] != 1 || len(r.Hist.Types) != 1 {
			t.Errorf("histogram %+v", r.Hist)
		}
	})
}

func equalCounts(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestAlertSearchBadParameters(t *testing.T) {
	ts, _ := newSearchServer(t)
	for _, tc := range []struct{ query, want string }{
		{"?status=open", `status \"open\" is not one of waiting, running, ended, none`},
		{"?duration=weeks", "duration \\\"weeks\\\" is not one of instant, seconds, minutes, hours, days"},
		{"?sort=name", "sort \\\"name\\\" is not one of latest, earliest, severity"},
		{"?severity=high", "severity \\\"high\\\" is not an integer"},
		{"?limit=0", "limit \\\"0\\\" is not an integer from 1 to 1000"},
		{"?limit=1001", "limit \\\"1001\\\" is not an integer from 1 to 1000"},
		{"?slices=5000", "slices \\\"5000\\\" is not an integer from 1 to 1000"},
		{"?offset=-1", "offset"},
		{"?from=yesterday", "from \\\"yesterday\\\" is not an RFC 3339 time"},
		{"?from=2026-03-14T00:00:00Z&to=2026-03-13T00:00:00Z", "is not before to"},
		{"?note=ddos", "note \\\"ddos\\\" is neither"},
		{"?cid=x", "cid \\\"x\\\" is not an integer"},
		{"?limit=1&limit=2", "limit is given 2 times"},
		{"?colour=red", "unknown query parameter \\\"colour\\\""},
	} {
		t.Run(tc.query, func(t *testing.T) {
			exchange{method: "GET", path: "/api/v1/alerts/search" + tc.query, user: "root", code: 400,
				contains: []string{tc.want}}.run(t, ts)
		})
	}
}

func TestAlertNotes(t *testing.T) {
	ts, _ := newSearchServer(t)
	for _, tc := range []struct {
		name string
		e    exchange
	}{
		{"viewer writes on its partition", exchange{method: "POST", path: "/api/v1/alerts/1/notes", user: "viewer",
			body: `{"text": "SYN flood, see @DDoS and @ticket-12"}`, code: 201, contains: []string{`"@ticket-12"`, `"user": "viewer"`}}},
		{"not on another partition", exchange{method: "POST", path: "/api/v1/alerts/2/notes", user: "viewer",
			body: `{"text": "x"}`, code: 404, contains: []string{"no alert 2 that user viewer may see"}}},
		{"nor read it", exchange{method: "GET", path: "/api/v1/alerts/2/notes", user: "viewer", code: 404}},
		{"unknown alert", exchange{method: "POST", path: "/api/v1/alerts/99/notes", user: "root", body: `{"text": "x"}`, code: 404}},
		{"empty text", exchange{method: "POST", path: "/api/v1/alerts/1/notes", user: "root", body: `{"text": ""}`, code: 400,
			contains: []string{"text: the note text has 0 characters: write 1 to 4000"}}},
		{"too long", exchange{method: "POST", path: "/api/v1/alerts/1/notes", user: "root",
			body: `{"text": "` + strings.Repeat("a", 4001) + `"}`, code: 400, contains: []string{"4001 characters"}}},
		{"unknown field", exchange{method: "POST", path: "/api/v1/alerts/1/notes", user: "root", body: `{"txt": "a"}`, code: 400}},
		{"bad id", exchange{method: "GET", path: "/api/v1/alerts/x/notes", user: "root", code: 400}},
		{"list", exchange{method: "GET", path: "/api/v1/alerts/1/notes", user: "mgr5", code: 404}},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.e.run(t, ts) })
	}
	var notes []alertindex.Note
	getJSON(t, ts, "/api/v1/alerts/1/notes", "root", &notes)
	if len(notes) != 1 || notes[0].Text != "SYN flood, see @DDoS and @ticket-12" {
		t.Fatalf("notes %+v", notes)
	}
	// The index has the tags at once.
	var r struct {
		Alerts []alertindex.Hit          `json:"alerts"`
		Facets map[string]map[string]int `json:"facets"`
	}
	getJSON(t, ts, "/api/v1/alerts/search?note=@ticket-12", "root", &r)
	if len(r.Alerts) != 1 || r.Alerts[0].ID != 1 || r.Alerts[0].Notes != 1 || !equalCounts(r.Facets["note"], map[string]int{"none": 1, "@ddos": 1, "@ticket-12": 1}) {
		t.Errorf("search by tag: %+v", r)
	}
}
