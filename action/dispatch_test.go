package action

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/flowsentry/flowsentry/alert"
	"github.com/flowsentry/flowsentry/annotate"
)

var ctx = context.Background()

func TestLifecycle(t *testing.T) {
	r := newRig(t, newMemStore(), newAlerts())
	r.event(alert.OpCreate, tgrpAlert(1004, 9, 1500)) // policy 9: action 7 automatic, 8 with approval
	r.event(alert.OpUpdate, tgrpAlert(1004, 9, 1600))
	r.settle()
	r.event(alert.OpUpdate, tgrpAlert(1004, 9, 1700))
	r.settle()
	r.event(alert.OpDelete, tgrpAlert(1004, 9, 1800))
	r.settle()

	want := []string{
		"email CREATE alert=1004 aid=7 cur=1500.00",
		"email UPDATE alert=1004 aid=7 cur=1600.00",
		"email UPDATE alert=1004 aid=7 cur=1700.00",
		"email DELETE alert=1004 aid=7 cur=1800.00",
	}
	if diff := cmp.Diff(r.caller.shorts(), want); diff != "" {
		t.Errorf("calls (-got +want):\n%s", diff)
	}
	if diff := cmp.Diff(r.states(), map[uint64]State{7: StateEnded, 8: StateEnded}); diff != "" {
		t.Errorf("states (-got +want):\n%s", diff)
	}
	calls, err := r.d.Calls(ctx, 7)
	if err != nil {
		t.Fatal(err)
	}
	var ops []alert.Op
	for _, c := range calls {
		ops = append(ops, c.Op)
		if c.Action != 7 || c.ExitCode != 0 || c.Start != t0 || string(c.Output) != string(c.Op)+" done\n" || c.Duration != time.Millisecond {
			t.Errorf("recorded call %+v", c)
		}
	}
	if diff := cmp.Diff(ops, []alert.Op{alert.OpCreate, alert.OpUpdate, alert.OpUpdate, alert.OpDelete}); diff != "" {
		t.Errorf("recorded calls (-got +want):\n%s", diff)
	}
	// Every call had a fresh token, saved on the action before it ran.
	tokens := map[string]bool{}
	for i, s := range r.caller.calls {
		if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(s.Env["TKN"]) {
			t.Errorf("TKN %q is not 128 bits in hex", s.Env["TKN"])
		}
		tokens[s.Env["TKN"]] = true
		if !r.caller.tokenSaved[i] {
			t.Errorf("call %d: the token was not saved before the call", i)
		}
	}
	if len(tokens) != 4 {
		t.Errorf("%d distinct tokens for 4 calls", len(tokens))
	}
	got := r.caller.calls[0].Env
	for k, v := range map[string]string{
		"EMAIL_BODY": "instance body", "EMAIL_MAILPORT": "587", "AID": "7", "ID": "1004",
		"FLOWSENTRY_URL": "http://127.0.0.1:8080", "PATH": "/opt/flowsentry/bin:/usr/local/bin:/usr/bin:/bin",
	} {
		if got[k] != v {
			t.Errorf("CREATE environment %s=%q, want %q", k, got[k], v)
		}
	}
}

func TestOverridesOfThePolicy(t *testing.T) {
	r := newRig(t, newMemStore(), newAlerts())
	r.event(alert.OpCreate, tgrpAlert(1004, 7, 1500))
	r.waitCalls(1)
	if got := r.caller.calls[0].Env["EMAIL_BODY"]; got != "from policy 7" {
		t.Errorf("EMAIL_BODY = %q, want the policy's override", got)
	}
}

func TestOrderUnderSlowPlugin(t *testing.T) {
	r := newRig(t, newMemStore(), newAlerts())
	release := make(chan struct{})
	r.caller.gate[alert.OpCreate] = release
	r.event(alert.OpCreate, tgrpAlert(1004, 7, 1500)) // action 7, its CREATE hangs
	r.waitRunning(7)
	for pps := 1600.0; pps <= 1900; pps += 100 {
		r.event(alert.OpUpdate, tgrpAlert(1004, 7, pps))
	}
	r.event(alert.OpDelete, tgrpAlert(1004, 7, 2000))
	r.waitRouted()

	// Another action is not held up by the slow one.
	r.caller.mu.Lock()
	delete(r.caller.gate, alert.OpCreate)
	r.caller.mu.Unlock()
	r.event(alert.OpCreate, tgrpAlert(1005, 7, 10)) // action 8
	r.waitCalls(1)
	if diff := cmp.Diff(r.caller.shorts(), []string{"email CREATE alert=1005 aid=8 cur=10.00"}); diff != "" {
		t.Fatalf("calls while action 7 hangs (-got +want):\n%s", diff)
	}

	close(release)
	r.settle()
	want := []string{
		"email CREATE alert=1004 aid=7 cur=1500.00",
		"email UPDATE alert=1004 aid=7 cur=1900.00", // queued UPDATEs: the newest only
		"email DELETE alert=1004 aid=7 cur=2000.00",
	}
	if diff := cmp.Diff(r.caller.shortsOf("7"), want); diff != "" {
		t.Errorf("calls of action 7 (-got +want):\n%s", diff)
	}
}

