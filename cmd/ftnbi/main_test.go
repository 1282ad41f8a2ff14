package main

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/flowsentry/flowsentry/alert"
	"github.com/flowsentry/flowsentry/annotate"
)

// binary is the ftnbi built by TestMain.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ftnbi-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "ftnbi")
	out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "building ftnbi: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const (
	token   = "00112233445566778899aabbccddeeff"
	alertID = 1004
	aid     = 7
)

// testAlerts are the alerts of the test server: 1004 in partition 1,
// created 10 minutes ago, and 1005 in partition 2, created just now.
func testAlerts(now time.Time) []alert.Alert {
	v := alert.Values{PacketsIn: 3.5, PacketsOut: 6.25, BytesIn: 4361.75, BytesOut: 1857.25, NewConn: 0.25}
	return []alert.Alert{
		{
			ID: 1004, CID: 1, Severity: 3, Type: "ddos_slow", Earliest: now.Add(-10 * time.Minute), Latest: now,
			Fields: []alert.Field{
				{Name: "TARGET_IP", Value: "10.2.0.25"},
				{Name: "SOURCES", IsList: true, List: []string{"23.32.0.0/12", "52.0.0.0/8"}},
				{Name: "THRESHOLD_VALUE", Value: "100", Number: true},
			},
			Cur: v, Peak: v, Avg: v,
		},
		{
			ID: 1005, CID: 2, Severity: 5, Type: "threshold_exceeded", Earliest: now, Latest: now,
			Fields: []alert.Field{{Name: "OBJECT_TYPE", Value: "TGRP"}, {Name: "TGRP", Value: "1", Number: true}},
		},
	}
}

// server is a flowsentry API with the real handlers over in-memory data.
type server struct {
	url     string
	handler http.Handler // the API, to serve over TLS too
	alerts  *annotate.AlertList
	values  *annotate.MemoryStore
	list    []alert.Alert
}

func newServer(t *testing.T) *server {
	t.Helper()
	now := time.Now()
	s := &server{values: &annotate.MemoryStore{}, list: testAlerts(now)}
	s.alerts = annotate.NewAlertList(s.list...)
	tokens := annotate.StaticTokens{
		{alertID, aid}: {Token: token, Until: now.Add(300 * time.Second)},
		{alertID, 8}:   {Token: token, Until: now.Add(-time.Second), Alert: annotate.AlertEnded},
	}
	ann, err := annotate.New(annotate.DefaultConfig(), s.values, tokens, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := annotate.NewReader(annotate.ReaderDeps{
		Alerts:  s.alerts,
		Users:   annotate.StaticUsers{"admin": {Password: "secret", Admin: true}, "viewer": {Password: "v", CIDs: []uint32{2}}},
		Values:  s.values,
		Actions: annotate.StaticActions{},
		Graphs:  annotate.StaticGraphs{},
	})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("POST /api/v1/annotations", ann)
	mux.HandleFunc("GET /api/v1/alerts", r.Alerts)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	s.url, s.handler = srv.URL, mux
	return s
}

// ftnbi runs the binary with args and exactly the environment env.
func ftnbi(t *testing.T, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = append([]string{}, env...) // never the test's own environment
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errOut.String(), code
}

// indented returns the JSON array of alerts as ftnbi prints it.
func indented(t *testing.T, alerts ...alert.Alert) string {
	t.Helper()
	list := make([]annotate.Alert, len(alerts))
	for i, a := range alerts {
		list[i] = annotate.Alert(a)
	}
	b, err := json.Marshal(list)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, b, "", "  "); err != nil {
		t.Fatal(err)
	}
	return buf.String() + "\n"
}

