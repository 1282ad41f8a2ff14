package api

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flowsentry/flowsentry/alert"
	"github.com/flowsentry/flowsentry/annotate"
	"github.com/flowsentry/flowsentry/auth"
	"github.com/flowsentry/flowsentry/model"
	"github.com/flowsentry/flowsentry/plugin"
	"github.com/flowsentry/flowsentry/policy"
	"github.com/flowsentry/flowsentry/rates"
	"github.com/flowsentry/flowsentry/store"
)

// testUsers are the accounts withAuth creates, all with the password
// "pw": an admin, a manager of partition 5 and a viewer of partition 0.
var testUsers = []store.User{
	{Name: "root", Role: store.RoleAdmin},
	{Name: "mgr5", Role: store.RoleManager, CIDs: []uint32{5}},
	{Name: "viewer", Role: store.RoleViewer, CIDs: []uint32{0}},
}

// threeGroups is a model of partitions 0 "zero" (groups 1 "one"
// 10.1.0.0/16 and 2 "two" 10.2.0.0/16) and 5 "five" (group 3 "three"
// 10.3.0.0/16).
func threeGroups(t testing.TB) *model.Model {
	t.Helper()
	m, err := model.Build(model.Config{
		Partitions: []model.PartitionConfig{{CID: 0, Name: "zero"}, {CID: 5, Name: "five"}},
		TrafficGroups: []model.TrafficGroupConfig{
			{ID: 1, Name: "one", Partition: 0, CIDRs: []string{"10.1.0.0/16"}},
			{ID: 2, Name: "two", Partition: 0, CIDRs: []string{"10.2.0.0/16"}},
			{ID: 3, Name: "three", Partition: 5, CIDRs: []string{"10.3.0.0/16"}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// groupAlert is a ddos_synflood alert of partition 0 about traffic group
// group (TARGET_TG).
func groupAlert(id uint64, group uint32) alert.Alert {
	a := ddosAlert(id, 0, fmt.Sprintf("10.%d.0.7", group))
	a.Fields = append(a.Fields, alert.Field{Name: "TARGET_TG", Value: fmt.Sprint(group), Number: true})
	return a
}

// emptyReader is an alert reader with no alerts, authenticating through
// the request's principal as the server's is.
func emptyReader(t testing.TB, log *slog.Logger) *annotate.Reader {
	t.Helper()
	reader, err := annotate.NewReader(annotate.ReaderDeps{
		Alerts: annotate.NewAlertList(), Users: ReaderUsers{}, Values: &annotate.MemoryStore{},
		Actions: annotate.StaticActions{}, Graphs: annotate.StaticGraphs{}, Log: log,
	})
	if err != nil {
		t.Fatal(err)
	}
	return reader
}

// withAuth sets the Auth and Accounts of deps to a real store in a
// temporary folder holding testUsers and more.
func withAuth(t testing.TB, deps Deps, more ...store.User) Deps {
	t.Helper()
	deps.Auth, deps.Accounts = newTestAuth(t, deps.Registerer, more...)
	return deps
}

// newTestAuth opens a store with testUsers and more and builds the auth
// service over it.
func newTestAuth(t testing.TB, reg prometheus.Registerer, more ...store.User) (*auth.Service, *store.Store) {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	for _, u := range append(append([]store.User{}, testUsers...), more...) {
		if err := st.CreateUser(ctx, u, "pw"); err != nil {
			t.Fatal(err)
		}
	}
	a, err := auth.New(auth.DefaultConfig(), auth.Deps{Store: st, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	return a, st
}

// newAuthServer serves partitions 0 (groups 1, 2) and 5 (group 3), with
// rates in every group and alert 1 in partition 0, to testUsers and
// viewer "g2", restricted to group 2 of partition 0. It returns the server
// and its registry.
func newAuthServer(t *testing.T) (*httptest.Server, *prometheus.Registry) {
	t.Helper()
	m := threeGroups(t)
	snap := &rates.Snapshot{}
	for g := uint32(1); g <= 3; g++ {
		snap.Hosts = append(snap.Hosts, rates.Stats{Key: rates.Key{Kind: rates.KindHost, Group: g, IP: netip.AddrFrom4([4]byte{10, byte(g), 0, 9})}})
		snap.GroupPorts = append(snap.GroupPorts, rates.Stats{Key: rates.Key{Kind: rates.KindGroupPort, Group: g, Proto: 6, Port: uint16(1000 + g)}})
	}
	reg, errs := plugin.Load(examplesCopy(t))
	if len(errs) != 0 {
		t.Fatal(errs)
	}
	pm := policy.NewManager(&policy.MemStore{}, nil)
	if err := pm.Load(context.Background(), nil, []uint32{0, 5}); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	reader := emptyReader(t, log)
	metrics := prometheus.NewRegistry()
	s, err := New(DefaultConfig(), withAuth(t, Deps{
		Gatherer: metrics, Registerer: metrics,
		Model: model.NewHolder(m), Rates: func() *rates.Snapshot { return snap }, Log: log,
		Alerting: &Alerting{
			Policies: pm, Plugins: reg, Instances: plugin.NewInstances(reg, &plugin.MemInstances{}),
			Annotator: http.NotFoundHandler(), Reader: reader,
			Alerts: alertMap{1: ddosAlert(1, 0, "10.1.0.9"), 2: groupAlert(2, 1), 3: groupAlert(3, 2)},
		},
	}, store.User{Name: "g2", Role: store.RoleViewer, CIDs: []uint32{0}, Groups: []uint32{2}}))
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.srv.Handler)
	t.Cleanup(ts.Close)
	return ts, metrics
}

// routePattern finds the routes registered in the package's source.
var routePattern = regexp.MustCompile(`mux\.Handle(?:Func)?\("([A-Z]+) ([^"]+)"`)

// registeredRoutes lists every route pattern of the package's source
// files, so that a route added later is checked too.
func registeredRoutes(t *testing.T) [][2]string {
	t.Helper()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	var out [][2]string
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range routePattern.FindAllStringSubmatch(string(src), -1) {
			out = append(out, [2]string{m[1], m[2]})
		}
	}
	if len(out) < 30 {
		t.Fatalf("found %d routes in the source; the pattern no longer matches how routes are registered", len(out))
	}
	return out
}

// TestEveryRouteNeedsLogin sends every registered route without
// credentials: only the public ones answer something else than 401.
func TestEveryRouteNeedsLogin(t *testing.T) {
	ts, _ := newAuthServer(t)
	fill := strings.NewReplacer("{id}", "1", "{name}", "root", "{op}", "approve", "{addr}", "192.0.2.1", "{$}", "")
	for _, rt := range registeredRoutes(t) {
		method, path := rt[0], fill.Replace(rt[1])
		t.Run(method+" "+rt[1], func(t *testing.T) {
			req, err := http.NewRequest(method, ts.URL+path, strings.NewReader("{}"))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			public := isPublic(method+" "+rt[1], path)
			switch {
			case public && resp.StatusCode == http.StatusUnauthorized:
				t.Errorf("public route: 401 %s", body)
			case !public && resp.StatusCode != http.StatusUnauthorized:
				t.Errorf("%d without credentials, want 401: %s", resp.StatusCode, body)
			case !public && (resp.Header.Get("WWW-Authenticate") != `Basic realm="flowsentry"` || !strings.Contains(string(body), "POST /api/v1/login")):
				t.Errorf("401 without the challenge or the way to log in: %q %s", resp.Header.Get("WWW-Authenticate"), body)
			}
		})
	}
}

// TestIsolation checks that a user sees only its partitions and groups
// through every endpoint that shows them.
func TestIsolation(t *testing.T) {
	ts, _ := newAuthServer(t)
	hidden := map[string][]string{
		"mgr5":   {`"zero"`, `"one"`, `"two"`, "10.1.0.9", "10.2.0.9", `"root"`, `"viewer"`},
		"viewer": {`"five"`, `"three"`, "10.3.0.9"},
		"g2":     {`"one"`, `"five"`, `"three"`, "10.1.0.9", "10.3.0.9"},
	}
	for _, e := range []exchange{
		{method: "GET", path: "/api/v1/partitions", user: "mgr5", code: 200, contains: []string{`"five"`}},
		{method: "GET", path: "/api/v1/partitions", user: "viewer", code: 200, contains: []string{`"zero"`}},
		{method: "GET", path: "/api/v1/trafficgroups", user: "mgr5", code: 200, contains: []string{`"three"`}},
		{method: "GET", path: "/api/v1/trafficgroups", user: "g2", code: 200, contains: []string{`"two"`}},
		{method: "GET", path: "/api/v1/trafficgroups/3", user: "mgr5", code: 200},
		{method: "GET", path: "/api/v1/trafficgroups/1", user: "mgr5", code: 404, contains: []string{"no traffic group with ID 1"}},
		{method: "GET", path: "/api/v1/trafficgroups/1/hosts", user: "mgr5", code: 404},
		{method: "GET", path: "/api/v1/trafficgroups/1/ports", user: "mgr5", code: 404},
		{method: "GET", path: "/api/v1/trafficgroups/1/hosts", user: "g2", code: 404},
		{method: "GET", path: "/api/v1/trafficgroups/2/hosts", user: "g2", code: 200, contains: []string{"10.2.0.9"}},
		{method: "GET", path: "/api/v1/trafficgroups/1/hosts", user: "viewer", code: 200, contains: []string{"10.1.0.9"}},
		{method: "GET", path: "/api/v1/exporters", user: "viewer", code: 403, contains: []string{"only admins"}},
		{method: "GET", path: "/api/v1/exporters", user: "root", code: 200},
		{method: "GET", path: "/debug/pprof/", user: "mgr5", code: 403, contains: []string{"for admins"}},
		{method: "GET", path: "/api/v1/alerts/1", user: "mgr5", code: 404, contains: []string{"no alert 1 that user mgr5 may see"}},
		// g2 sees only the alerts of its group 2: not those of group 1 nor
		// those of no group; viewer, of the whole partition, sees all.
		// (The pcap endpoint tells a hidden alert from a visible one
		// without packets kept.)
		{method: "GET", path: "/api/v1/alerts/1/pcap", user: "g2", code: 404, contains: []string{"no alert 1 that user g2 may see"}},
		{method: "GET", path: "/api/v1/alerts/2/pcap", user: "g2", code: 404, contains: []string{"no alert 2 that user g2 may see"}},
		{method: "GET", path: "/api/v1/alerts/3/pcap", user: "g2", code: 404, contains: []string{"this server keeps no packet headers"}},
		{method: "GET", path: "/api/v1/alerts/2/pcap", user: "viewer", code: 404, contains: []string{"this server keeps no packet headers"}},
		{method: "GET", path: "/api/v1/alerts/2/annotations", user: "g2", code: 404},
		{method: "GET", path: "/api/v1/alerts/1/pcap", user: "mgr5", code: 404},
		{method: "GET", path: "/api/v1/alerts/1/annotations", user: "mgr5", code: 404},
		{method: "GET", path: "/api/v1/alerts", user: "mgr5", code: 200},
		{method: "GET", path: "/api/v1/alerts", user: "viewer", code: 200},
		{method: "POST", path: "/api/v1/instances", user: "mgr5", body: `{"name":"m","cid":0,"plugin":"email","values":{}}`, code: 403},
		{method: "GET", path: "/api/v1/users", user: "mgr5", code: 200},
	} {
		body := e.run(t, ts)
		for _, other := range hidden[e.user] {
			if strings.Contains(body, other) {
				t.Errorf("%s %s as %s shows %s: %s", e.method, e.path, e.user, other, body)
			}
		}
	}
}

// call sends a request with optional headers and returns the status,
// headers and body.
func call(t *testing.T, ts *httptest.Server, method, path, body string, hdr map[string]string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, ts.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// TestSessionsAndTokens logs in, uses the session with and without its
// CSRF token, makes, uses and revokes an API token, and logs out.
func TestSessionsAndTokens(t *testing.T) {
	ts, _ := newAuthServer(t)
	code, hdr, body := call(t, ts, "POST", "/api/v1/login", `{"user":"viewer","password":"pw"}`, nil)
	if code != 200 {
		t.Fatalf("login: %d %s", code, body)
	}
	var info SessionInfo
	if err := json.Unmarshal([]byte(body), &info); err != nil || info.CSRFToken == "" || info.User != "viewer" || info.Role != "viewer" {
		t.Fatalf("login answer %s (%v)", body, err)
	}
	ck := hdr.Get("Set-Cookie")
	for _, want := range []string{SessionCookie + "=", "HttpOnly", "SameSite=Strict", "Path=/"} {
		if !strings.Contains(ck, want) {
			t.Errorf("cookie %q lacks %s", ck, want)
		}
	}
	cookie := map[string]string{"Cookie": strings.Split(ck, ";")[0]}
	withCSRF := map[string]string{"Cookie": cookie["Cookie"], CSRFHeader: info.CSRFToken}
	if code, _, body := call(t, ts, "GET", "/api/v1/session", "", cookie); code != 200 || !strings.Contains(body, info.CSRFToken) {
		t.Errorf("GET /api/v1/session: %d %s", code, body)
	}
	if code, _, body := call(t, ts, "POST", "/api/v1/tokens", `{"name":"ci"}`, cookie); code != 403 || !strings.Contains(body, CSRFHeader) {
		t.Errorf("POST without the CSRF token: %d %s, want 403 naming the header", code, body)
	}
	code, _, body = call(t, ts, "POST", "/api/v1/tokens", `{"name":"ci","expires_in":"720h"}`, withCSRF)
	var tk TokenInfo
	if err := json.Unmarshal([]byte(body), &tk); code != 201 || err != nil || !strings.HasPrefix(tk.Secret, auth.TokenPrefix) {
		t.Fatalf("POST /api/v1/tokens: %d %s", code, body)
	}
	bearer := map[string]string{"Authorization": "Bearer " + tk.Secret}
	if code, _, body := call(t, ts, "GET", "/api/v1/trafficgroups/1", "", bearer); code != 200 {
		t.Errorf("with the token: %d %s", code, body)
	}
	if code, _, body := call(t, ts, "GET", "/api/v1/tokens", "", bearer); code != 200 || strings.Contains(body, tk.Secret) || !strings.Contains(body, `"ci"`) {
		t.Errorf("GET /api/v1/tokens: %d %s (the secret must not be listed)", code, body)
	}
	if code, _, body := call(t, ts, "DELETE", fmt.Sprintf("/api/v1/tokens/%d", tk.ID), "", map[string]string{"Authorization": basic("mgr5")}); code != 404 {
		t.Errorf("another user revoking the token: %d %s, want 404", code, body)
	}
	if code, _, body := call(t, ts, "DELETE", fmt.Sprintf("/api/v1/tokens/%d", tk.ID), "", bearer); code != 204 {
		t.Errorf("revoking the token: %d %s", code, body)
	}
	if code, _, body := call(t, ts, "GET", "/api/v1/trafficgroups/1", "", bearer); code != 401 {
		t.Errorf("with the revoked token: %d %s, want 401", code, body)
	}
	if code, _, body := call(t, ts, "POST", "/api/v1/logout", "", withCSRF); code != 204 {
		t.Errorf("logout: %d %s", code, body)
	}
	if code, _, body := call(t, ts, "GET", "/api/v1/session", "", cookie); code != 401 || !strings.Contains(body, "expired or was closed") {
		t.Errorf("after logout: %d %s, want 401", code, body)
	}
}

// basic is the Authorization header of a test user.
func basic(user string) string {
	req, _ := http.NewRequest("GET", "/", nil)
	req.SetBasicAuth(user, "pw")
	return req.Header.Get("Authorization")
}

// TestLockout tries 300 wrong passwords: the attempts after the fifth
// are refused with 429 and Retry-After, the right password too, and every
// refusal is counted.
func TestLockout(t *testing.T) {
	ts, reg := newAuthServer(t)
	wrong := map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte("root:guess"))}
	var locked int
	for i := range 300 {
		code, hdr, body := call(t, ts, "GET", "/api/v1/partitions", "", wrong)
		switch {
		case i < 5 && code != 401:
			t.Fatalf("attempt %d: %d %s, want 401", i+1, code, body)
		case code == 429:
			locked++
			if n, err := strconv.Atoi(hdr.Get("Retry-After")); err != nil || n < 1 {
				t.Fatalf("429 with Retry-After %q", hdr.Get("Retry-After"))
			}
			if !strings.Contains(body, "retry after") {
				t.Fatalf("429 body %s does not say when to retry", body)
			}
		}
	}
	if locked < 290 {
		t.Errorf("%d of 300 attempts locked out, want at least 290", locked)
	}
	if code, _, body := call(t, ts, "GET", "/api/v1/partitions", "", map[string]string{"Authorization": basic("root")}); code != 429 {
		t.Errorf("right password while locked: %d %s, want 429", code, body)
	}
	for reason, least := range map[string]float64{"bad_credentials": 5, "locked": 290} {
		if got := counterValue(t, reg, "flowsentry_auth_failures_total", reason); got < least {
			t.Errorf("flowsentry_auth_failures_total{reason=%q} = %v, want at least %v", reason, got, least)
		}
	}
}

// counterValue reads a counter of the registry by its reason label.
func counterValue(t *testing.T, reg *prometheus.Registry, name, reason string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" && l.GetValue() == reason {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// TestUsersAPI checks what admins, managers and viewers may do with
// users, and that the audit log records it without a secret.
func TestUsersAPI(t *testing.T) {
	ts, _ := newAuthServer(t)
	for _, e := range []exchange{
		{method: "POST", path: "/api/v1/users", user: "mgr5", body: `{"name":"v5","role":"user","cids":[5],"password":"s3cret-v5"}`, code: 201, contains: []string{`"role": "viewer"`}},
		{method: "POST", path: "/api/v1/users", user: "mgr5", body: `{"name":"v0","role":"viewer","cids":[0],"password":"x"}`, code: 403, contains: []string{"own partitions"}},
		{method: "POST", path: "/api/v1/users", user: "mgr5", body: `{"name":"a2","role":"admin","password":"x"}`, code: 403},
		{method: "POST", path: "/api/v1/users", user: "mgr5", body: `{"name":"bad name","role":"viewer","password":"x"}`, code: 400, contains: []string{"name"}},
		{method: "POST", path: "/api/v1/users", user: "root", body: `{"name":"x","role":"boss","password":"x"}`, code: 400, contains: []string{"boss", "admin, manager or viewer"}},
		{method: "POST", path: "/api/v1/users", user: "root", body: `{"name":"x","role":"viewer","cids":[7],"password":"x"}`, code: 400, contains: []string{"cids: partition 7"}},
		{method: "POST", path: "/api/v1/users", user: "root", body: `{"name":"x","role":"viewer","cids":[0],"groups":[3],"password":"x"}`, code: 400, contains: []string{"groups: traffic group 3"}},
		{method: "POST", path: "/api/v1/users", user: "root", body: `{"name":"viewer","role":"viewer","password":"x"}`, code: 409},
		{method: "PUT", path: "/api/v1/users/v5", user: "mgr5", body: `{"cids":[0,5]}`, code: 403},
		{method: "PUT", path: "/api/v1/users/viewer", user: "mgr5", body: `{"cids":[5]}`, code: 404},
		{method: "GET", path: "/api/v1/users/root", user: "viewer", code: 404},
		{method: "GET", path: "/api/v1/users/viewer", user: "viewer", code: 200},
		{method: "GET", path: "/api/v1/audit", user: "viewer", code: 403},
		{method: "PUT", path: "/api/v1/users/viewer", user: "viewer", body: `{"role":"admin"}`, code: 403},
		{method: "PUT", path: "/api/v1/users/viewer", user: "viewer", body: `{"password":"new-viewer-pw"}`, code: 200},
		{method: "DELETE", path: "/api/v1/users/root", user: "root", code: 409, contains: []string{"last admin"}},
	} {
		if strings.Contains(e.run(t, ts), "s3cret") {
			t.Errorf("%s %s returned a password", e.method, e.path)
		}
	}
	// The viewer's new password works at once, the old one no more.
	if code, _, _ := call(t, ts, "GET", "/api/v1/session", "", map[string]string{"Authorization": basic("viewer")}); code != 401 {
		t.Errorf("old password after the change: %d, want 401", code)
	}
	exchange{method: "DELETE", path: "/api/v1/users/v5", user: "mgr5", code: 204}.run(t, ts)
	body := exchange{method: "GET", path: "/api/v1/audit", user: "root", code: 200,
		contains: []string{`"path": "/api/v1/users/v5"`, `"method": "DELETE"`, "user v5 role viewer", "failed login"}}.run(t, ts)
	for _, secret := range []string{"s3cret", "new-viewer-pw", `"pw"`} {
		if strings.Contains(body, secret) {
			t.Errorf("the audit log holds %s: %s", secret, body)
		}
	}
	mine := exchange{method: "GET", path: "/api/v1/audit?limit=50", user: "mgr5", code: 200}.run(t, ts)
	if strings.Contains(mine, `"user": "viewer"`) || !strings.Contains(mine, `"user": "mgr5"`) {
		t.Errorf("the manager's audit log: %s", mine)
	}
}