func TestOperations(t *testing.T) {
	type step struct {
		op      string // "approve", "reject", "stop", "restart", or an alert op
		pps     float64
		wantErr string
	}
	for _, tc := range []struct {
		name   string
		policy uint64
		steps  []step
		calls  []string
		state  State
	}{
		{
			name: "approve: CREATE with the alert's current state, then its events", policy: 8,
			steps: []step{
				{op: "UPDATE", pps: 1600}, {op: "approve"}, {op: "UPDATE", pps: 1700}, {op: "DELETE", pps: 1800},
			},
			calls: []string{
				"mitigate CREATE alert=1004 aid=7 cur=1600.00",
				"mitigate UPDATE alert=1004 aid=7 cur=1700.00",
				"mitigate DELETE alert=1004 aid=7 cur=1800.00",
			},
			state: StateEnded,
		},
		{
			name: "waiting: the alert's events send nothing; DELETE ends it", policy: 8,
			steps: []step{{op: "UPDATE", pps: 1600}, {op: "DELETE", pps: 1700}, {op: "approve", wantErr: "cannot approve action 7: it is ended; only restart applies"}},
			state: StateEnded,
		},
		{
			name: "reject: nothing sent, nothing applies after", policy: 8,
			steps: []step{
				{op: "reject"}, {op: "UPDATE", pps: 1600},
				{op: "approve", wantErr: "cannot approve action 7: it is rejected; nothing applies to a rejected action"},
				{op: "restart", wantErr: "cannot restart action 7: it is rejected; nothing applies to a rejected action"},
				{op: "DELETE", pps: 1700},
			},
			state: StateRejected,
		},
		{
			name: "stop: DELETE now, the alert's events no longer sent; restart: CREATE again", policy: 7,
			steps: []step{
				{op: "reject", wantErr: "cannot reject action 7: it is in_progress; only stop applies"},
				{op: "stop"},
				{op: "stop", wantErr: "cannot stop action 7: it is ended; only restart applies"},
				{op: "UPDATE", pps: 1600},
				{op: "restart"},
				{op: "UPDATE", pps: 1700},
				{op: "DELETE", pps: 1800},
				{op: "restart", wantErr: "cannot restart action 7 of alert 1004: the alert has ended; restart applies only while the alert is open"},
			},
			calls: []string{
				"email CREATE alert=1004 aid=7 cur=1500.00",
				"email DELETE alert=1004 aid=7 cur=1500.00",
				"email CREATE alert=1004 aid=7 cur=1600.00",
				"email UPDATE alert=1004 aid=7 cur=1700.00",
				"email DELETE alert=1004 aid=7 cur=1800.00",
			},
			state: StateEnded,
		},
		{
			name: "unknown action", policy: 7,
			steps: []step{{op: "approve:42", wantErr: "action 42: action 42: action not found"}},
			calls: []string{"email CREATE alert=1004 aid=7 cur=1500.00"},
			state: StateInProgress,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, newMemStore(), newAlerts())
			r.event(alert.OpCreate, tgrpAlert(1004, tc.policy, 1500))
			r.settle()
			for _, s := range tc.steps {
				var err error
				switch s.op {
				case "approve":
					err = r.d.Approve(ctx, 7)
				case "approve:42":
					err = r.d.Approve(ctx, 42)
				case "reject":
					err = r.d.Reject(ctx, 7)
				case "stop":
					err = r.d.StopAction(ctx, 7)
				case "restart":
					err = r.d.Restart(ctx, 7)
				default:
					r.event(alert.Op(s.op), tgrpAlert(1004, tc.policy, s.pps))
				}
				if (err == nil) != (s.wantErr == "") || err != nil && err.Error() != s.wantErr {
					t.Fatalf("%s: error %v, want %q", s.op, err, s.wantErr)
				}
				r.settle()
			}
			if diff := cmp.Diff(r.caller.shorts(), tc.calls); diff != "" {
				t.Errorf("calls (-got +want):\n%s", diff)
			}
			if got := r.store.state(7); got != tc.state {
				t.Errorf("stored state %s, want %s", got, tc.state)
			}
			a, err := r.d.Action(ctx, 7)
			if err != nil || a.State != tc.state {
				t.Errorf("Action(7) = %s, %v; want %s", a.State, err, tc.state)
			}
		})
	}
}