func TestAlert(t *testing.T) {
	s := newServer(t)
	host := strings.TrimPrefix(s.url, "http://")
	cases := []struct {
		name        string
		args        []string
		env         []string
		wantCode    int
		wantStdout  func() string
		wantStderr  string
		wantCreated time.Duration // expected now - CreatedSince of the query
		wantActive  time.Duration
	}{
		{
			name:        "created in the last 3 minutes",
			args:        []string{"-s", host, "-un", "admin", "-up", "secret", "-alert", "-tn", "-3m", "-j"},
			wantStdout:  func() string { return indented(t, s.list[1]) },
			wantCreated: 3 * time.Minute,
		},
		{
			name:        "created in the last hour, without minus sign",
			args:        []string{"-s", host, "-un", "admin", "-up", "secret", "-alert", "-tn", "1h", "-j"},
			wantStdout:  func() string { return indented(t, s.list[1], s.list[0]) },
			wantCreated: time.Hour,
		},
		{
			name:       "active in the last minute, viewer of partition 2, server from FLOWSENTRY_URL",
			args:       []string{"-un", "viewer", "-up", "v", "-alert", "-at", "1m", "-j"},
			env:        []string{"FLOWSENTRY_URL=" + s.url},
			wantStdout: func() string { return indented(t, s.list[1]) },
			wantActive: time.Minute,
		},
		{
			name:       "every alert, flags in another order",
			args:       []string{"-j", "-alert", "-up", "secret", "-un", "admin", "-s", host},
			wantStdout: func() string { return indented(t, s.list[1], s.list[0]) },
		},
		{
			name:       "wrong password",
			args:       []string{"-s", host, "-un", "admin", "-up", "x", "-alert", "-tn", "-3m", "-j"},
			wantCode:   1,
			wantStderr: `ftnbi: user "admin" is unknown or the password is wrong: check the user name and password (ftnbi -un USER -up PASS)`,
		},
		{
			name:       "bad relative time",
			args:       []string{"-s", host, "-un", "admin", "-up", "secret", "-alert", "-tn", "-3x", "-j"},
			wantCode:   2,
			wantStderr: `ftnbi: -tn "-3x" is not a relative time: write a whole number and a unit s, m, h or d, e.g. -tn -3m`,
		},
		{
			name:       "no credentials",
			args:       []string{"-s", host, "-alert", "-tn", "-3m"},
			wantCode:   2,
			wantStderr: "ftnbi: -alert needs the credentials of a flowsentry user: give -un USER -up PASS",
		},
		{
			name:       "no server",
			args:       []string{"-un", "admin", "-up", "secret", "-alert"},
			wantCode:   2,
			wantStderr: "ftnbi: no server: give -s HOST[:PORT] (FLOWSENTRY_URL is not set)",
		},
		{
			name:       "unknown flag",
			args:       []string{"-s", host, "-alert", "-x"},
			wantCode:   2,
			wantStderr: "ftnbi: unknown flag -x; ftnbi -h shows the flags",
		},
		{
			name:       "flag without value",
			args:       []string{"-alert", "-s"},
			wantCode:   2,
			wantStderr: "ftnbi: -s needs a value; ftnbi -h shows the flags",
		},
		{
			name:       "nothing to do",
			args:       []string{"-s", host},
			wantCode:   2,
			wantStderr: "ftnbi: nothing to do: give -alert to list alerts, or -val KEY=VALUE ... to annotate the alert action running this plugin; ftnbi -h shows the flags",
		},
		{
			name:       "help",
			args:       []string{"-h"},
			wantStdout: func() string { return usage },
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := time.Now()
			stdout, stderr, code := ftnbi(t, tc.env, tc.args...)
			after := time.Now()
			if code != tc.wantCode {
				t.Errorf("exit status %d, want %d (stderr %q)", code, tc.wantCode, stderr)
			}
			if diff := cmp.Diff(strings.TrimSuffix(stderr, "\n"), tc.wantStderr); diff != "" {
				t.Errorf("stderr (-got +want):\n%s", diff)
			}
			if strings.Count(stderr, "\n") > 1 {
				t.Errorf("stderr has more than one line: %q", stderr)
			}
			want := ""
			if tc.wantStdout != nil {
				want = tc.wantStdout()
			}
			if diff := cmp.Diff(stdout, want); diff != "" {
				t.Errorf("stdout (-got +want):\n%s", diff)
			}
			if tc.wantCode != 0 || tc.wantStdout == nil || tc.args[0] == "-h" {
				return
			}
			q := s.alerts.Last()
			for _, b := range []struct {
				name string
				got  time.Time
				ago  time.Duration
			}{{"created_since", q.CreatedSince, tc.wantCreated}, {"active_since", q.ActiveSince, tc.wantActive}} {
				switch {
				case b.ago == 0 && !b.got.IsZero():
					t.Errorf("%s %v, want none", b.name, b.got)
				case b.ago != 0 && (b.got.Before(before.Add(-b.ago-time.Second)) || b.got.After(after.Add(-b.ago))):
					t.Errorf("%s %v, want %v before the run (%v)", b.name, b.got, b.ago, before)
				}
			}
		})
	}
}

