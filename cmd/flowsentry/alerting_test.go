package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowsentry/flowsentry/gen"
)

// call is one plugin call as the recorder plugin logged it.
type call struct {
	op  string
	env map[string]string
	out []string // lines that are not VAR=value
}

// readCalls parses the recorder plugin's log.
func readCalls(t *testing.T, path string) []call {
	t.Helper()
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var calls []call
	var cur *call
	for _, line := range strings.Split(string(data), "\n") {
		switch {
		case strings.HasPrefix(line, "CALL "):
			f := strings.Fields(line)
			calls = append(calls, call{op: f[1], env: map[string]string{}})
			cur = &calls[len(calls)-1]
		case line == "END":
			cur = nil
		case cur != nil:
			if k, v, ok := strings.Cut(line, "="); ok && regexp.MustCompile(`^[A-Z_][A-Z0-9_]*$`).MatchString(k) {
				cur.env[k] = v
			} else {
				cur.out = append(cur.out, line)
			}
		}
	}
	// The last call may still be being written.
	if cur != nil {
		calls = calls[:len(calls)-1]
	}
	return calls
}

// floodNetFlow sends NetFlow v9 toward traffic group 1 until stop is set.
func floodNetFlow(t *testing.T, addr string, stop *atomic.Bool) chan struct{} {
	t.Helper()
	g, err := gen.New(gen.Config{Protocol: gen.NetFlowV9, SrcPrefix: netip.MustParsePrefix("198.18.0.0/15"),
		DstPrefix: netip.MustParsePrefix("10.1.0.0/16"), DstAddrs: 50, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer conn.Close()
		var buf []byte
		for !stop.Load() {
			for range 20 {
				buf = g.Append(buf[:0], time.Now().UnixNano())
				_, _ = conn.Write(buf)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	return done
}

// TestAlertEndToEnd drives traffic group 1 over a threshold with real
// NetFlow over UDP and follows the alert through its plugin: CREATE with
// every variable of the contract, UPDATE (during which the plugin
// annotates the alert with ftnbi -val), DELETE after the shortened quiet
// period; ftnbi -alert -j lists the alert, and the API shows the
// annotations.
func TestAlertEndToEnd(t *testing.T) {
	logFile := filepath.Join(t.TempDir(), "calls.log")
	s := startServer(t, alertConfig(t, logFile, false))
	var stop atomic.Bool
	done := floodNetFlow(t, s.netflow, &stop)
	defer func() { stop.Store(true); <-done }()

	var calls []call
	waitFor(t, func() bool {
		calls = readCalls(t, logFile)
		return len(calls) >= 2 && calls[1].op == "UPDATE"
	}, "CREATE then UPDATE from the plugin", s)
	stop.Store(true)
	<-done

	create := calls[0]
	if create.op != "CREATE" {
		t.Fatalf("first call %q, want CREATE", create.op)
	}
	id := create.env["ID"]
	want := map[string]string{
		"ALERT_TYPE": "threshold_exceeded", "OBJECT_TYPE": "TGRP", "TGRP": "1", "TGRP_NAME": "internal",
		"THRESHOLD_TYPE": "packets_in", "THRESHOLD_VALUE": "100.0", "CID": "0", "CID_NAME": "default",
		"SEVERITY": "4", "LOG_FILE": logFile, "NOTE": "from the policy",
		"FLOWSENTRY_URL": s.base,
	}
	for k, v := range want {
		if got := create.env[k]; got != v {
			t.Errorf("CREATE %s=%q, want %q", k, got, v)
		}
	}
	patterns := map[string]string{
		"ID": `^[1-9][0-9]*$`, "AID": `^[1-9][0-9]*$`, "TKN": `^[0-9a-f]{32}$`,
		"EARLIEST_UTC": `^[0-9]{10}\.[0-9]{6}$`, "LATEST_UTC": `^[0-9]{10}\.[0-9]{6}$`,
	}
	for _, c := range []string{"PACKETS_IN", "PACKETS_OUT", "BYTES_IN", "BYTES_OUT", "NEW_CONN"} {
		for _, p := range []string{"PEAK_", "AVG_", "CUR_"} {
			patterns[p+c] = `^[0-9]+\.[0-9]{2}$`
		}
	}
	for k, re := range patterns {
		if !regexp.MustCompile(re).MatchString(create.env[k]) {
			t.Errorf("CREATE %s=%q does not match %s", k, create.env[k], re)
		}
	}
	if _, ok := create.env["PEAK_UNIQ_LOCAL_ENDPOINT"]; ok {
		t.Error("uniq counters belong to TGRP+IP alerts only")
	}
	if !strings.HasPrefix(create.env["PATH"], filepath.Dir(binary)+":") {
		t.Errorf("PATH %q does not start with the folder holding ftnbi", create.env["PATH"])
	}
	if cur := create.env["CUR_PACKETS_IN"]; cur == "0.00" {
		t.Error("CUR_PACKETS_IN is 0 on an alert about packets in")
	}
	update := calls[1]
	if update.env["ID"] != id || update.env["AID"] != create.env["AID"] {
		t.Errorf("UPDATE for alert %s action %s, CREATE was %s %s", update.env["ID"], update.env["AID"], id, create.env["AID"])
	}
	if !slices.Contains(update.out, "FTNBI 0") {
		t.Errorf("ftnbi -val in the plugin failed: %q", update.out)
	}

	// With the traffic stopped, the alert is deleted after the quiet period.
	waitFor(t, func() bool {
		calls = readCalls(t, logFile)
		return len(calls) > 0 && calls[len(calls)-1].op == "DELETE"
	}, "DELETE after the quiet period", s)
	del := calls[len(calls)-1]
	if del.env["ID"] != id {
		t.Errorf("DELETE for alert %s, want %s", del.env["ID"], id)
	}
	for _, c := range calls[1 : len(calls)-1] {
		if c.op != "UPDATE" {
			t.Errorf("between CREATE and DELETE only UPDATEs, got %s", c.op)
		}
	}

	// ftnbi lists the alert in the manual's JSON.
	ftnbi := filepath.Join(filepath.Dir(binary), "ftnbi")
	out, err := exec.Command(ftnbi, "-s", strings.TrimPrefix(s.base, "http://"), "-un", "admin", "-up", "s3cret-pass", "-alert", "-tn", "-3m", "-j").Output()
	if err != nil {
		t.Fatalf("ftnbi -alert: %v", err)
	}
	var listed []map[string]any
	if err := json.Unmarshal(out, &listed); err != nil {
		t.Fatalf("ftnbi printed no JSON array: %v\n%s", err, out)
	}
	found := false
	for _, a := range listed {
		if fmt.Sprint(a["id"]) == id {
			found = true
			if a["alert_type"] != "threshold_exceeded" || fmt.Sprint(a["tgrp"]) != "1" || a["tgrp_name"] != "internal" || fmt.Sprint(a["CID"]) != "0" || a["version"] != float64(1) {
				t.Errorf("ftnbi alert fields: %v", a)
			}
			if _, ok := a["current_values"].(map[string]any)["packets_in"]; !ok {
				t.Errorf("ftnbi alert without current_values.packets_in: %v", a)
			}
		}
	}
	if !found {
		t.Fatalf("ftnbi -alert -tn -3m does not list alert %s:\n%s", id, out)
	}
	if _, _, code := runCmd(t, ftnbi, "-s", strings.TrimPrefix(s.base, "http://"), "-un", "admin", "-up", "wrong", "-alert", "-tn", "-3m", "-j"); code == 0 {
		t.Error("ftnbi with a wrong password exited 0")
	}

	// The annotation the plugin stored is on the alert.
	req, _ := http.NewRequest("GET", s.base+"/api/v1/alerts/"+id, nil)
	req.SetBasicAuth("admin", "s3cret-pass")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var detail struct {
		Actions []struct {
			State string `json:"state"`
			Calls []struct {
				Op       string `json:"op"`
				ExitCode int    `json:"exit_code"`
			} `json:"calls"`
		} `json:"actions"`
		Annotations json.RawMessage `json:"annotations"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&detail); err != nil {
		t.Fatal(err)
	}
	if len(detail.Actions) != 1 || detail.Actions[0].State != "ended" || len(detail.Actions[0].Calls) < 3 {
		t.Errorf("alert %s actions: %+v", id, detail.Actions)
	}
	ann := string(detail.Annotations)
	for _, wantAnn := range []string{`"packets_seen"`, "42", "43", `"drops"`, `"Volume (Packets)"`} {
		if !strings.Contains(ann, wantAnn) {
			t.Errorf("annotations lack %s: %s", wantAnn, ann)
		}
	}
}

// runCmd runs a program to its end and returns its output and exit code.
func runCmd(t *testing.T, bin string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var o, e strings.Builder
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return o.String(), e.String(), ee.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return o.String(), e.String(), 0
}

// alertConfig is the configuration of the alerting tests: the recorder
// plugin logging to logFile, a packets-in policy on traffic group 1, and
// shortened lifecycle timings.
func alertConfig(t *testing.T, logFile string, approval bool) string {
	t.Helper()
	plugins, err := filepath.Abs("testdata/plugins")
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf(`plugin_dir: %s
admin:
  user: admin
  password: s3cret-pass
alerts:
  update_interval: 2s
  quiet_period: 5s
  max_age: 1h
instances:
  - id: 1
    cid: 0
    plugin: recorder
    name: record calls
    values:
      LOG_FILE: %s
policies:
  - id: 50
    name: TG packets in
    cid: 0
    family: threshold
    target: traffic_groups
    object_type: TGRP
    threshold_type: packets_in
    threshold: 100
    severity: 4
    actions:
      - instance: 1
        approval: %t
        overrides: {NOTE: "from the policy"}
`, plugins, logFile, approval)
}

// authGet reads an API path as the test administrator.
func (s *server) authGet(t *testing.T, path string, v any) {
	t.Helper()
	req, _ := http.NewRequest("GET", s.base+path, nil)
	req.SetBasicAuth("admin", "s3cret-pass")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
}

// TestAlertApprovalAndCrash attaches an action that waits for approval:
// nothing is called until `flowsentry action approve`; then the server is
// stopped with SIGTERM and later killed with SIGKILL in the middle of the
// open alert, restarted each time, and the same alert (same ID) still gets
// its UPDATEs and its DELETE.
func TestAlertApprovalAndCrash(t *testing.T) {
	logFile := filepath.Join(t.TempDir(), "calls.log")
	s := startServer(t, alertConfig(t, logFile, true))
	var stop atomic.Bool
	done := floodNetFlow(t, s.netflow, &stop)
	defer func() { stop.Store(true); <-done }()

	var alerts []struct {
		ID uint64 `json:"id"`
	}
	waitFor(t, func() bool { s.authGet(t, "/api/v1/alerts", &alerts); return len(alerts) > 0 }, "an alert", s)
	id := alerts[0].ID
	var detail struct {
		Actions []struct {
			ID    uint64 `json:"id"`
			State string `json:"state"`
		} `json:"actions"`
	}
	s.authGet(t, fmt.Sprintf("/api/v1/alerts/%d", id), &detail)
	if len(detail.Actions) != 1 || detail.Actions[0].State != "waiting_approval" {
		t.Fatalf("alert %d actions: %+v", id, detail.Actions)
	}
	aid := fmt.Sprint(detail.Actions[0].ID)
	time.Sleep(3 * time.Second) // an UPDATE would be due: nothing may be called
	if calls := readCalls(t, logFile); len(calls) != 0 {
		t.Fatalf("the plugin was called before approval: %+v", calls[0])
	}
	cli := func(args ...string) (string, string, int) {
		return runCmd(t, binary, append(append([]string{"action"}, args...),
			"--server", s.base, "--user", "admin", "--password", "s3cret-pass")...)
	}
	if _, errOut, code := cli("approve", aid); code != 0 {
		t.Fatalf("flowsentry action approve: %d %s", code, errOut)
	}
	if _, errOut, code := cli("approve", aid); code == 0 || !strings.Contains(errOut, "in_progress") {
		t.Errorf("a second approve must fail naming the state: %d %s", code, errOut)
	}
	var calls []call
	waitFor(t, func() bool { calls = readCalls(t, logFile); return len(calls) >= 1 }, "CREATE after approval", s)
	if calls[0].op != "CREATE" || calls[0].env["ID"] != fmt.Sprint(id) || calls[0].env["AID"] != aid {
		t.Fatalf("after approval: %s ID=%s AID=%s", calls[0].op, calls[0].env["ID"], calls[0].env["AID"])
	}
	out, _, code := cli("show", aid)
	if code != 0 || !strings.Contains(out, `"state": "in_progress"`) {
		t.Errorf("action show: %d %s", code, out)
	}

	// A clean stop (SIGTERM), then a crash (SIGKILL), each while the alert
	// is open; after each restart on the same data the alert goes on.
	for _, stopServer := range []func(*testing.T){s.term, s.kill} {
		stopServer(t)
		before := len(readCalls(t, logFile))
		s.launch(t)
		waitFor(t, func() bool {
			calls = readCalls(t, logFile)
			return len(calls) > before && calls[len(calls)-1].op == "UPDATE"
		}, "an UPDATE after the restart", s)
	}
	stop.Store(true)
	<-done
	waitFor(t, func() bool {
		calls = readCalls(t, logFile)
		return calls[len(calls)-1].op == "DELETE"
	}, "the DELETE after the restart", s)
	for _, c := range calls {
		if c.env["ID"] != fmt.Sprint(id) || c.env["AID"] != aid {
			t.Errorf("%s for alert %s action %s; the alert must keep ID %d and action %s across the crash", c.op, c.env["ID"], c.env["AID"], id, aid)
		}
	}
	if n := strings.Count(strings.Join(opsOf(calls), " "), "CREATE"); n != 1 {
		t.Errorf("calls %v: want one CREATE across the restarts", opsOf(calls))
	}
}

func opsOf(calls []call) []string {
	var ops []string
	for _, c := range calls {
		ops = append(ops, c.op)
	}
	return ops
}

// TestStopLetsRunningCallsAnnotate sends SIGTERM while a plugin's CREATE
// is still running: the server stops the collector, the pipeline and the
// actions (waiting for the call) before the HTTP server, so the call's
// `ftnbi -val` still succeeds, and the annotation is there after a
// restart.
func TestStopLetsRunningCallsAnnotate(t *testing.T) {
	logFile := filepath.Join(t.TempDir(), "calls.log")
	cfg := strings.Replace(alertConfig(t, logFile, false), "      LOG_FILE: "+logFile+"\n",
		"      LOG_FILE: "+logFile+"\n      SLOW_CREATE: 2\n", 1)
	s := startServer(t, cfg)
	var stop atomic.Bool
	done := floodNetFlow(t, s.netflow, &stop)
	waitFor(t, func() bool {
		_, err := os.Stat(logFile + ".started")
		return err == nil
	}, "the plugin's CREATE to start", s)
	stop.Store(true)
	<-done
	s.term(t)

	calls := readCalls(t, logFile)
	if len(calls) == 0 || calls[0].op != "CREATE" {
		t.Fatalf("calls %+v, want a CREATE; logs:\n%s", calls, s.logs)
	}
	if !slices.Contains(calls[0].out, "FTNBI 0") {
		t.Fatalf("ftnbi -val during shutdown failed: %q; logs:\n%s", calls[0].out, s.logs)
	}
	s.launch(t)
	var detail struct {
		Annotations json.RawMessage `json:"annotations"`
	}
	s.authGet(t, "/api/v1/alerts/"+calls[0].env["ID"], &detail)
	var compact bytes.Buffer
	if err := json.Compact(&compact, detail.Annotations); err != nil {
		t.Fatal(err)
	}
	if ann := compact.String(); !strings.Contains(ann, `"key":"packets_seen"`) || !strings.Contains(ann, `"value":7}`) {
		t.Errorf("annotations after the restart lack packets_seen 7: %s", ann)
	}
}
