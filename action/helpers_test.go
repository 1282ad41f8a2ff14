package action

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowsentry/flowsentry/alert"
	"github.com/flowsentry/flowsentry/plugin"
)

// memStore is an in-memory Store.
type memStore struct {
	mu      sync.Mutex
	next    uint64
	actions map[uint64]Action
	calls   []Call
}

func newMemStore() *memStore { return &memStore{next: 6, actions: map[uint64]Action{}} }

func (s *memStore) NextActionID(context.Context) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.next++
	return s.next, nil
}

func (s *memStore) SaveAction(_ context.Context, a *Action) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.actions[a.ID] = *a
	return nil
}

func (s *memStore) AddCall(_ context.Context, c *Call) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, *c)
	return nil
}

func (s *memStore) Actions(_ context.Context, alertID uint64) ([]Action, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Action
	for _, a := range s.actions {
		if a.Alert == alertID {
			out = append(out, a)
		}
	}
	slices.SortFunc(out, func(a, b Action) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

func (s *memStore) Action(_ context.Context, id uint64) (Action, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.actions[id]
	if !ok {
		return Action{}, fmt.Errorf("action %d: %w", id, ErrNotFound)
	}
	return a, nil
}

func (s *memStore) OpenActions(context.Context) ([]Action, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Action
	for _, a := range s.actions {
		if a.State == StateWaiting || a.State == StateInProgress {
			out = append(out, a)
		}
	}
	return out, nil
}

func (s *memStore) Calls(_ context.Context, id uint64) ([]Call, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Call
	for _, c := range s.calls {
		if c.Action == id {
			out = append(out, c)
		}
	}
	return out, nil
}

// ListActions filters by state and alert only (memStore knows no
// partitions), in List's order.
func (s *memStore) ListActions(_ context.Context, q Query) (Page, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	page := Page{Counts: map[State]int{}, Actions: []Listed{}}
	rank := map[State]int{StateWaiting: 0, StateInProgress: 1}
	var list []Listed
	for _, a := range s.actions {
		if q.Alert != 0 && a.Alert != q.Alert {
			continue
		}
		page.Counts[a.State]++
		if len(q.States) == 0 || slices.Contains(q.States, a.State) {
			list = append(list, Listed{Action: a})
		}
	}
	rankOf := func(st State) int {
		if r, ok := rank[st]; ok {
			return r
		}
		return 2
	}
	slices.SortFunc(list, func(a, b Listed) int {
		return cmp.Or(cmp.Compare(rankOf(a.State), rankOf(b.State)), cmp.Compare(b.ID, a.ID))
	})
	page.Total = len(list)
	list = list[min(q.Offset, len(list)):]
	page.Actions = append(page.Actions, list[:min(q.Limit, len(list))]...)
	return page, nil
}

func (s *memStore) state(id uint64) State {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.actions[id].State
}

// policies attaches instance 1 (automatic) to policy 7 and instance 2
// (with approval) to policy 8.
type policies map[uint64][]Attachment

func (p policies) Attachments(id uint64) []Attachment { return p[id] }

var testPolicies = policies{
	7: {{Instance: 1, Overrides: map[string]string{"EMAIL_BODY": "from policy 7"}}},
	8: {{Instance: 2, Approval: true}},
	9: {{Instance: 1}, {Instance: 2, Approval: true}},
}

type instances struct{}

func (instances) Get(id uint64) (plugin.Instance, bool) {
	switch id {
	case 1:
		return plugin.Instance{ID: 1, CID: 1, Plugin: "email", Values: map[string]string{"EMAIL_MAILPORT": "587", "EMAIL_BODY": "instance body"}}, true
	case 2:
		return plugin.Instance{ID: 2, CID: 1, Plugin: "mitigate", Values: map[string]string{"MITIGATE_HOST": "10.9.9.9"}}, true
	}
	return plugin.Instance{}, false
}

// alerts is a fake alert engine.
type alerts struct {
	mu   sync.Mutex
	byID map[uint64]alert.Alert
}

func newAlerts(list ...alert.Alert) *alerts {
	a := &alerts{byID: map[uint64]alert.Alert{}}
	for _, al := range list {
		a.set(al)
	}
	return a
}

func (a *alerts) set(al alert.Alert) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.byID[al.ID] = al
}

func (a *alerts) Get(_ context.Context, id uint64) (alert.Alert, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	al, ok := a.byID[id]
	if !ok {
		return alert.Alert{}, fmt.Errorf("alert %d: %w", id, alert.ErrNotFound)
	}
	return al, nil
}

func (a *alerts) Open() []alert.Alert {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []alert.Alert
	for _, al := range a.byID {
		if al.Open() {
			out = append(out, al)
		}
	}
	slices.SortFunc(out, func(x, y alert.Alert) int { return cmp.Compare(x.ID, y.ID) })
	return out
}

// seen is a call as the fake plugin saw it.
type seen struct {
	Plugin string
	Op     alert.Op
	AID    string
	Env    map[string]string
}

// short is the part of a call most tests compare: plugin, op, alert ID,
// AID and the value of CUR_PACKETS_IN.
func (s seen) short() string {
	return fmt.Sprintf("%s %s alert=%s aid=%s cur=%s", s.Plugin, s.Op, s.Env["ID"], s.AID, s.Env["CUR_PACKETS_IN"])
}

// caller is a fake plugin runner. A call blocks while gate[op] is set and
// not closed, and exits with exit[op], or fails with the error fail[op]
// (exit code -1) when that is set. It fails the test when two calls of
// one action overlap.
type caller struct {
	t     testing.TB
	store *memStore
	mu    sync.Mutex
	gate  map[alert.Op]chan struct{}
	exit  map[alert.Op]int
	fail  map[alert.Op]string
	calls []seen
	// tokens holds, per call, whether the store had the call's token
	// saved on the action when the call started.
	tokenSaved []bool
	running    map[string]bool
	done       chan struct{}
}

func newCaller(t testing.TB, store *memStore) *caller {
	return &caller{t: t, store: store, gate: map[alert.Op]chan struct{}{}, exit: map[alert.Op]int{},
		fail:    map[alert.Op]string{},
		running: map[string]bool{}, done: make(chan struct{}, 1000)}
}

func (c *caller) Call(ctx context.Context, name string, op alert.Op, env []string) plugin.Result {
	m := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		if _, dup := m[k]; dup {
			c.t.Errorf("variable %s twice in the environment", k)
		}
		m[k] = v
	}
	aid := m["AID"]
	c.mu.Lock()
	if c.running[aid] {
		c.t.Errorf("two calls of action %s at once", aid)
	}
	c.running[aid] = true
	gate, code, fail := c.gate[op], c.exit[op], c.fail[op]
	c.mu.Unlock()
	var id uint64
	fmt.Sscan(aid, &id)
	c.store.mu.Lock()
	saved := c.store.actions[id].Token == m["TKN"]
	c.store.mu.Unlock()
	if gate != nil {
		<-gate
	}
	c.mu.Lock()
	c.running[aid] = false
	c.calls = append(c.calls, seen{Plugin: name, Op: op, AID: aid, Env: m})
	c.tokenSaved = append(c.tokenSaved, saved)
	c.mu.Unlock()
	c.done <- struct{}{}
	// Like plugin.Runner, a non-zero exit code alone sets no Err.
	res := plugin.Result{ExitCode: code, Duration: time.Millisecond, Output: []byte(string(op) + " done\n")}
	if fail != "" {
		res.ExitCode, res.Err = -1, fail
	}
	return res
}

