package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	_ "github.com/flowsentry/flowsentry/detect/all" // the families the API validates against
	"github.com/flowsentry/flowsentry/model"
	"github.com/flowsentry/flowsentry/plugin"
	"github.com/flowsentry/flowsentry/policy"
	"github.com/flowsentry/flowsentry/rates"
)

func newTestServer(t *testing.T) *httptest.Server {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	m, err := model.Build(model.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	snap := &rates.Snapshot{Groups: []rates.Stats{{
		Key: rates.Key{Kind: rates.KindGroup, Group: 1}, Name: "internal",
		Totals: rates.Totals{PacketsIn: 10, BytesIn: 600},
	}}, GroupPorts: []rates.Stats{
		{Key: rates.Key{Kind: rates.KindGroupPort, Group: 1, Proto: 6, Port: 80}, Cur: rates.Rates{BytesIn: 5}},
		{Key: rates.Key{Kind: rates.KindGroupPort, Group: 1, Proto: 6, Port: 443}, Cur: rates.Rates{BytesIn: 50}},
		{Key: rates.Key{Kind: rates.KindGroupPort, Group: 2, Proto: 6, Port: 22}, Cur: rates.Rates{BytesIn: 500}},
	}}
	// Exporter 192.0.2.7 with interfaces 3 and 4; ports on both, and on
	// interface 3 of another exporter.
	ex7, ex8 := netip.MustParseAddr("192.0.2.7"), netip.MustParseAddr("192.0.2.8")
	ifPort := func(ex netip.Addr, ifIndex uint32, port uint16, pps float64) rates.Stats {
		return rates.Stats{Key: rates.Key{Kind: rates.KindInterfacePort, Exporter: ex, IfIndex: ifIndex, Proto: 17, Port: port}, Cur: rates.Rates{PacketsIn: pps, BytesIn: 1000 - pps}}
	}
	snap.InterfacePorts = []rates.Stats{ifPort(ex7, 3, 53, 10), ifPort(ex7, 3, 123, 700), ifPort(ex7, 3, 161, 40), ifPort(ex7, 4, 514, 900), ifPort(ex8, 3, 1900, 999)}
	iface := func(ex netip.Addr, ifIndex uint32) rates.Interface {
		return rates.Interface{Stats: rates.Stats{Key: rates.Key{Kind: rates.KindInterface, Exporter: ex, IfIndex: ifIndex}}}
	}
	snap.Exporters = []rates.Exporter{{Addr: ex7, Interfaces: []rates.Interface{iface(ex7, 3), iface(ex7, 4)}}, {Addr: ex8, Interfaces: []rates.Interface{iface(ex8, 3)}}}
	reg, errs := plugin.Load(examplesCopy(t))
	if len(errs) != 0 {
		t.Fatal(errs)
	}
	pm := policy.NewManager(&policy.MemStore{}, nil)
	if err := pm.Load(context.Background(), nil, []uint32{0, 5}); err != nil {
		t.Fatal(err)
	}
	reader := emptyReader(t, log)
	s, err := New(DefaultConfig(), withAuth(t, Deps{
		Gatherer: prometheus.NewRegistry(), Registerer: prometheus.NewRegistry(),
		Model: model.NewHolder(m), Rates: func() *rates.Snapshot { return snap }, Log: log,
		Alerting: &Alerting{
			Policies: pm, Plugins: reg, Instances: plugin.NewInstances(reg, &plugin.MemInstances{}),
			Annotator: http.NotFoundHandler(), Reader: reader,
		},
	}))
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.srv.Handler)
	t.Cleanup(ts.Close)
	return ts
}

type exchange struct {
	method, path, user, body string
	code                     int
	contains                 []string
}

