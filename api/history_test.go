package api

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flowsentry/flowsentry/history"
	"github.com/flowsentry/flowsentry/model"
	"github.com/flowsentry/flowsentry/rates"
	"github.com/flowsentry/flowsentry/store"
)

// histStart is the first minute of the test history.
var histStart = time.Date(2026, 3, 14, 0, 0, 0, 0, time.UTC)

// newHistoryServer serves partitions 0 (groups 1, 2) and 5 (group 3) and a
// store holding two days of minutes of group 1 (packets_in avg = the
// minute's index, peak = 2 × it), of group 3, and of interface
// 192.0.2.1/3, to testUsers and viewer "g2" restricted to group 2.
func newHistoryServer(t *testing.T) *httptest.Server {
	t.Helper()
	m := threeGroups(t)
	ctx := context.Background()
	st, err := store.Open(ctx, t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	for i := range 2 * 24 * 60 {
		b := history.Batch{Time: histStart.Add(time.Duration(i) * time.Minute)}
		for _, k := range []rates.Key{
			{Kind: rates.KindGroup, Group: 1}, {Kind: rates.KindGroup, Group: 3},
			{Kind: rates.KindInterface, Exporter: netip.MustParseAddr("192.0.2.1"), IfIndex: 3},
		} {
			e := history.Entry{Key: k}
			e.Avg[rates.PacketsIn], e.Peak[rates.PacketsIn] = float32(i), float32(2*i)
			e.Avg[rates.BytesIn], e.Peak[rates.BytesIn] = 100, 200
			b.Entries = append(b.Entries, e)
		}
		if err := st.WriteHistory(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	log := slog.New(slog.DiscardHandler)
	reader := emptyReader(t, log)
	reg := prometheus.NewRegistry()
	s, err := New(DefaultConfig(), withAuth(t, Deps{
		Gatherer: reg, Registerer: reg,
		Model: model.NewHolder(m), Rates: func() *rates.Snapshot { return &rates.Snapshot{} }, Log: log,
		Alerting: &Alerting{Annotator: http.NotFoundHandler(), Reader: reader},
		History:  st,
	}, store.User{Name: "g2", Role: store.RoleViewer, CIDs: []uint32{0}, Groups: []uint32{2}}))
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.srv.Handler)
	t.Cleanup(ts.Close)
	return ts
}

func TestHistoryEndpoint(t *testing.T) {
	ts := newHistoryServer(t)
	day := "&from=2026-03-14T00:00:00Z&to=2026-03-15T00:00:00Z"
	tests := []struct {
		name, user, query string
		code              int
		// want checks a 200 answer.
		want func(t *testing.T, a historyAnswer)
		// errPart is in a 4xx answer's error.
		errPart string
	}{
		{name: "minutes", user: "viewer", query: "kind=group&id=1&counter=packets_in,bits_in&from=2026-03-14T01:00:00Z&to=2026-03-14T01:03:00Z", code: 200,
			want: func(t *testing.T, a historyAnswer) {
				if a.StepSeconds != 60 || len(a.T) != 3 || a.T[0] != histStart.Add(time.Hour).Unix() {
					t.Errorf("step %d, t %v; want 3 minutes from 01:00", a.StepSeconds, a.T)
				}
				if got := a.Avg["packets_in"]; len(got) != 3 || got[0] != 60 || got[2] != 62 {
					t.Errorf("packets_in avg %v; want [60 61 62]", got)
				}
				if got := a.Peak["bits_in"]; len(got) != 3 || got[0] != 1600 {
					t.Errorf("bits_in peak %v; want 1600 (200 B/s × 8)", got)
				}
				if _, ok := a.Avg["bytes_out"]; ok || a.Series.Name != "one" {
					t.Errorf("series %+v, counters %v: want group one, only the counters asked", a.Series, a.Avg)
				}
			}},
		{name: "a day downsampled to 5 minutes", user: "root", query: "kind=group&id=1&counter=packets_in" + day, code: 200,
			want: func(t *testing.T, a historyAnswer) {
				if a.StepSeconds != 300 || len(a.T) != 288 {
					t.Fatalf("step %d, %d points; want 300 s, 288", a.StepSeconds, len(a.T))
				}
				// Bucket 1 holds minutes 5..9: mean 7, highest peak 18.
				if a.Avg["packets_in"][1] != 7 || a.Peak["packets_in"][1] != 18 {
					t.Errorf("bucket 1: avg %g, peak %g; want 7, 18", a.Avg["packets_in"][1], a.Peak["packets_in"][1])
				}
			}},
		{name: "max_points", user: "root", query: "kind=group&id=1&max_points=24" + day, code: 200,
			want: func(t *testing.T, a historyAnswer) {
				if a.StepSeconds != 3600 || len(a.T) != 24 || len(a.Avg) != history.NumCounters {
					t.Errorf("step %d, %d points, %d counters; want 3600, 24, all", a.StepSeconds, len(a.T), len(a.Avg))
				}
			}},
		{name: "interface as admin", user: "root", query: "kind=interface&exporter=192.0.2.1&ifindex=3" + day, code: 200,
			want: func(t *testing.T, a historyAnswer) {
				if len(a.T) == 0 {
					t.Error("no points")
				}
			}},
		{name: "unknown series is empty", user: "root", query: "kind=group_port&id=1&proto=6&port=443" + day, code: 200,
			want: func(t *testing.T, a historyAnswer) {
				if len(a.T) != 0 {
					t.Errorf("%d points; want none", len(a.T))
				}
			}},
		{name: "no login", query: "kind=group&id=1", code: 401},
		{name: "other partition", user: "viewer", query: "kind=group&id=3", code: 404, errPart: "no traffic group 3"},
		{name: "other group of a restricted viewer", user: "g2", query: "kind=group&id=1", code: 404, errPart: "no traffic group 1"},
		{name: "manager of its partition", user: "mgr5", query: "kind=group&id=3" + day, code: 200,
			want: func(t *testing.T, a historyAnswer) {}},
		{name: "interface as viewer", user: "viewer", query: "kind=interface&exporter=192.0.2.1&ifindex=3", code: 403, errPart: "administrators"},
		{name: "bad kind", user: "root", query: "kind=host&id=1", code: 400, errPart: "kind"},
		{name: "bad id", user: "root", query: "kind=group&id=x", code: 400, errPart: "id="},
		{name: "bad port", user: "root", query: "kind=group_port&id=1&proto=6&port=70000", code: 400, errPart: "port="},
		{name: "bad exporter", user: "root", query: "kind=interface&exporter=nope&ifindex=1", code: 400, errPart: "exporter="},
		{name: "bad from", user: "root", query: "kind=group&id=1&from=yesterday", code: 400, errPart: "from="},
		{name: "from after to", user: "root", query: "kind=group&id=1&from=2026-03-15T00:00:00Z&to=2026-03-14T00:00:00Z", code: 400, errPart: "not before"},
		{name: "bad counter", user: "root", query: "kind=group&id=1&counter=packets_in,flows", code: 400, errPart: `"flows"`},
		{name: "bad max_points", user: "root", query: "kind=group&id=1&max_points=0", code: 400, errPart: "max_points"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest("GET", ts.URL+"/api/v1/history?"+tc.query, nil)
			if err != nil {
				t.Fatal(err)
			}
			if tc.user != "" {
				req.SetBasicAuth(tc.user, "pw")
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.code {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.code, body)
			}
			if tc.code != 200 {
				var e Error
				if err := json.Unmarshal(body, &e); err != nil || !strings.Contains(e.Error, tc.errPart) {
					t.Errorf("error %s; want JSON naming %q", body, tc.errPart)
				}
				return
			}
			var a historyAnswer
			if err := json.Unmarshal(body, &a); err != nil {
				t.Fatalf("answer %s: %v", body, err)
			}
			tc.want(t, a)
		})
	}
}