// shorts returns the calls so far in short form.
func (c *caller) shorts() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, s := range c.calls {
		out = append(out, s.short())
	}
	return out
}

// shortsOf returns the calls of one action in short form.
func (c *caller) shortsOf(aid string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, s := range c.calls {
		if s.AID == aid {
			out = append(out, s.short())
		}
	}
	return out
}

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

var t0 = time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)

// logBuffer collects the text log of concurrent goroutines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// lines returns the lines logged so far.
func (l *logBuffer) lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Split(strings.TrimSuffix(l.b.String(), "\n"), "\n")
}

// logger returns a text logger writing to l without the time, and with
// "duration=D" for durations other than the fake caller's 1ms.
func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		switch {
		case a.Key == slog.TimeKey:
			return slog.Attr{}
		case a.Key == "duration" && a.Value.Duration() != time.Millisecond:
			return slog.String("duration", "D")
		}
		return a
	}}))
}

// rig is a dispatcher with fakes around it.
type rig struct {
	t      testing.TB
	store  *memStore
	alerts *alerts
	caller *caller
	clock  *clock
	logs   *logBuffer
	d      *Dispatcher
}

func newRig(t testing.TB, store *memStore, al *alerts) *rig {
	t.Helper()
	r := &rig{t: t, store: store, alerts: al, caller: newCaller(t, store), clock: &clock{t: t0}, logs: &logBuffer{}}
	d, err := New(Deps{
		Store: store, Policies: testPolicies, Instances: instances{}, Alerts: al, Caller: r.caller,
		Log: r.logs.logger(), Clock: r.clock.Now,
		URL: "http://127.0.0.1:8080", BinDir: "/opt/flowsentry/bin",
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Stop)
	r.d = d
	return r
}

// event updates the fake engine with al and hands the event to the
// dispatcher, as the engine does.
func (r *rig) event(op alert.Op, al alert.Alert) {
	if op == alert.OpDelete {
		al.Ended = t0.Add(time.Hour)
	}
	r.alerts.set(al)
	r.d.Alert(alert.Event{Op: op, Alert: al})
}

// settle waits until every event is routed and every job done.
func (r *rig) settle() {
	r.t.Helper()
	r.waitFor("dispatcher idle", func() bool {
		idle := r.d.pending == 0
		for _, ac := range r.d.acts {
			idle = idle && !ac.busy && len(ac.jobs) == 0
		}
		return idle
	})
}

// waitFor waits until cond, called with the dispatcher locked, holds.
func (r *rig) waitFor(what string, cond func() bool) {
	r.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		r.d.mu.Lock()
		ok := cond()
		r.d.mu.Unlock()
		if ok {
			return
		}
		time.Sleep(time.Millisecond)
	}
	r.t.Fatalf("%s: not after 10 s", what)
}

