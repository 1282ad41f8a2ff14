package annotate

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/flowsentry/flowsentry/alert"
)

// manualExample returns the JSON the alerting manual prints for
// `ftnbi -alert -j`, found in shared/reference next to the repository.
func manualExample(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		text, err := os.ReadFile(filepath.Join(dir, "shared", "reference", "flowtraq-alerting.txt"))
		if err == nil {
			s := string(text)
			_, after, ok := strings.Cut(s, "The output of this command will look similar to this:")
			start, end := strings.Index(after, "["), strings.Index(after, "\n    ]\n")
			if !ok || start < 0 || end < start {
				t.Fatal("the example output of ftnbi -alert -j is not in flowtraq-alerting.txt")
			}
			return after[start : end+len("\n    ]")]
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("shared/reference/flowtraq-alerting.txt not found above the package folder; check out the shared folder next to the repository (X/main, X/shared)")
		}
		dir = parent
	}
}

// ddosSlow is the alert of the manual's example.
func ddosSlow() alert.Alert {
	at := time.UnixMicro(1449177843491220)
	v := alert.Values{PacketsIn: 3.5, PacketsOut: 6.25, BytesIn: 4361.75, BytesOut: 1857.25, NewConn: 0.25}
	return alert.Alert{
		ID: 1004, CID: 0, Severity: 3, Type: "ddos_slow",
		Earliest: at, Latest: at,
		Fields: []alert.Field{
			{Name: "TARGET_IP", Value: "10.2.0.25"},
			{Name: "TARGET_MASK", Value: "0", Number: true},
			{Name: "TARGET_TG", Value: "1", Number: true},
			{Name: "PROTO", Value: "6", Number: true},
			{Name: "SERVER_PORT", Value: "62160", Number: true},
			{Name: "SOURCES", IsList: true, List: []string{"23.32.0.0/12", "52.0.0.0/8", "54.0.0.0/9", "107.21.128.0/17", "54.163.240.0/24", "54.192.48.0/24", "23.72.0.0/13", "17.128.0.0/9"}},
			{Name: "TOTAL_SOURCES", Value: "32690", Number: true},
			{Name: "THRESHOLD_VALUE", Value: "100", Number: true},
		},
		Cur: v, Peak: v, Avg: v,
	}
}

// TestManualExample checks the JSON of the manual's ddos_slow alert
// against the manual's text, member for member and literal for literal
// (1449177843.491220, 100.00, 3.50), ignoring white space.
func TestManualExample(t *testing.T) {
	got, err := json.Marshal([]Alert{Alert(ddosSlow())})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(got), compact(t, manualExample(t))); diff != "" {
		t.Errorf("JSON (-got +want):\n%s", diff)
	}
}