func TestStateErrorKinds(t *testing.T) {
	r := newRig(t, newMemStore(), newAlerts())
	r.event(alert.OpCreate, tgrpAlert(1004, 8, 1500))
	r.settle()
	var se *StateError
	if err := r.d.StopAction(ctx, 7); !errors.As(err, &se) || se.State != StateWaiting || err.Error() != "cannot stop action 7: it is waiting_approval; only approve or reject applies" {
		t.Errorf("StopAction of a waiting action: %v", err)
	}
	if err := r.d.Approve(ctx, 42); !errors.Is(err, ErrNotFound) {
		t.Errorf("Approve(42): %v, want ErrNotFound", err)
	}
	r.event(alert.OpDelete, tgrpAlert(1004, 8, 1500))
	r.settle()
	if err := r.d.Restart(ctx, 7); !errors.Is(err, ErrAlertEnded) {
		t.Errorf("Restart after the alert ended: %v, want ErrAlertEnded", err)
	}
}

func TestFailingPlugin(t *testing.T) {
	r := newRig(t, newMemStore(), newAlerts())
	r.caller.exit[alert.OpCreate] = 1
	r.event(alert.OpCreate, tgrpAlert(1004, 7, 1500))
	r.event(alert.OpUpdate, tgrpAlert(1004, 7, 1600))
	r.settle()
	if diff := cmp.Diff(r.caller.shorts(), []string{
		"email CREATE alert=1004 aid=7 cur=1500.00",
		"email UPDATE alert=1004 aid=7 cur=1600.00",
	}); diff != "" {
		t.Errorf("calls (-got +want):\n%s", diff)
	}
	calls, _ := r.d.Calls(ctx, 7)
	if len(calls) != 2 || calls[0].ExitCode != 1 || calls[0].Err != "" || calls[1].ExitCode != 0 {
		t.Errorf("recorded calls %+v", calls)
	}
	for _, c := range []struct {
		op, result string
		want       float64
	}{{"CREATE", "failed", 1}, {"UPDATE", "ok", 1}, {"CREATE", "ok", 0}} {
		if got := testutil.ToFloat64(r.d.metrics.calls.WithLabelValues(c.op, c.result)); got != c.want {
			t.Errorf("calls_total{op=%s,result=%s} = %v, want %v", c.op, c.result, got, c.want)
		}
	}
}

// TestLog checks that alert transitions and plugin calls are logged, and
// failed calls with their reason.
func TestLog(t *testing.T) {
	const (
		transition = `level=INFO msg="alert transition" op=%s alert=1004 alert_type=threshold_exceeded policy=7`
		call       = `alert=1004 alert_type=threshold_exceeded policy=7 action=7 plugin=email op=%s exit_code=%d duration=1ms result=%s`
	)
	f := fmt.Sprintf
	for _, tc := range []struct {
		name  string
		setup func(*caller)
		want  []string
	}{
		{
			name: "successful calls",
			want: []string{
				f(transition, "CREATE"), `level=INFO msg="plugin call" ` + f(call, "CREATE", 0, "ok"),
				f(transition, "UPDATE"), `level=INFO msg="plugin call" ` + f(call, "UPDATE", 0, "ok"),
				f(transition, "DELETE"), `level=INFO msg="plugin call" ` + f(call, "DELETE", 0, "ok"),
			},
		},
		{
			name:  "exit code",
			setup: func(c *caller) { c.exit[alert.OpUpdate] = 3 },
			want: []string{
				f(transition, "CREATE"), `level=INFO msg="plugin call" ` + f(call, "CREATE", 0, "ok"),
				f(transition, "UPDATE"), `level=WARN msg="plugin call failed" ` + f(call, "UPDATE", 3, "failed") +
					` err="exit status 3; the plugin's output, recorded with the call, may tell why"`,
				f(transition, "DELETE"), `level=INFO msg="plugin call" ` + f(call, "DELETE", 0, "ok"),
			},
		},
		{
			name: "timeout, signal, exec failure",
			setup: func(c *caller) {
				c.fail[alert.OpCreate], c.fail[alert.OpUpdate] = "timeout", "signal: segmentation fault"
				c.fail[alert.OpDelete] = "executable missing: /plugins/email/plugin.sh (or the interpreter its #! line names)"
			},
			want: []string{
				f(transition, "CREATE"), `level=WARN msg="plugin call failed" ` + f(call, "CREATE", -1, "failed") + ` err=timeout`,
				f(transition, "UPDATE"), `level=WARN msg="plugin call failed" ` + f(call, "UPDATE", -1, "failed") + ` err="signal: segmentation fault"`,
				f(transition, "DELETE"), `level=WARN msg="plugin call failed" ` + f(call, "DELETE", -1, "failed") +
					` err="executable missing: /plugins/email/plugin.sh (or the interpreter its #! line names)"`,
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, newMemStore(), newAlerts())
			if tc.setup != nil {
				tc.setup(r.caller)
			}
			for _, op := range []alert.Op{alert.OpCreate, alert.OpUpdate, alert.OpDelete} {
				r.event(op, tgrpAlert(1004, 7, 1500))
				r.settle()
			}
			if diff := cmp.Diff(r.logs.lines(), tc.want); diff != "" {
				t.Errorf("log (-got +want):\n%s", diff)
			}
		})
	}
}