func (e exchange) run(t *testing.T, ts *httptest.Server) string {
	t.Helper()
	req, err := http.NewRequest(e.method, ts.URL+e.path, bytes.NewBufferString(e.body))
	if err != nil {
		t.Fatal(err)
	}
	if e.user != "" {
		req.SetBasicAuth(e.user, "pw")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != e.code {
		t.Fatalf("%s %s: %d, want %d: %s", e.method, e.path, resp.StatusCode, e.code, body)
	}
	if resp.StatusCode != http.StatusNoContent && !json.Valid(body) && !strings.HasPrefix(e.path, "/metrics") && !strings.HasPrefix(e.path, "/debug/") {
		t.Errorf("%s %s: body is not JSON: %s", e.method, e.path, body)
	}
	for _, c := range e.contains {
		if !strings.Contains(string(body), c) {
			t.Errorf("%s %s: body lacks %q: %s", e.method, e.path, c, body)
		}
	}
	return string(body)
}

func TestRatesEndpoints(t *testing.T) {
	ts := newTestServer(t)
	for _, e := range []exchange{
		{method: "GET", path: "/healthz", code: 200, contains: []string{`"ok"`}},
		{method: "GET", user: "root", path: "/", code: 200, contains: []string{"/api/v1/trafficgroups"}},
		{method: "GET", user: "root", path: "/api/v1/partitions", code: 200, contains: []string{`"default"`, "10.0.0.0/8"}},
		{method: "GET", user: "root", path: "/api/v1/trafficgroups", code: 200, contains: []string{`"internal"`, `"packets_in": 10`, `"bytes_in": 600`}},
		{method: "GET", user: "root", path: "/api/v1/trafficgroups/1", code: 200, contains: []string{`"id": 1`}},
		{method: "GET", user: "root", path: "/api/v1/trafficgroups/x", code: 400, contains: []string{`x\" is not a number`}},
		{method: "GET", user: "root", path: "/api/v1/trafficgroups/9", code: 404, contains: []string{"no traffic group with ID 9"}},
		{method: "GET", user: "root", path: "/api/v1/trafficgroups/1/ports?limit=1", code: 200, contains: []string{`"port": 443`}},
		{method: "GET", user: "root", path: "/api/v1/trafficgroups/1/ports?sort=bogus", code: 400, contains: []string{`sort=\"bogus\" is not valid`}},
		{method: "GET", user: "root", path: "/api/v1/trafficgroups/1/ports?limit=0", code: 400, contains: []string{"use a number from 1 to 10000"}},
		{method: "GET", user: "root", path: "/api/v1/trafficgroups/1/hosts", code: 200},
		{method: "GET", user: "root", path: "/api/v1/exporters", code: 200},
		{method: "GET", user: "root", path: "/api/v1/nothing", code: 404, contains: []string{"GET / lists the endpoints"}},
		{method: "GET", user: "root", path: "/debug/pprof/", code: 200, contains: []string{"goroutine"}},
	} {
		e.run(t, ts)
	}
	// An interface's ports: its own only, sorted by the rate asked for.
	for _, e := range []exchange{
		{method: "GET", user: "root", path: "/api/v1/exporters/192.0.2.7/interfaces/9/ports", code: 404, contains: []string{"exporter 192.0.2.7 has no interface 9"}},
		{method: "GET", user: "root", path: "/api/v1/exporters/192.0.2.7/interfaces/x/ports", code: 400, contains: []string{`ifindex \"x\" is not a number`}},
		{method: "GET", user: "root", path: "/api/v1/exporters/192.0.2.9/interfaces/3/ports", code: 404, contains: []string{"no exporter 192.0.2.9"}},
		{method: "GET", user: "root", path: "/api/v1/exporters/192.0.2.7/interfaces/3/ports?sort=uniq_remote_cidr", code: 400, contains: []string{"use one of packets_in"}},
		{method: "GET", user: "viewer", path: "/api/v1/exporters/192.0.2.7/interfaces/3/ports", code: 403},
	} {
		e.run(t, ts)
	}
	for q, want := range map[string][]string{
		"":                           {`"port": 53`, `"port": 161`, `"port": 123`},
		"?sort=packets_in":           {`"port": 123`, `"port": 161`, `"port": 53`},
		"?sort=packets_in&order=asc": {`"port": 53`, `"port": 161`, `"port": 123`},
		"?sort=packets_in&limit=1":   {`"port": 123`},
	} {
		body := exchange{method: "GET", user: "root", path: "/api/v1/exporters/192.0.2.7/interfaces/3/ports" + q, code: 200}.run(t, ts)
		at := -1
		for _, w := range want {
			i := strings.Index(body, w)
			if i <= at {
				t.Errorf("ports%s: %s missing or out of order: %s", q, w, body)
			}
			at = i
		}
		if n := strings.Count(body, `"port":`); n != len(want) || strings.Contains(body, "514") || strings.Contains(body, "1900") {
			t.Errorf("ports%s: %d ports, want %d of interface 3 only: %s", q, n, len(want), body)
		}
	}
	// Ports are sorted by the current rate, highest first, and belong to
	// the group asked for.
	body := exchange{method: "GET", user: "root", path: "/api/v1/trafficgroups/1/ports", code: 200}.run(t, ts)
	if strings.Index(body, `"port": 443`) > strings.Index(body, `"port": 80`) || strings.Contains(body, `"port": 22`) {
		t.Errorf("ports of group 1: %s", body)
	}
}

func TestAlertingEndpoints(t *testing.T) {
	ts := newTestServer(t)
	policyJSON := `{"name":"web","cid":0,"family":"port_threshold","target":"traffic_groups","object_type":"TGRP+PROTO+PORT",
		"threshold_type":"bits_in","threshold":8000,"proto":6,"port":80,"severity":3,"actions":[]}`
	for _, e := range []exchange{
		{method: "GET", path: "/api/v1/policies", code: 401, contains: []string{"basic auth"}},
		{method: "GET", path: "/api/v1/policies", user: "nobody", code: 401, contains: []string{"bad user name or password"}},
		{method: "GET", path: "/api/v1/policies", user: "root", code: 200, contains: []string{"Packets In", "Bits In", "New Connections (total)"}},
		{method: "POST", path: "/api/v1/policies", user: "root", body: policyJSON, code: 201, contains: []string{`"threshold_type": "bytes_in"`, `"threshold": 1000`}},
		{method: "POST", path: "/api/v1/policies", user: "root", body: `{"name":"x"`, code: 400, contains: []string{"not valid JSON"}},
		{method: "POST", path: "/api/v1/policies", user: "root", body: `{"name":"x","colour":1}`, code: 400, contains: []string{"colour"}},
		{method: "POST", path: "/api/v1/policies", user: "root", body: strings.Replace(policyJSON, `"severity":3`, `"severity":-2`, 1), code: 400, contains: []string{"severity: -2 is negative"}},
		{method: "POST", path: "/api/v1/policies", user: "viewer", body: policyJSON, code: 403, contains: []string{"may not change policies of partition 0"}},
		{method: "GET", path: "/api/v1/policies/abc", user: "root", code: 400, contains: []string{`abc\" is not a number`}},
		{method: "GET", path: "/api/v1/policies/999", user: "root", code: 404},
		{method: "PUT", path: "/api/v1/policies/4", user: "root", body: strings.Replace(policyJSON, `"threshold":8000`, `"threshold":16000`, 1), code: 200, contains: []string{`"id": 4`, `"threshold": 2000`}},
		{method: "PUT", path: "/api/v1/policies/77", user: "root", body: policyJSON, code: 404, contains: []string{"no policy 77"}},
		{method: "POST", path: "/api/v1/policies", user: "root", body: strings.Replace(policyJSON, `{"name"`, `{"id":4,"name"`, 1), code: 400, contains: []string{"PUT /api/v1/policies/4"}},
		{method: "DELETE", path: "/api/v1/policies/1", user: "viewer", code: 404, contains: []string{"may change"}},
		{method: "DELETE", path: "/api/v1/policies/1", user: "root", code: 204},
		{method: "GET", path: "/api/v1/plugins", user: "viewer", code: 200, contains: []string{`"email"`, "missing ','", "trailing ','"}},
		{method: "POST", path: "/api/v1/instances", user: "root", body: `{"name":"mail","cid":0,"plugin":"email","values":{"EMAIL_PASSWORD":"hunter22"}}`, code: 201, contains: []string{"********", `"EMAIL_MAILPORT": "587"`}},
		{method: "POST", path: "/api/v1/instances", user: "root", body: `{"name":"mail","cid":0,"plugin":"email","values":{"EMAIL_MAILPORT":"99999"}}`, code: 400, contains: []string{"EMAIL_MAILPORT"}},
		{method: "POST", path: "/api/v1/instances", user: "mgr5", body: `{"name":"mail","cid":0,"plugin":"email","values":{}}`, code: 403},
		{method: "GET", path: "/api/v1/instances/1", user: "viewer", code: 200, contains: []string{"********"}},
		{method: "GET", path: "/api/v1/instances/1", user: "mgr5", code: 404},
		{method: "PUT", path: "/api/v1/instances/1", user: "root", body: `{"name":"mail ops","cid":0,"plugin":"email","values":{"EMAIL_BODY":"hi"}}`, code: 200, contains: []string{`"name": "mail ops"`, `"EMAIL_BODY": "hi"`}},
		{method: "POST", path: "/api/v1/actions/1/launch", user: "root", code: 404},
	} {
		body := e.run(t, ts)
		if strings.Contains(body, "hunter22") {
			t.Errorf("%s %s leaked a password: %s", e.method, e.path, body)
		}
	}
	// A policy attaching the instance keeps it from being deleted.
	attach := `{"name":"mail on flood","cid":0,"family":"threshold","target":"traffic_groups","object_type":"TGRP",
		"threshold_type":"packets_in","threshold":10,"severity":2,"actions":[{"instance":1,"approval":true}]}`
	exchange{method: "POST", path: "/api/v1/policies", user: "root", body: attach, code: 201}.run(t, ts)
	exchange{method: "DELETE", path: "/api/v1/instances/1", user: "root", code: 409, contains: []string{"detach it first"}}.run(t, ts)
}

// TestHealth checks that /healthz reports a failing dependency with 503
// and recovers to 200 when it works again.
func TestHealth(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	m, err := model.Build(model.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu       sync.Mutex
		storeErr error
	)
	s, err := New(DefaultConfig(), withAuth(t, Deps{
		Gatherer: prometheus.NewRegistry(), Registerer: prometheus.NewRegistry(),
		Model: model.NewHolder(m), Rates: func() *rates.Snapshot { return &rates.Snapshot{} }, Log: log,
		Health: map[string]func() error{"store": func() error {
			mu.Lock()
			defer mu.Unlock()
			return storeErr
		}},
	}))
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.srv.Handler)
	t.Cleanup(ts.Close)
	for _, tc := range []struct {
		name string
		err  error
		want exchange
	}{
		{"store works", nil, exchange{code: 200, contains: []string{`"status": "ok"`}}},
		{"store fails", errors.New("action: database or disk is full"), exchange{code: 503,
			contains: []string{`"status": "degraded"`, `"store": "action: database or disk is full"`}}},
		{"store works again", nil, exchange{code: 200, contains: []string{`"status": "ok"`}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mu.Lock()
			storeErr = tc.err
			mu.Unlock()
			tc.want.method, tc.want.path = "GET", "/healthz"
			tc.want.run(t, ts)
		})
	}
}