func TestVal(t *testing.T) {
	s := newServer(t)
	env := func(extra ...string) []string {
		return append([]string{"TKN=" + token, fmt.Sprintf("ID=%d", alertID), fmt.Sprintf("AID=%d", aid), "FLOWSENTRY_URL=" + s.url}, extra...)
	}
	cases := []struct {
		name       string
		args       []string
		env        []string
		wantCode   int
		wantStderr string
		wantStored map[string]uint64
	}{
		{
			name:       "stored",
			args:       []string{"-val", "udp_egress_packets=12", "tcp_total_drop=3"},
			env:        env(),
			wantStored: map[string]uint64{"udp_egress_packets": 12, "tcp_total_drop": 3},
		},
		{
			name:       "server from -s overrides FLOWSENTRY_URL",
			args:       []string{"-s", strings.TrimPrefix(s.url, "http://"), "-val", "ip_rcv=5"},
			env:        append(env(), "FLOWSENTRY_URL=http://127.0.0.1:1"),
			wantStored: map[string]uint64{"ip_rcv": 5},
		},
		{
			name:       "token mismatch: the manual's message",
			args:       []string{"-val", "ip_rcv=5"},
			env:        []string{"TKN=ffff", "ID=1004", "AID=7", "FLOWSENTRY_URL=" + s.url},
			wantCode:   1,
			wantStderr: "Update rejected: token mismatch, or the alert has timed out",
		},
		{
			name:       "unknown action: the manual's message",
			args:       []string{"-val", "ip_rcv=5"},
			env:        []string{"TKN=" + token, "ID=1004", "AID=99", "FLOWSENTRY_URL=" + s.url},
			wantCode:   1,
			wantStderr: "The alert action ID/AID was not found",
		},
		{
			name:       "too old: the manual's message",
			args:       []string{"-val", "ip_rcv=5"},
			env:        []string{"TKN=" + token, "ID=1004", "AID=8", "FLOWSENTRY_URL=" + s.url},
			wantCode:   1,
			wantStderr: "The alert is too old and cannot be updated",
		},
		{
			name:       "missing environment",
			args:       []string{"-val", "ip_rcv=5"},
			env:        []string{"TKN=" + token, "FLOWSENTRY_URL=" + s.url},
			wantCode:   2,
			wantStderr: "ftnbi: ID, AID not set: ftnbi -val annotates the alert action of the plugin flowsentry runs, and reads TKN, ID and AID from the plugin's environment",
		},
		{
			name:       "bad AID",
			args:       []string{"-val", "ip_rcv=5"},
			env:        append(env(), "AID=seven"),
			wantCode:   2,
			wantStderr: `ftnbi: AID="seven" is not an ID (a positive integer): run ftnbi -val with the environment flowsentry gives the plugin`,
		},
		{
			name:       "no server",
			args:       []string{"-val", "ip_rcv=5"},
			env:        []string{"TKN=" + token, "ID=1004", "AID=7"},
			wantCode:   2,
			wantStderr: "ftnbi: no server: give -s HOST[:PORT] (FLOWSENTRY_URL is not set)",
		},
		{
			name:       "zero value",
			args:       []string{"-val", "ip_rcv=0"},
			env:        env(),
			wantCode:   2,
			wantStderr: `ftnbi: value "0" of key "ip_rcv" is not a positive integer: annotation values are whole numbers from 1 to 9223372036854775807`,
		},
		{
			name:       "negative value",
			args:       []string{"-val", "ip_rcv=-1"},
			env:        env(),
			wantCode:   2,
			wantStderr: `ftnbi: value "-1" of key "ip_rcv" is not a positive integer: annotation values are whole numbers from 1 to 9223372036854775807`,
		},
		{
			name:       "not KEY=VALUE",
			args:       []string{"-val", "ip_rcv"},
			env:        env(),
			wantCode:   2,
			wantStderr: `ftnbi: "ip_rcv" is not KEY=VALUE: write e.g. tcp_total_drop=42`,
		},
		{
			name:       "key twice",
			args:       []string{"-val", "a=1", "a=2"},
			env:        env(),
			wantCode:   2,
			wantStderr: `ftnbi: key "a" is given twice: give each key once per call`,
		},
		{
			name:       "no pairs",
			args:       []string{"-val"},
			env:        env(),
			wantCode:   2,
			wantStderr: "ftnbi: -val needs at least one KEY=VALUE, e.g. ftnbi -val tcp_total_drop=42",
		},
		{
			name:       "with -alert",
			args:       []string{"-val", "a=1", "-alert"},
			env:        env(),
			wantCode:   2,
			wantStderr: "ftnbi: -alert and -val cannot be combined: run ftnbi once for each",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before, _ := s.values.Values(context.Background(), alertID)
			stdout, stderr, code := ftnbi(t, tc.env, tc.args...)
			if code != tc.wantCode {
				t.Errorf("exit status %d, want %d (stderr %q)", code, tc.wantCode, stderr)
			}
			if stdout != "" {
				t.Errorf("stdout %q, want nothing", stdout)
			}
			if diff := cmp.Diff(strings.TrimSuffix(stderr, "\n"), tc.wantStderr); diff != "" {
				t.Errorf("stderr (-got +want):\n%s", diff)
			}
			after, _ := s.values.Values(context.Background(), alertID)
			got := map[string]uint64{}
			for _, v := range after[len(before):] {
				got[v.Key] = v.Value
			}
			want := tc.wantStored
			if want == nil {
				want = map[string]uint64{}
			}
			if diff := cmp.Diff(got, want); diff != "" {
				t.Errorf("stored (-got +want):\n%s", diff)
			}
		})
	}
}