func TestToken(t *testing.T) {
	r := newRig(t, newMemStore(), newAlerts())
	release := make(chan struct{})
	r.caller.gate[alert.OpCreate] = release
	r.event(alert.OpCreate, tgrpAlert(1004, 7, 1500))
	r.waitRunning(7)
	r.clock.Set(t0.Add(time.Hour)) // a long call: the token stays valid while it runs
	g, err := r.d.Token(ctx, 1004, 7)
	if err != nil || g.Token == "" || g.Until != t0.Add(time.Hour+TokenLifetime) || g.Alert != annotate.AlertOpen {
		t.Errorf("Token while the call runs: %+v, %v", g, err)
	}
	close(release)
	r.settle()
	created := g.Token
	g, err = r.d.Token(ctx, 1004, 7)
	if err != nil || g.Token != created || g.Until != t0.Add(time.Hour+TokenLifetime) {
		t.Errorf("Token after the call: %+v, %v; want the same token until the call's end + 300 s", g, err)
	}

	r.clock.Set(t0.Add(2 * time.Hour))
	r.event(alert.OpDelete, tgrpAlert(1004, 7, 1500))
	r.settle()
	g, err = r.d.Token(ctx, 1004, 7) // from the store: the action ended
	if err != nil || g.Token == created || g.Until != t0.Add(2*time.Hour+TokenLifetime) || g.Alert != annotate.AlertEnded {
		t.Errorf("Token after the DELETE: %+v, %v; want a new token, ended alert", g, err)
	}
	for _, c := range []struct {
		name          string
		alert, action uint64
	}{{"unknown action", 1004, 42}, {"action of another alert", 1005, 7}} {
		if _, err := r.d.Token(ctx, c.alert, c.action); !errors.Is(err, annotate.ErrUnknownAction) {
			t.Errorf("%s: %v, want annotate.ErrUnknownAction", c.name, err)
		}
	}
	r.alerts.mu.Lock()
	delete(r.alerts.byID, 1004)
	r.alerts.mu.Unlock()
	if g, err := r.d.Token(ctx, 1004, 7); err != nil || g.Alert != annotate.AlertMissing {
		t.Errorf("alert gone: %+v, %v; want AlertMissing", g, err)
	}
	var _ annotate.TokenChecker = r.d
}

func TestMetrics(t *testing.T) {
	r := newRig(t, newMemStore(), newAlerts())
	release := make(chan struct{})
	r.caller.gate[alert.OpCreate] = release
	r.event(alert.OpCreate, tgrpAlert(1004, 9, 1500))
	r.waitRunning(7)
	r.event(alert.OpUpdate, tgrpAlert(1004, 9, 1600))
	r.event(alert.OpUpdate, tgrpAlert(1004, 9, 1700))
	r.event(alert.OpUpdate, tgrpAlert(1005, 9, 1700)) // no such alert: nothing to do
	r.waitRouted()
	want := `
# HELP flowsentry_action_actions Open actions by state (waiting_approval, in_progress).
# TYPE flowsentry_action_actions gauge
flowsentry_action_actions{state="in_progress"} 1
flowsentry_action_actions{state="waiting_approval"} 1
# HELP flowsentry_action_calls_queued Alert events not routed yet plus plugin calls waiting behind the running call of their action.
# TYPE flowsentry_action_calls_queued gauge
flowsentry_action_calls_queued 1
`
	if err := testutil.CollectAndCompare(r.d, strings.NewReader(want), "flowsentry_action_actions", "flowsentry_action_calls_queued"); err != nil {
		t.Error(err)
	}
	close(release)
	r.settle()
}