func TestAlertJSON(t *testing.T) {
	at := time.Date(2024, 1, 2, 3, 4, 5, 6000, time.UTC)
	cases := []struct {
		name string
		a    alert.Alert
		want string
	}{
		{
			name: "threshold on TGRP+IP with uniq counters",
			a: alert.Alert{
				ID: 7, CID: 2, Severity: 12, Type: "threshold_exceeded", Earliest: at, Latest: at.Add(90 * time.Second), Uniq: true,
				Fields: []alert.Field{
					{Name: "OBJECT_TYPE", Value: "TGRP+IP"},
					{Name: "THRESHOLD_TYPE", Value: "uniq_remote_cidr"},
					{Name: "THRESHOLD_VALUE", Value: "25.126", Number: true},
					{Name: "TGRP", Value: "3", Number: true},
					{Name: "TGRP_NAME", Value: `DMZ "east"`},
					{Name: "IP", Value: "2001:db8::1"},
				},
				Cur:  alert.Values{PacketsIn: 1, UniqLocalEndpoint: 2.5, UniqRemoteCIDR: 30},
				Peak: alert.Values{BytesIn: 1.005},
			},
			want: `{"version":1,"earliest_utc":1704164645.000006,"latest_utc":1704164735.000006,"id":7,"CID":2,"severity":12,` +
				`"alert_type":"threshold_exceeded","object_type":"TGRP+IP","threshold_type":"uniq_remote_cidr","tgrp":3,` +
				`"tgrp_name":"DMZ \"east\"","ip":"2001:db8::1","threshold_value":25.13,` +
				`"current_values":{"packets_in":1.00,"packets_out":0.00,"bytes_in":0.00,"bytes_out":0.00,"new_conn":0.00,"uniq_local_endpoint":2.50,"uniq_remote_cidr":30.00},` +
				`"peak_values":{"packets_in":0.00,"packets_out":0.00,"bytes_in":1.00,"bytes_out":0.00,"new_conn":0.00,"uniq_local_endpoint":0.00,"uniq_remote_cidr":0.00},` +
				`"average_values":{"packets_in":0.00,"packets_out":0.00,"bytes_in":0.00,"bytes_out":0.00,"new_conn":0.00,"uniq_local_endpoint":0.00,"uniq_remote_cidr":0.00}}`,
		},
		{
			name: "numeric list, empty list, odd values",
			a: alert.Alert{
				ID: 8, Type: "blacklisted_ip", Earliest: at, Latest: at,
				Fields: []alert.Field{
					{Name: "ADDITIONAL_PORTS", IsList: true, List: []string{"22", "443"}, Number: true},
					{Name: "SOURCES", IsList: true},
					{Name: "PROTO", Value: "tcp", Number: true},
					{Name: "ID", Value: "99"},
					{Name: "THRESHOLD_VALUE", Value: "high"},
				},
				Cur: alert.Values{PacketsIn: inf()},
			},
			want: `{"version":1,"earliest_utc":1704164645.000006,"latest_utc":1704164645.000006,"id":8,"CID":0,"severity":0,` +
				`"alert_type":"blacklisted_ip","additional_ports":[22,443],"sources":[],"proto":"tcp","threshold_value":"high",` +
				`"current_values":{"packets_in":null,"packets_out":0.00,"bytes_in":0.00,"bytes_out":0.00,"new_conn":0.00},` +
				`"peak_values":{"packets_in":0.00,"packets_out":0.00,"bytes_in":0.00,"bytes_out":0.00,"new_conn":0.00},` +
				`"average_values":{"packets_in":0.00,"packets_out":0.00,"bytes_in":0.00,"bytes_out":0.00,"new_conn":0.00}}`,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Alert(tc.a).MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			if !json.Valid(got) {
				t.Fatalf("invalid JSON: %s", got)
			}
			if diff := cmp.Diff(string(got), tc.want); diff != "" {
				t.Errorf("JSON (-got +want):\n%s", diff)
			}
		})
	}
}

func inf() float64 { return 1 / zero }

var zero = 0.0

