package api

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/flowsentry/flowsentry/action"
	"github.com/flowsentry/flowsentry/alert"
	"github.com/flowsentry/flowsentry/model"
	"github.com/flowsentry/flowsentry/plugin"
	"github.com/flowsentry/flowsentry/policy"
	"github.com/flowsentry/flowsentry/rates"
	"github.com/flowsentry/flowsentry/store"
)

// engineAlerts is the alert engine of the actions tests: fixed alerts,
// none open.
type engineAlerts struct{ alertMap }

func (engineAlerts) Open() []alert.Alert { return nil }

type noCaller struct{}

func (noCaller) Call(context.Context, string, alert.Op, []string) plugin.Result {
	return plugin.Result{}
}

// newActionsServer serves the actions of a real store in t.TempDir():
// alert 1 (partition 0, policy "Packets In") with a waiting and an ended
// action, alert 2 (partition 5, a deleted policy) with one in progress.
func newActionsServer(t *testing.T) (*httptest.Server, PolicyRef) {
	t.Helper()
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	st, pm, pol := storeWithPolicies(t, log)
	reg, errs := plugin.Load(examplesCopy(t))
	if len(errs) != 0 {
		t.Fatal(errs)
	}
	inst := plugin.NewInstances(reg, &plugin.MemInstances{})
	mail, err := inst.Put(ctx, plugin.Instance{Name: "mail ops", CID: 0, Plugin: "email", Values: map[string]string{}})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)
	alerts := engineAlerts{alertMap{
		1: {ID: 1, Policy: pol.ID, CID: 0, Type: "threshold", Earliest: t0},
		2: {ID: 2, Policy: 999, CID: 5, Type: "ddos", Earliest: t0},
	}}
	for _, al := range alerts.alertMap {
		if err := st.SaveAlerts(ctx, []*alert.Alert{&al}); err != nil {
			t.Fatal(err)
		}
	}
	for _, a := range []action.Action{
		{ID: 10, Alert: 1, Policy: pol.ID, Instance: mail.ID, Plugin: "email", State: action.StateEnded, Created: t0},
		{ID: 11, Alert: 1, Policy: pol.ID, Instance: mail.ID, Plugin: "email", State: action.StateWaiting, Created: t0},
		{ID: 12, Alert: 2, Policy: 999, Instance: 77, Plugin: "mitigate", State: action.StateInProgress, Created: t0},
	} {
		if err := st.SaveAction(ctx, &a); err != nil {
			t.Fatal(err)
		}
	}
	call := action.Call{Action: 10, Op: alert.OpCreate, Start: t0, ExitCode: 2, Output: []byte("sent to ops\xff\n")}
	if err := st.AddCall(ctx, &call); err != nil {
		t.Fatal(err)
	}
	d, err := action.New(action.Deps{Store: st, Policies: pm, Instances: inst, Alerts: alerts, Caller: noCaller{}, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	reader := emptyReader(t, log)
	m, err := model.Build(model.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(DefaultConfig(), withAuth(t, Deps{
		Gatherer: prometheus.NewRegistry(), Registerer: prometheus.NewRegistry(),
		Model: model.NewHolder(m), Rates: func() *rates.Snapshot { return &rates.Snapshot{} }, Log: log,
		Alerting: &Alerting{
			Policies: pm, Plugins: reg, Instances: inst, Actions: d, Alerts: alerts,
			Annotator: http.NotFoundHandler(), Reader: reader,
		},
	}))
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.srv.Handler)
	t.Cleanup(ts.Close)
	return ts, pol
}

// getJSON GETs path as user and decodes the answer into v.
func getJSON(t *testing.T, ts *httptest.Server, path, user string, v any) {
	t.Helper()
	body := exchange{method: "GET", path: path, user: user, code: 200}.run(t, ts)
	if err := json.Unmarshal([]byte(body), v); err != nil {
		t.Fatalf("GET %s: %v: %s", path, err, body)
	}
}

func TestActionsList(t *testing.T) {
	ts, pol := newActionsServer(t)
	type item struct {
		ID           uint64    `json:"id"`
		Alert        uint64    `json:"alert"`
		AlertType    string    `json:"alert_type"`
		CID          uint32    `json:"cid"`
		State        string    `json:"state"`
		Policy       PolicyRef `json:"policy"`
		InstanceName string    `json:"instance_name"`
		LastExitCode *int      `json:"last_exit_code"`
	}
	type list struct {
		Actions []item       `json:"actions"`
		Counts  ActionCounts `json:"counts"`
		Total   int          `json:"total"`
	}
	two := 2
	waiting := item{ID: 11, Alert: 1, AlertType: "threshold", State: "waiting_approval", Policy: pol, InstanceName: "mail ops"}
	ended := item{ID: 10, Alert: 1, AlertType: "threshold", State: "ended", Policy: pol, InstanceName: "mail ops", LastExitCode: &two}
	running := item{ID: 12, Alert: 2, AlertType: "ddos", CID: 5, State: "in_progress", Policy: PolicyRef{ID: 999}}
	for _, tc := range []struct {
		name, user, query string
		want              list
	}{
		{"admin sees every partition, waiting first", "root", "",
			list{[]item{waiting, running, ended}, ActionCounts{Waiting: 1, Running: 1, Ended: 1}, 3}},
		{"viewer of partition 0", "viewer", "",
			list{[]item{waiting, ended}, ActionCounts{Waiting: 1, Ended: 1}, 2}},
		{"manager of partition 5", "mgr5", "",
			list{[]item{running}, ActionCounts{Running: 1}, 1}},
		{"by state", "root", "?state=ended",
			list{[]item{ended}, ActionCounts{Waiting: 1, Running: 1, Ended: 1}, 1}},
		{"by alert", "root", "?alert=2",
			list{[]item{running}, ActionCounts{Running: 1}, 1}},
		{"alert of another partition", "viewer", "?alert=2",
			list{[]item{}, ActionCounts{}, 0}},
		{"paged", "root", "?limit=1&offset=1",
			list{[]item{running}, ActionCounts{Waiting: 1, Running: 1, Ended: 1}, 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got list
			getJSON(t, ts, "/api/v1/actions"+tc.query, tc.user, &got)
			if diff := cmp.Diff(got, tc.want); diff != "" {
				t.Errorf("(-got +want):\n%s", diff)
			}
		})
	}
	for _, e := range []exchange{
		{method: "GET", path: "/api/v1/actions", code: 401, contains: []string{"basic auth"}},
		{method: "GET", path: "/api/v1/actions?state=open", user: "root", code: 400, contains: []string{"use waiting, running or ended"}},
		{method: "GET", path: "/api/v1/actions?limit=1001", user: "root", code: 400, contains: []string{`limit=\"1001\" is not valid; use a number from 1 to 1000`}},
		{method: "GET", path: "/api/v1/actions?offset=-1", user: "root", code: 400, contains: []string{"offset="}},
		{method: "GET", path: "/api/v1/actions?alert=x", user: "root", code: 400, contains: []string{"use an alert ID"}},
	} {
		t.Run(e.method+" "+e.path, func(t *testing.T) { e.run(t, ts) })
	}
}

// TestAlertAndActionDetail checks that the alert detail names its policy
// and that calls carry their output as text.
func TestAlertAndActionDetail(t *testing.T) {
	ts, pol := newActionsServer(t)
	for _, tc := range []struct {
		name, path, user string
		want             []string
	}{
		{"alert names its policy", "/api/v1/alerts/1", "viewer",
			[]string{fmt.Sprintf(`"policy": {
    "id": %d,
    "name": "Packets In"
  }`, pol.ID), `"output": "sent to ops\ufffd\n"`}},
		{"alert of a deleted policy", "/api/v1/alerts/2", "mgr5", []string{`"policy": {
    "id": 999,
    "name": ""
  }`}},
		{"action output as text", "/api/v1/actions/10", "root", []string{`"output": "sent to ops\ufffd\n"`, `"exit_code": 2`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := exchange{method: "GET", path: tc.path, user: tc.user, code: 200}.run(t, ts)
			for _, w := range tc.want {
				// encoding/json writes U+FFFD as itself.
				w = strings.ReplaceAll(w, `\ufffd`, "\ufffd")
				if !strings.Contains(body, w) {
					t.Errorf("body lacks %s:\n%s", w, body)
				}
			}
		})
	}
	exchange{method: "GET", path: "/api/v1/alerts/2", user: "viewer", code: 404}.run(t, ts)
}

// storeWithPolicies opens a store in t.TempDir() with the default
// templates of partitions 0 and 5, and returns it, their manager and the
// "Packets In" template of partition 0.
func storeWithPolicies(t *testing.T, log *slog.Logger) (*store.Store, *policy.Manager, PolicyRef) {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, t.TempDir(), log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	pm := policy.NewManager(st, nil)
	if err := pm.Load(ctx, nil, []uint32{0, 5}); err != nil {
		t.Fatal(err)
	}
	var pol PolicyRef
	for _, p := range pm.List() {
		if p.CID == 0 && p.Name == "Packets In" {
			pol = PolicyRef{ID: p.ID, Name: p.Name}
		}
	}
	return st, pm, pol
}