// TestUnreachable covers the servers ftnbi cannot use: none listening, one
// that does not answer in time, one that is not flowsentry.
func TestUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()

	stall := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-stall:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(slow.Close)
	t.Cleanup(func() { close(stall) })
	other := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(other.Close)

	cases := []struct {
		name       string
		args       []string
		env        []string
		wantStderr string
	}{
		{
			name:       "connection refused, -alert",
			args:       []string{"-s", closed, "-un", "a", "-up", "b", "-alert", "-tn", "-3m", "-j"},
			wantStderr: "ftnbi: cannot connect to http://" + closed + ": connection refused; the flowsentry server must be running and listening there (check -s or FLOWSENTRY_URL)",
		},
		{
			name:       "connection refused, -val",
			args:       []string{"-val", "a=1"},
			env:        []string{"TKN=x", "ID=1", "AID=2", "FLOWSENTRY_URL=http://" + closed},
			wantStderr: "ftnbi: cannot connect to http://" + closed + ": connection refused; the flowsentry server must be running and listening there (check -s or FLOWSENTRY_URL)",
		},
		{
			name:       "timeout",
			args:       []string{"-s", slow.URL, "-un", "a", "-up", "b", "-alert", "-timeout", "300ms"},
			wantStderr: "ftnbi: no answer from " + slow.URL + " within 300ms; check that the flowsentry server is healthy, or give more time with -timeout",
		},
		{
			name:       "not flowsentry",
			args:       []string{"-s", other.URL, "-un", "a", "-up", "b", "-alert"},
			wantStderr: "ftnbi: unexpected answer from " + other.URL + ": 404 Not Found; is it a flowsentry server?",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, stderr, code := ftnbi(t, tc.env, tc.args...)
			if code != 1 {
				t.Errorf("exit status %d, want 1", code)
			}
			if diff := cmp.Diff(strings.TrimSuffix(stderr, "\n"), tc.wantStderr); diff != "" {
				t.Errorf("stderr (-got +want):\n%s", diff)
			}
		})
	}
}