// readerFixture is a Reader over three alerts in partitions 1 and 2, and
// the users that read them.
func readerFixture(t *testing.T) (*Reader, *AlertList, *MemoryStore) {
	t.Helper()
	mk := func(id uint64, cid uint32, earliest time.Time, ended bool) alert.Alert {
		a := ddosSlow()
		a.ID, a.CID, a.Earliest, a.Latest = id, cid, earliest, earliest.Add(time.Minute)
		if ended {
			a.Ended = earliest.Add(11 * time.Minute)
		}
		return a
	}
	alerts := NewAlertList(
		mk(1, 1, t0, true),
		mk(2, 2, t0.Add(time.Hour), false),
		mk(3, 1, t0.Add(2*time.Hour), false),
	)
	values := &MemoryStore{}
	r, err := NewReader(ReaderDeps{
		Alerts: alerts,
		Users: StaticUsers{
			"admin":  {Password: "a", Admin: true},
			"viewer": {Password: "v", CIDs: []uint32{1}},
			"g1":     {Password: "g", CIDs: []uint32{1}, Groups: []uint32{1}},
			"g9":     {Password: "g", CIDs: []uint32{1}, Groups: []uint32{9}},
			"nobody": {Password: "n"},
		},
		Values:  values,
		Actions: StaticActions{3: {{ID: 10, Plugin: "ddos"}, {ID: 11, Plugin: "mail"}}},
		Graphs: StaticGraphs{"ddos": {
			Containers: []string{"Volume (Packets)", "Volume (Bytes)"},
			Fields: []UpdateField{
				{Label: "UDP Egress Packets", Key: "udp_egress_packets", Container: "Volume (Packets)", Record: "always"},
				{Label: "TCP Total Dropped", Key: "tcp_total_drop", Container: "Volume (Packets)"},
				{Label: "IPv4 Bytes Received", Key: "ip_rcv", Container: "Volume (Bytes)"},
			},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return r, alerts, values
}

// ids returns the "id" members of a JSON array of alerts.
func ids(t *testing.T, body string) []uint64 {
	t.Helper()
	var list []struct{ ID uint64 }
	if err := json.Unmarshal([]byte(body), &list); err != nil {
		t.Fatalf("not a JSON array of alerts: %v: %s", err, body)
	}
	out := []uint64{}
	for _, a := range list {
		out = append(out, a.ID)
	}
	return out
}

func TestReaderAlerts(t *testing.T) {
	cases := []struct {
		name      string
		user      string // "name:password"; "" for none
		query     string
		wantCode  int
		wantIDs   []uint64
		wantError string
		wantQuery alert.Query
	}{
		{name: "admin sees every partition", user: "admin:a", wantCode: 200, wantIDs: []uint64{3, 2, 1}},
		{name: "viewer sees its partition", user: "viewer:v", wantCode: 200, wantIDs: []uint64{3, 1}, wantQuery: alert.Query{CIDs: []uint32{1}}},
		{name: "viewer of the alerts' traffic group", user: "g1:g", wantCode: 200, wantIDs: []uint64{3, 1}, wantQuery: alert.Query{CIDs: []uint32{1}}},
		{name: "viewer of another traffic group", user: "g9:g", wantCode: 200, wantIDs: []uint64{}, wantQuery: alert.Query{CIDs: []uint32{1}}},
		{
			name: "created since", user: "admin:a", query: "?created_since=2015-12-03T22:00:00Z", wantCode: 200, wantIDs: []uint64{3, 2},
			wantQuery: alert.Query{CreatedSince: time.Date(2015, 12, 3, 22, 0, 0, 0, time.UTC)},
		},
		{
			name: "active since", user: "viewer:v", query: "?active_since=2015-12-04T00:00:00.5%2B01:00", wantCode: 200, wantIDs: []uint64{3},
			wantQuery: alert.Query{ActiveSince: time.Date(2015, 12, 3, 23, 0, 0, 5e8, time.UTC), CIDs: []uint32{1}},
		},
		{name: "no credentials", wantCode: 401, wantError: "authentication required: give a flowsentry user and password with HTTP basic authentication (ftnbi -un USER -up PASS)"},
		{name: "wrong password", user: "viewer:x", wantCode: 401, wantError: `user "viewer" is unknown or the password is wrong: check the user name and password (ftnbi -un USER -up PASS)`},
		{name: "unknown user", user: "ghost:x", wantCode: 401, wantError: `user "ghost" is unknown or the password is wrong: check the user name and password (ftnbi -un USER -up PASS)`},
		{name: "user without partition", user: "nobody:n", wantCode: 403, wantError: `user "nobody" is bound to no partition and may see no alert: ask an administrator to bind it to a partition`},
		{name: "bad time", user: "admin:a", query: "?created_since=-3m", wantCode: 400, wantError: `created_since="-3m" is not an RFC 3339 time: write e.g. 2015-12-03T21:24:03Z`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, alerts, _ := readerFixture(t)
			req := httptest.NewRequest("GET", "/api/v1/alerts"+tc.query, nil)
			if name, pass, ok := strings.Cut(tc.user, ":"); ok {
				req.SetBasicAuth(name, pass)
			}
			rec := httptest.NewRecorder()
			r.Alerts(rec, req)
			if rec.Code != tc.wantCode {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.wantCode, rec.Body)
			}
			if tc.wantError != "" {
				var e ErrorBody
				if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(e.Error, tc.wantError); diff != "" {
					t.Errorf("error (-got +want):\n%s", diff)
				}
				if tc.wantCode == 401 && rec.Header().Get("WWW-Authenticate") == "" {
					t.Error("401 without WWW-Authenticate")
				}
				return
			}
			if diff := cmp.Diff(ids(t, rec.Body.String()), tc.wantIDs); diff != "" {
				t.Errorf("alert IDs (-got +want):\n%s", diff)
			}
			if diff := cmp.Diff(alerts.Last(), tc.wantQuery); diff != "" {
				t.Errorf("query (-got +want):\n%s", diff)
			}
		})
	}
}

// failingAlerts is an AlertSource whose database is down.
type failingAlerts struct{}

func (failingAlerts) Alerts(context.Context, alert.Query) ([]alert.Alert, error) {
	return nil, errors.New("database is locked")
}

func TestReaderFailures(t *testing.T) {
	r, _, _ := readerFixture(t)
	r.deps.Alerts = failingAlerts{}
	req := httptest.NewRequest("GET", "/api/v1/alerts", nil)
	req.SetBasicAuth("admin", "a")
	rec := httptest.NewRecorder()
	r.Alerts(rec, req)
	if rec.Code != http.StatusInternalServerError || !strings.Contains(rec.Body.String(), "the alerts could not be read (server error, see its log); try again") {
		t.Errorf("alerts: %d %s", rec.Code, rec.Body)
	}

	r, _, values := readerFixture(t)
	values.Fail = errors.New("database is locked")
	req = httptest.NewRequest("GET", "/api/v1/alerts/3/annotations", nil)
	req.SetPathValue("id", "3")
	req.SetBasicAuth("admin", "a")
	rec = httptest.NewRecorder()
	r.Annotations(rec, req)
	if rec.Code != http.StatusInternalServerError || !strings.Contains(rec.Body.String(), "the annotations could not be read (server error, see its log); try again") {
		t.Errorf("annotations: %d %s", rec.Code, rec.Body)
	}

	if _, err := NewReader(ReaderDeps{}); err == nil {
		t.Error("NewReader without dependencies succeeded")
	}
}

func TestReaderAnnotations(t *testing.T) {
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	stored := []Value{
		{Alert: 3, Action: 10, Key: "ip_rcv", Value: 300, Time: at(120)},
		{Alert: 3, Action: 10, Key: "tcp_total_drop", Value: 5, Time: at(60)},
		{Alert: 3, Action: 10, Key: "ip_rcv", Value: 100, Time: at(60)},
		{Alert: 3, Action: 10, Key: "custom", Value: 9, Time: at(120)},
		{Alert: 3, Action: 12, Key: "orphan", Value: 1, Time: at(30)},
		{Alert: 1, Action: 1, Key: "other_alert", Value: 1, Time: at(30)},
	}
	ddosGraph := []UpdateField{
		{Label: "UDP Egress Packets", Key: "udp_egress_packets", Container: "Volume (Packets)", Record: "always"},
		{Label: "TCP Total Dropped", Key: "tcp_total_drop", Container: "Volume (Packets)"},
		{Label: "IPv4 Bytes Received", Key: "ip_rcv", Container: "Volume (Bytes)"},
	}
	want := Annotations{Alert: 3, Actions: []ActionAnnotations{
		{
			Action: 10, Plugin: "ddos", Containers: []string{"Volume (Packets)", "Volume (Bytes)"}, UpdateFields: ddosGraph,
			Keys: []Series{
				{Key: "udp_egress_packets", Label: "UDP Egress Packets", Container: "Volume (Packets)", Points: []Point{{Time: at(60)}, {Time: at(120)}}},
				{Key: "tcp_total_drop", Label: "TCP Total Dropped", Container: "Volume (Packets)", Points: []Point{{Time: at(60), Value: 5}}},
				{Key: "ip_rcv", Label: "IPv4 Bytes Received", Container: "Volume (Bytes)", Points: []Point{{Time: at(60), Value: 100}, {Time: at(120), Value: 300}}},
				{Key: "custom", Label: "custom", Points: []Point{{Time: at(120), Value: 9}}},
			},
		},
		{Action: 11, Plugin: "mail", Containers: []string{}, UpdateFields: []UpdateField{}, Keys: []Series{}},
		{
			Action: 12, Containers: []string{}, UpdateFields: []UpdateField{},
			Keys: []Series{{Key: "orphan", Label: "orphan", Points: []Point{{Time: at(30), Value: 1}}}},
		},
	}}

	cases := []struct {
		name      string
		user      string
		id        string
		wantCode  int
		want      *Annotations
		wantError string
	}{
		{name: "admin", user: "admin:a", id: "3", wantCode: 200, want: &want},
		{name: "viewer of the partition", user: "viewer:v", id: "3", wantCode: 200, want: &want},
		{name: "alert of another partition", user: "viewer:v", id: "2", wantCode: 404, wantError: "no alert with ID 2 in the partitions you may see: GET /api/v1/alerts lists them"},
		{name: "unknown alert", user: "admin:a", id: "99", wantCode: 404, wantError: "no alert with ID 99 in the partitions you may see: GET /api/v1/alerts lists them"},
		{name: "bad ID", user: "admin:a", id: "x", wantCode: 400, wantError: `alert ID "x" is not a number: use the numeric ID from GET /api/v1/alerts`},
		{name: "bad password", user: "admin:x", id: "3", wantCode: 401, wantError: `user "admin" is unknown or the password is wrong: check the user name and password (ftnbi -un USER -up PASS)`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, _, values := readerFixture(t)
			if err := values.AddValues(context.Background(), stored); err != nil {
				t.Fatal(err)
			}
			mux := http.NewServeMux()
			mux.HandleFunc("GET /api/v1/alerts/{id}/annotations", r.Annotations)
			req := httptest.NewRequest("GET", "/api/v1/alerts/"+tc.id+"/annotations", nil)
			name, pass, _ := strings.Cut(tc.user, ":")
			req.SetBasicAuth(name, pass)
			rec := httptest.NewRecorder()
			mux.ServeHTTP(rec, req)
			if rec.Code != tc.wantCode {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.wantCode, rec.Body)
			}
			if tc.want == nil {
				var e ErrorBody
				if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(e.Error, tc.wantError); diff != "" {
					t.Errorf("error (-got +want):\n%s", diff)
				}
				return
			}
			var got Annotations
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(got, *tc.want); diff != "" {
				t.Errorf("annotations (-got +want):\n%s", diff)
			}
		})
	}
}