// waitRunning waits until a call of action id runs.
func (r *rig) waitRunning(id uint64) {
	r.t.Helper()
	r.waitFor("a call running", func() bool { return r.d.acts[id] != nil && r.d.acts[id].running })
}

// waitRouted waits until every event is routed.
func (r *rig) waitRouted() {
	r.t.Helper()
	r.waitFor("events routed", func() bool { return r.d.pending == 0 })
}

// waitCalls waits until the caller has finished n calls in all.
func (r *rig) waitCalls(n int) {
	r.t.Helper()
	for {
		r.caller.mu.Lock()
		got := len(r.caller.calls)
		r.caller.mu.Unlock()
		if got >= n {
			return
		}
		select {
		case <-r.caller.done:
		case <-time.After(10 * time.Second):
			r.t.Fatalf("%d calls after 10 s, want %d", got, n)
		}
	}
}

// states returns the stored state of every action.
func (r *rig) states() map[uint64]State {
	r.store.mu.Lock()
	defer r.store.mu.Unlock()
	out := map[uint64]State{}
	for id, a := range r.store.actions {
		out[id] = a.State
	}
	return out
}

// tgrpAlert is alert id of policy, a threshold_exceeded TGRP alert with
// packets in at pps.
func tgrpAlert(id, policy uint64, pps float64) alert.Alert {
	return alert.Alert{
		ID: id, Policy: policy, Key: "TGRP/1", Type: "threshold_exceeded", CID: 1, CIDName: "Default", Severity: 5,
		Fields: []alert.Field{
			{Name: "OBJECT_TYPE", Value: "TGRP"},
			{Name: "TGRP", Value: "1", Number: true},
			{Name: "TGRP_NAME", Value: "Servers"},
			{Name: "THRESHOLD_TYPE", Value: "packets_in"},
			{Name: "THRESHOLD_VALUE", Value: "1000.0", Number: true},
		},
		Earliest: t0, Latest: t0, LastCall: t0,
		Cur: alert.Values{PacketsIn: pps}, Avg: alert.Values{PacketsIn: pps}, Peak: alert.Values{PacketsIn: pps},
		Samples: 1,
	}
}