func TestParseAgo(t *testing.T) {
	cases := []struct {
		in   string
		want time.Duration
		err  string
	}{
		{"-3m", 3 * time.Minute, ""},
		{"3m", 3 * time.Minute, ""},
		{"-90s", 90 * time.Second, ""},
		{"2h", 2 * time.Hour, ""},
		{"-1d", 24 * time.Hour, ""},
		{"", 0, ""},
		{"-0m", 0, "-tn -0m selects nothing: give a time span of at least 1m"},
		{"3", 0, `-tn "3" is not a relative time: write a whole number and a unit s, m, h or d, e.g. -tn -3m`},
		{"-m", 0, `-tn "-m" is not a relative time: write a whole number and a unit s, m, h or d, e.g. -tn -3m`},
		{"+3m", 0, `-tn "+3m" is not a relative time: write a whole number and a unit s, m, h or d, e.g. -tn -3m`},
		{"--3m", 0, `-tn "--3m" is not a relative time: write a whole number and a unit s, m, h or d, e.g. -tn -3m`},
		{"1.5h", 0, `-tn "1.5h" is not a relative time: write a whole number and a unit s, m, h or d, e.g. -tn -3m`},
		{"3w", 0, `-tn "3w" is not a relative time: write a whole number and a unit s, m, h or d, e.g. -tn -3m`},
		{"999999d", 0, "-tn 999999d is too far back: give at most 106751d"},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			got, err := parseAgo("-tn", tc.in)
			msg := ""
			if err != nil {
				msg = err.Error()
			}
			if got != tc.want || msg != tc.err {
				t.Errorf("got %v, %q; want %v, %q", got, msg, tc.want, tc.err)
			}
		})
	}
}

func TestServerURL(t *testing.T) {
	cases := []struct {
		in, want, err string
	}{
		{"flowtraq.example.com", "http://flowtraq.example.com:8080", ""},
		{"127.0.0.1:9000", "http://127.0.0.1:9000", ""},
		{"::1", "http://[::1]:8080", ""},
		{"[::1]", "http://[::1]:8080", ""},
		{"[2001:db8::1]:8443", "http://[2001:db8::1]:8443", ""},
		{"http://127.0.0.1:8080", "http://127.0.0.1:8080", ""},
		{"https://sentry.example.com/flowsentry/", "https://sentry.example.com/flowsentry", ""},
		{"host:0", "", `server "host:0" is not a valid address (the port is not a number from 1 to 65535): write HOST, HOST:PORT, [IPv6]:PORT or http://HOST:PORT`},
		{"host:http", "", `server "host:http" is not a valid address (the port is not a number from 1 to 65535): write HOST, HOST:PORT, [IPv6]:PORT or http://HOST:PORT`},
		{":8080", "", `server ":8080" is not a valid address (the host is empty): write HOST, HOST:PORT, [IPv6]:PORT or http://HOST:PORT`},
		{"ftp://host", "", `server "ftp://host" is not a valid address (not an http:// or https:// URL of a host): write HOST, HOST:PORT, [IPv6]:PORT or http://HOST:PORT`},
		{"a b", "", `server "a b" is not a valid address (a malformed host or port): write HOST, HOST:PORT, [IPv6]:PORT or http://HOST:PORT`},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			got, err := serverURL(tc.in)
			msg := ""
			if err != nil {
				msg = err.Error()
			}
			if got != tc.want || msg != tc.err {
				t.Errorf("got %q, %q; want %q, %q", got, msg, tc.want, tc.err)
			}
		})
	}
}