// TestAlwaysWithoutValues checks the zero series of a record "always" key
// of an action that stored nothing: at the alert's first and last
// sighting.
func TestAlwaysWithoutValues(t *testing.T) {
	r, _, _ := readerFixture(t)
	a := ddosSlow()
	a.ID = 3
	a.Latest = a.Earliest.Add(time.Minute)
	got, err := r.AlertAnnotations(context.Background(), &a)
	if err != nil {
		t.Fatal(err)
	}
	want := []Series{{
		Key: "udp_egress_packets", Label: "UDP Egress Packets", Container: "Volume (Packets)",
		Points: []Point{{Time: a.Earliest}, {Time: a.Latest}},
	}}
	if diff := cmp.Diff(got.Actions[0].Keys, want); diff != "" {
		t.Errorf("keys of action 10 (-got +want):\n%s", diff)
	}
}

// BenchmarkAlertJSON measures the JSON of one alert, of which a listing
// writes up to 10,000.
//
//	go test ./annotate -run '^$' -bench AlertJSON -benchmem -count=6 -cpu 1,2 | tee new.txt; benchstat old.txt new.txt
func BenchmarkAlertJSON(b *testing.B) {
	a := Alert(ddosSlow())
	for b.Loop() {
		if _, err := a.MarshalJSON(); err != nil {
			b.Fatal(err)
		}
	}
}
