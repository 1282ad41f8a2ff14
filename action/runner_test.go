package action

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/flowsentry/flowsentry/alert"
	"github.com/flowsentry/flowsentry/plugin"
)

// recorderInstances is instance 1 of the testdata recorder plugin.
type recorderInstances map[string]string

func (v recorderInstances) Get(id uint64) (plugin.Instance, bool) {
	return plugin.Instance{ID: id, CID: 1, Plugin: "recorder", Values: v}, id == 1
}

func TestRealRunner(t *testing.T) {
	reg, problems := plugin.Load("testdata/plugins")
	if len(problems) > 0 {
		t.Fatalf("loading testdata/plugins: %v", problems)
	}
	runner, err := plugin.NewRunner(plugin.DefaultRunnerConfig(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	record := filepath.Join(t.TempDir(), "calls.log")
	store := newMemStore()
	logs := &logBuffer{}
	// The server's environment: HOME, LANG, TZ and the listed MAIL_RELAY
	// pass; SECRET_TOKEN, not listed, and the instance's FAIL_ON do not.
	for k, v := range map[string]string{
		"HOME": "/var/lib/flowsentry", "LANG": "C.UTF-8", "TZ": "Europe/Amsterdam",
		"MAIL_RELAY": "smtp.example:25", "SECRET_TOKEN": "s3cret", "FAIL_ON": "never",
	} {
		t.Setenv(k, v)
	}
	deps := Deps{
		Store: store, Policies: testPolicies, Alerts: newAlerts(), Log: logs.logger(),
		Instances: recorderInstances{"RECORD_FILE": record, "FAIL_ON": "CREATE"},
		Caller:    PluginCaller{Runner: runner, Registry: reg},
		URL:       "http://127.0.0.1:8080", BinDir: "/opt/flowsentry/bin",
		CAFile: "/etc/flowsentry/cert.pem", Env: []string{"MAIL_RELAY", "FAIL_ON", "FLOWSENTRY_TEST_UNSET"},
	}
	d, err := New(deps)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer d.Stop()
	r := &rig{t: t, store: store, d: d}
	for _, ev := range []struct {
		op  alert.Op
		pps float64
	}{{alert.OpCreate, 1500}, {alert.OpUpdate, 1600}, {alert.OpDelete, 1700}} {
		al := tgrpAlert(1004, 9, ev.pps) // policy 9: instance 1 without overrides
		if ev.op == alert.OpDelete {
			al.Ended = t0.Add(time.Hour)
		}
		d.Alert(alert.Event{Op: ev.op, Alert: al})
	}
	r.settle()

	calls, err := d.Calls(ctx, 7)
	if err != nil {
		t.Fatal(err)
	}
	type outcome struct {
		Op       alert.Op
		ExitCode int
		Output   string
	}
	var got []outcome
	for _, c := range calls {
		got = append(got, outcome{c.Op, c.ExitCode, string(c.Output)})
	}
	want := []outcome{
		{alert.OpCreate, 3, "called with CREATE\n"}, // a failed call does not stop the action
		{alert.OpUpdate, 0, "called with UPDATE\n"},
		{alert.OpDelete, 0, "called with DELETE\n"},
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("recorded calls (-got +want):\n%s", diff)
	}

	// The real runner gives no Err for an exit code: the log says it.
	const call = `alert=1004 alert_type=threshold_exceeded policy=9 action=7 plugin=recorder op=%s exit_code=%d duration=D result=%s`
	wantLog := []string{
		`level=INFO msg="alert transition" op=CREATE alert=1004 alert_type=threshold_exceeded policy=9`,
		`level=INFO msg="alert transition" op=UPDATE alert=1004 alert_type=threshold_exceeded policy=9`,
		`level=INFO msg="alert transition" op=DELETE alert=1004 alert_type=threshold_exceeded policy=9`,
		`level=WARN msg="plugin call failed" ` + fmt.Sprintf(call, "CREATE", 3, "failed") + ` err="exit status 3; the plugin's output, recorded with the call, may tell why"`,
		`level=INFO msg="plugin call" ` + fmt.Sprintf(call, "UPDATE", 0, "ok"),
		`level=INFO msg="plugin call" ` + fmt.Sprintf(call, "DELETE", 0, "ok"),
	}
	// The transitions first, then the calls of action 7: the router logs
	// while the calls run (and that instance 2 of policy 9 is missing).
	var gotLog []string
	for _, l := range logs.lines() {
		if strings.Contains(l, "alert transition") {
			gotLog = append(gotLog, l)
		}
	}
	for _, l := range logs.lines() {
		if strings.Contains(l, " action=7 ") {
			gotLog = append(gotLog, l)
		}
	}
	if diff := cmp.Diff(gotLog, wantLog); diff != "" {
		t.Errorf("log (-got +want):\n%s", diff)
	}

	data, err := os.ReadFile(record)
	if err != nil {
		t.Fatal(err)
	}
	blocks := strings.Split(strings.TrimPrefix(string(data), "== "), "== ")
	if len(blocks) != 3 {
		t.Fatalf("the plugin ran %d times, want 3:\n%s", len(blocks), data)
	}
	// The environment is exactly the contract's and the server's passed
	// variables (the shell adds PWD and may add SHLVL and _).
	lines := strings.Split(strings.TrimSpace(blocks[1]), "\n")
	var gotEnv []string
	for _, l := range lines[1:] {
		if k, _, _ := strings.Cut(l, "="); k != "PWD" && k != "SHLVL" && k != "_" {
			gotEnv = append(gotEnv, l)
		}
	}
	al := tgrpAlert(1004, 9, 1600)
	tkn := ""
	for _, l := range gotEnv {
		if v, ok := strings.CutPrefix(l, "TKN="); ok {
			tkn = v
		}
	}
	wantEnv := env(&al, 7, tkn, map[string]string{"RECORD_FILE": record, "FAIL_ON": "CREATE"}, nil, deps.shared())
	for _, v := range []string{"HOME=/var/lib/flowsentry", "LANG=C.UTF-8", "TZ=Europe/Amsterdam", "MAIL_RELAY=smtp.example:25", "FAIL_ON=CREATE", "FTNBI_CA=/etc/flowsentry/cert.pem"} {
		if !slices.Contains(gotEnv, v) {
			t.Errorf("the plugin's environment lacks %s", v)
		}
	}
	if diff := cmp.Diff(append([]string{lines[0]}, gotEnv...), append([]string{"UPDATE"}, wantEnv...)); diff != "" {
		t.Errorf("the plugin's argument and environment (-got +want):\n%s", diff)
	}
}