// FuzzParse checks that any command line parses without panic into an
// error or into options that can run: a server URL, and for -val a
// request with IDs and positive values, for -alert non-negative spans.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		"-s flowtraq.example.com -un alertuser -up MASKED -alert -tn -3m -j",
		"-alert -at 1m -s [::1]:8080 -un a -up b",
		"-val udp_egress_packets=12 tcp_total_drop=3",
		"-s http://x -val a=1 -timeout 1s",
		"-tn -s -alert",
	} {
		f.Add(seed, "http://127.0.0.1:8080")
	}
	f.Fuzz(func(t *testing.T, line, url string) {
		env := map[string]string{"TKN": "x", "ID": "1", "AID": "2", "FLOWSENTRY_URL": url}
		o, err := parse(strings.Fields(line), func(k string) string { return env[k] })
		if err != nil || o.help {
			return
		}
		if !strings.HasPrefix(o.server, "http://") && !strings.HasPrefix(o.server, "https://") {
			t.Fatalf("server %q is not a URL", o.server)
		}
		if o.timeout <= 0 || o.createdAgo < 0 || o.activeAgo < 0 {
			t.Fatalf("bad spans in %+v", o)
		}
		if o.val && (o.annotation.Alert == 0 || o.annotation.Action == 0 || len(o.annotation.Values) == 0) {
			t.Fatalf("incomplete annotation %+v", o.annotation)
		}
		for k, v := range o.annotation.Values {
			if k == "" || v == 0 {
				t.Fatalf("bad pair %q=%d", k, v)
			}
		}
	})
}

// TestTLS runs ftnbi against the API over HTTPS with a certificate no
// system CA signed: trusted with -ca or FTNBI_CA, refused otherwise.
func TestTLS(t *testing.T) {
	s := newServer(t)
	ts := httptest.NewTLSServer(s.handler)
	t.Cleanup(ts.Close)
	dir := t.TempDir()
	ca, garbage := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(garbage, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	alertArgs := []string{"-s", ts.URL, "-un", "admin", "-up", "secret", "-alert", "-j"}
	valEnv := []string{"FLOWSENTRY_URL=" + ts.URL, "TKN=" + token, "ID=1004", "AID=7"}
	for _, tc := range []struct {
		name       string
		args       []string
		env        []string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{name: "-alert with -ca", args: append([]string{"-ca", ca}, alertArgs...), wantStdout: `"id": 1005`},
		{name: "-alert with FTNBI_CA", args: alertArgs, env: []string{"FTNBI_CA=" + ca}, wantStdout: `"id": 1004`},
		{name: "-val with FTNBI_CA", args: []string{"-val", "tls_calls=3"}, env: append([]string{"FTNBI_CA=" + ca}, valEnv...)},
		{name: "no CA", args: alertArgs, wantCode: 1,
			wantStderr: "is not signed by a known CA; give the server's CA certificate with -ca FILE (or FTNBI_CA)"},
		{name: "-val without CA", args: []string{"-val", "tls_calls=3"}, env: valEnv, wantCode: 1,
			wantStderr: "give the server's CA certificate with -ca FILE"},
		{name: "name the certificate does not hold", args: []string{"-ca", ca, "-s", strings.Replace(ts.URL, "127.0.0.1", "localhost", 1), "-un", "admin", "-up", "secret", "-alert"},
			wantCode: 1, wantStderr: "is not valid for localhost"},
		{name: "missing CA file", args: append([]string{"-ca", filepath.Join(dir, "none.pem")}, alertArgs...), wantCode: 2,
			wantStderr: "ftnbi: -ca: open " + filepath.Join(dir, "none.pem")},
		{name: "CA file without a certificate", args: append([]string{"-ca", garbage}, alertArgs...), wantCode: 2,
			wantStderr: "holds no PEM certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stdout, stderr, code := ftnbi(t, tc.env, tc.args...)
			if code != tc.wantCode || !strings.Contains(stdout, tc.wantStdout) || !strings.Contains(stderr, tc.wantStderr) {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit %d, stdout with %q, stderr with %q", code, stdout, stderr, tc.wantCode, tc.wantStdout, tc.wantStderr)
			}
		})
	}
	stored, _ := s.values.Values(context.Background(), alertID)
	n := 0
	for _, v := range stored {
		if v.Key == "tls_calls" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d tls_calls annotations stored over TLS, want 1 (the call with the CA)", n)
	}
}
