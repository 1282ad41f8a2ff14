// Package action drives the plugin calls of alerts: for each alert and each
// plugin instance attached to the alert's policy it keeps an action (AID),
// calls the plugin with CREATE, UPDATE and DELETE as the alert engine's
// events come, with the exact environment of the FlowTraq plugin manual,
// and records every call.
//
// # States
//
// An action of an attachment without approval starts in_progress and its
// CREATE is sent at once; with approval it starts waiting_approval and
// nothing is sent until Approve (CREATE with the alert's current state,
// then the alert's later events) or Reject (rejected, nothing sent). The
// alert's DELETE ends an action (ended; a waiting action ends without any
// call). StopAction sends DELETE now and ends the action; Restart sends
// CREATE again to an ended action of an open alert. The plugin never gets
// an UPDATE or DELETE without a CREATE before it.
//
// # Order and concurrency
//
// Events are queued without blocking the engine. The calls of one action
// run one at a time in the order of its events: no UPDATE before its
// CREATE has finished. Calls of different actions run concurrently; the
// Caller bounds how many run at once. An UPDATE waiting behind a running
// call is replaced by a newer UPDATE, which carries fresher values, so a
// slow plugin delays its calls but never accumulates them. A failed call
// (exit code, time limit, crash) is recorded and the action goes on: the
// plugin gets its next event.
//
// # Store failures
//
// No plugin hears of an action or a call that is not stored: an action is
// saved before its first call, and its token before each call. A store
// write that fails (a full disk) is retried, waiting from RetryMin up to
// RetryMax between attempts, until it succeeds; meanwhile the work behind
// it waits in order: the events behind a new alert's actions, the calls of
// an action behind its save, the next call behind the record of the
// previous one, so that a call is recorded once and a restart does not
// send it again. Every failed attempt is counted in
// flowsentry_action_store_errors_total and Health reports the failure
// until the write succeeds.
//
// # Annotation tokens
//
// Every call gets a fresh 128-bit token (TKN), saved on the action before
// the call starts; it stays valid while the call runs and for 300 seconds
// after it. Token implements annotate.TokenChecker.
//
// # Restart
//
// An action's state is saved before the calls it leads to, and each call
// is recorded before the state it leads to. Queued events are not saved:
// on Start the open actions are reloaded and compared with their alert and
// their calls. An in-progress action whose alert ended without its DELETE
// recorded gets the DELETE; one whose CREATE was never recorded gets it
// (or ends, when its alert has ended too); one whose DELETE was recorded
// ends; a waiting action whose alert ended ends. An open alert without
// actions (the process died between the alert's CREATE and their
// creation) gets them. So every plugin that got a CREATE gets its DELETE.
// What can be lost: a queued UPDATE (the next one comes within a minute),
// and a StopAction whose DELETE had not run (the action is in progress
// again; stop it again). A call that was running when the process died is
// not recorded and is sent again if it was a CREATE or DELETE.
package action

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/flowsentry/flowsentry/alert"
	"github.com/flowsentry/flowsentry/annotate"
)

// TokenLifetime is how long an annotation token stays valid after its
// call (the manual's 300 seconds).
const TokenLifetime = 300 * time.Second

// Deps are what a Dispatcher works with.
type Deps struct {
	// Store keeps actions and calls.
	Store Store
	// Policies give the attachments of an alert's policy.
	Policies Policies
	// Instances give the plugin and configuration of an attachment.
	Instances Instances
	// Alerts give the current state of alerts (the alert engine).
	Alerts Alerts
	// Caller runs the plugins.
	Caller Caller
	// Log receives the alert transitions and the plugin calls (info), and
	// the failures of calls and of the store.
	Log *slog.Logger
	// Clock gives the time of actions and calls; nil means time.Now.
	Clock func() time.Time
	// URL is FLOWSENTRY_URL: http://HOST:PORT of the HTTP API, where
	// `ftnbi -val` posts annotations.
	URL string
	// BinDir is the folder holding the ftnbi binary, first on the PATH of
	// plugins; empty leaves only /usr/local/bin:/usr/bin:/bin.
	BinDir string
	// CAFile is FTNBI_CA of every call: the PEM file ftnbi trusts for an
	// https:// URL (the server's certificate with TLS); empty sets none.
	CAFile string
	// Env names the variables of the server's environment passed to
	// plugins besides HOME, LANG and TZ (Config.Env).
	Env []string
	// LookupEnv reads the server's environment; nil means os.LookupEnv.
	LookupEnv func(name string) (string, bool)
	// After returns a channel that receives once d has passed: the wait
	// between attempts of a failed store write. nil means time.After.
	After func(d time.Duration) <-chan time.Time
	// OnChange, when set, hears every action saved (a new action, a
	// change of state, the token of a new call) with the partition of its
	// alert, in the order of the saves of each action; it must not block.
	OnChange func(a Action, cid uint32)
}

// RetryMin and RetryMax bound the wait between attempts of a failed store
// write: it starts at RetryMin and doubles up to RetryMax.
const (
	RetryMin = 100 * time.Millisecond
	RetryMax = 30 * time.Second
)

// Dispatcher drives the actions. It is an alert.Sink and an
// annotate.TokenChecker, and a prometheus.Collector; all its methods are
// safe for concurrent use.
type Dispatcher struct {
	deps    Deps
	clock   func() time.Time
	after   func(time.Duration) <-chan time.Time
	metrics metrics
	ctx     context.Context // canceled by Stop: no new work starts
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	wake    chan struct{} // the router has events to route
	stop    sync.Once

	mu      sync.Mutex
	intake  []alert.Event // events the router has not taken yet
	pending int           // events not routed yet: intake and those being routed
	acts    map[uint64]*act
	byAlert map[uint64][]*act
	started bool
	// failing counts the store writes being retried; storeErr is the
	// latest error of one of them.
	failing  int
	storeErr error
}

// act is an action the dispatcher holds: every open one, and ended or
// rejected ones until their last job is done. Fields other than saveMu are
// guarded by Dispatcher.mu.
type act struct {
	a       Action
	jobs    []job
	busy    bool // a worker goroutine runs the jobs
	running bool // a call is running: its token is valid
	created bool // CREATE was sent and no DELETE after it
	ending  bool // a DELETE is queued: later events do not apply
	last    alert.Alert
	// saveMu orders the saves of the action, each of a copy taken under
	// it, so that the last save holds the latest state.
	saveMu sync.Mutex
}

// job is a call to make; current says to send the alert's current state
// (read when the job runs) rather than alert.
type job struct {
	op      alert.Op
	alert   alert.Alert
	current bool
}

// New checks deps and returns a dispatcher; it starts nothing.
func New(deps Deps) (*Dispatcher, error) {
	if deps.Store == nil || deps.Policies == nil || deps.Instances == nil || deps.Alerts == nil || deps.Caller == nil || deps.Log == nil {
		return nil, errors.New("action: New needs a store, policies, instances, alerts, a caller and a logger")
	}
	clock := deps.Clock
	if clock == nil {
		clock = time.Now
	}
	after := deps.After
	if after == nil {
		after = time.After
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Dispatcher{
		deps:    deps,
		clock:   clock,
		after:   after,
		metrics: newMetrics(),
		ctx:     ctx,
		cancel:  cancel,
		wake:    make(chan struct{}, 1),
		acts:    map[uint64]*act{},
		byAlert: map[uint64][]*act{},
	}, nil
}

// Start reloads the open actions, queues what a crash may have left unsent
// (see the package documentation) and starts routing events. Start the
// alert engine first, so that its open alerts are loaded.
func (d *Dispatcher) Start(ctx context.Context) error {
	open, err := d.deps.Store.OpenActions(ctx)
	if err != nil {
		d.metrics.storeErrors.Inc()
		return fmt.Errorf("action: load open actions: %w", err)
	}
	slices.SortFunc(open, func(a, b Action) int { return cmp.Compare(a.ID, b.ID) })
	for _, a := range open {
		if err := d.resume(ctx, a); err != nil {
			return err
		}
	}
	for _, al := range d.deps.Alerts.Open() {
		d.mu.Lock()
		known := len(d.byAlert[al.ID]) > 0
		d.mu.Unlock()
		if known {
			continue
		}
		list, err := d.deps.Store.Actions(ctx, al.ID)
		if err != nil {
			d.metrics.storeErrors.Inc()
			return fmt.Errorf("action: actions of alert %d: %w", al.ID, err)
		}
		if len(list) == 0 {
			d.Alert(alert.Event{Op: alert.OpCreate, Alert: al})
		}
	}
	d.mu.Lock()
	d.started = true
	d.wg.Add(1)
	go d.route()
	for _, ac := range d.acts {
		d.kick(ac)
	}
	d.mu.Unlock()
	return nil
}

// resume takes up an open action loaded from the store.
func (d *Dispatcher) resume(ctx context.Context, a Action) error {
	al, err := d.deps.Alerts.Get(ctx, a.Alert)
	missing := errors.Is(err, alert.ErrNotFound)
	if err != nil && !missing {
		return fmt.Errorf("action: alert of action %d: %w", a.ID, err)
	}
	ac := &act{a: a, last: al}
	if a.State == StateInProgress {
		calls, err := d.deps.Store.Calls(ctx, a.ID)
		if err != nil {
			d.metrics.storeErrors.Inc()
			return fmt.Errorf("action: calls of action %d: %w", a.ID, err)
		}
		if n := len(calls); n > 0 {
			last := calls[n-1]
			ac.created = last.Op != alert.OpDelete
			if last.Op == alert.OpDelete && !a.Updated.After(last.Start) {
				// The DELETE was recorded, the state after it was not.
				ac.a.State = StateEnded
			}
		}
	}
	switch {
	case missing && ac.a.State != StateEnded:
		d.deps.Log.Warn("the alert of an open action is missing; ending the action without a call", "action", a.ID, "alert", a.Alert)
		ac.a.State = StateEnded
	case a.State == StateWaiting && !al.Open():
		ac.a.State = StateEnded
	case ac.a.State == StateInProgress && !ac.created:
		ac.jobs = append(ac.jobs, job{op: alert.OpCreate, current: true})
	case ac.a.State == StateInProgress && !al.Open():
		ac.ending = true
		ac.jobs = append(ac.jobs, job{op: alert.OpDelete, alert: al})
	}
	if ac.a.State != a.State {
		ac.a.Updated = d.clock()
		if err := d.save(ctx, ac); err != nil {
			d.metrics.storeErrors.Inc()
			return err
		}
	}
	if ac.a.State == StateEnded {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.acts[a.ID] = ac
	if !missing && al.Open() {
		d.byAlert[a.Alert] = append(d.byAlert[a.Alert], ac)
	}
	return nil
}

// Stop stops routing events and waits for the running calls to finish
// (each within its time limit); queued calls are dropped, and Start after a
// restart takes up what they would have done. It is idempotent and safe
// when Start never ran.
func (d *Dispatcher) Stop() {
	d.stop.Do(func() {
		d.cancel()
		d.wg.Wait()
	})
}

// Alert queues an event of the alert engine; it never blocks. It
// implements alert.Sink.
func (d *Dispatcher) Alert(ev alert.Event) {
	d.mu.Lock()
	d.intake = append(d.intake, ev)
	d.pending++
	d.mu.Unlock()
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// route turns queued events into actions and jobs, in order.
func (d *Dispatcher) route() {
	defer d.wg.Done()
	for {
		d.mu.Lock()
		events := d.intake
		d.intake = nil
		d.mu.Unlock()
		for _, ev := range events {
			if d.ctx.Err() != nil {
				return
			}
			d.routeEvent(ev)
			d.mu.Lock()
			d.pending--
			d.mu.Unlock()
		}
		select {
		case <-d.ctx.Done():
			return
		case <-d.wake:
		}
	}
}

func (d *Dispatcher) routeEvent(ev alert.Event) {
	d.deps.Log.Info("alert transition", "op", string(ev.Op), "alert", ev.Alert.ID, "alert_type", ev.Alert.Type, "policy", ev.Alert.Policy)
	if ev.Op == alert.OpCreate {
		d.open(ev.Alert)
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, ac := range d.byAlert[ev.Alert.ID] {
		ac.last = ev.Alert
		switch {
		case ac.a.State == StateWaiting && ev.Op == alert.OpDelete:
			ac.a.State, ac.a.Updated = StateEnded, d.clock()
			d.kickSave(ac)
		case ac.a.State != StateInProgress || ac.ending:
		case ev.Op == alert.OpDelete:
			ac.ending = true
			d.enqueue(ac, job{op: alert.OpDelete, alert: ev.Alert})
		default:
			d.enqueue(ac, job{op: alert.OpUpdate, alert: ev.Alert})
		}
	}
	if ev.Op == alert.OpDelete {
		delete(d.byAlert, ev.Alert.ID)
	}
}

// open creates the actions of a new alert.
func (d *Dispatcher) open(al alert.Alert) {
	for _, at := range d.deps.Policies.Attachments(al.Policy) {
		inst, ok := d.deps.Instances.Get(at.Instance)
		if !ok {
			d.deps.Log.Error("plugin instance of a policy not found; no action for this alert",
				"instance", at.Instance, "policy", al.Policy, "alert", al.ID)
			continue
		}
		var id uint64
		err := d.persist("new action ID", al.ID, 0, func() (err error) {
			id, err = d.deps.Store.NextActionID(d.ctx)
			return err
		})
		if err != nil {
			return // stopping: Start takes the alert up again
		}
		now := d.clock()
		ac := &act{last: al, a: Action{
			ID: id, Alert: al.ID, Policy: al.Policy, Instance: at.Instance, Plugin: inst.Plugin,
			State: StateInProgress, Created: now, Updated: now,
		}}
		if at.Approval {
			ac.a.State = StateWaiting
		}
		if err := d.persistAction(d.ctx, ac); err != nil {
			return
		}
		d.mu.Lock()
		d.acts[id] = ac
		d.byAlert[al.ID] = append(d.byAlert[al.ID], ac)
		if ac.a.State == StateInProgress {
			d.enqueue(ac, job{op: alert.OpCreate, alert: al})
		}
		d.mu.Unlock()
	}
}

// enqueue adds a job for ac, replacing a queued UPDATE by a newer one.
// The caller holds d.mu.
func (d *Dispatcher) enqueue(ac *act, j job) {
	if n := len(ac.jobs); n > 0 && j.op == alert.OpUpdate && ac.jobs[n-1].op == alert.OpUpdate {
		ac.jobs[n-1] = j
		return
	}
	ac.jobs = append(ac.jobs, j)
	d.kick(ac)
}

// kickSave saves ac's state in the background, ordered with its calls; a
// job without op only saves. The caller holds d.mu.
func (d *Dispatcher) kickSave(ac *act) {
	ac.jobs = append(ac.jobs, job{})
	d.kick(ac)
}

// kick starts ac's worker if it has jobs and none runs. The caller holds
// d.mu.
func (d *Dispatcher) kick(ac *act) {
	if ac.busy || len(ac.jobs) == 0 || !d.started || d.ctx.Err() != nil {
		return
	}
	ac.busy = true
	d.wg.Add(1)
	go d.work(ac)
}

// work runs ac's jobs one at a time until none is left.
func (d *Dispatcher) work(ac *act) {
	defer d.wg.Done()
	for {
		d.mu.Lock()
		if len(ac.jobs) == 0 || d.ctx.Err() != nil {
			ac.busy = false
			if ac.a.State == StateEnded || ac.a.State == StateRejected {
				if d.acts[ac.a.ID] == ac && len(ac.jobs) == 0 {
					delete(d.acts, ac.a.ID)
				}
			}
			d.mu.Unlock()
			return
		}
		j := ac.jobs[0]
		ac.jobs = slices.Delete(ac.jobs, 0, 1)
		d.mu.Unlock()
		d.run(ac, j)
	}
}

// run does one job: a call, or a save when the job has no op.
func (d *Dispatcher) run(ac *act, j job) {
	ctx := context.WithoutCancel(d.ctx) // a started call finishes
	if j.op == "" {
		_ = d.persistAction(ctx, ac)
		return
	}
	al := j.alert
	if j.current {
		got, err := d.deps.Alerts.Get(ctx, ac.a.Alert)
		d.mu.Lock()
		if err == nil {
			ac.last = got
		}
		al = ac.last
		d.mu.Unlock()
		if j.op == alert.OpCreate && (err != nil || !got.Open()) {
			// Approved or restarted too late: nothing to create.
			d.finish(ctx, ac)
			return
		}
	}
	d.mu.Lock()
	skip := !ac.created && j.op != alert.OpCreate ||
		j.op == alert.OpUpdate && ac.a.State != StateInProgress
	d.mu.Unlock()
	if skip {
		if j.op == alert.OpDelete {
			d.finish(ctx, ac)
		}
		return
	}
	d.call(ctx, ac, j.op, &al)
}

// finish ends ac without a call.
func (d *Dispatcher) finish(ctx context.Context, ac *act) {
	d.mu.Lock()
	ac.a.State, ac.a.Updated, ac.ending, ac.created = StateEnded, d.clock(), false, false
	d.mu.Unlock()
	_ = d.persistAction(ctx, ac)
}

// call makes one plugin call with a fresh token and records it.
func (d *Dispatcher) call(ctx context.Context, ac *act, op alert.Op, al *alert.Alert) {
	token := newToken()
	start := d.clock()
	d.mu.Lock()
	ac.a.Token, ac.a.TokenUntil, ac.a.Updated = token, start.Add(TokenLifetime), start
	ac.running = true
	a := ac.a
	d.mu.Unlock()
	// The plugin may use the token as soon as it runs, and must not hear
	// of an action that is not stored: save first.
	if err := d.persistAction(ctx, ac); err != nil {
		d.mu.Lock()
		ac.running = false
		d.mu.Unlock()
		return // stopping: a restart takes the action up again
	}

	var overrides map[string]string
	for _, at := range d.deps.Policies.Attachments(a.Policy) {
		if at.Instance == a.Instance {
			overrides = at.Overrides
		}
	}
	c := Call{Action: a.ID, Op: op, Start: start, ExitCode: -1}
	if inst, ok := d.deps.Instances.Get(a.Instance); ok {
		res := d.deps.Caller.Call(ctx, a.Plugin, op, env(al, a.ID, token, inst.Values, overrides, d.deps.shared()))
		c.Duration, c.ExitCode, c.Err, c.Output, c.Truncated = res.Duration, res.ExitCode, res.Err, res.Output, res.Truncated
	} else {
		c.Err = fmt.Sprintf("plugin instance %d was deleted; attach another instance to policy %d", a.Instance, a.Policy)
	}
	end := d.clock()
	attrs := []any{"alert", al.ID, "alert_type", al.Type, "policy", a.Policy, "action", a.ID, "plugin", a.Plugin,
		"op", string(op), "exit_code", c.ExitCode, "duration", c.Duration}
	result := "ok"
	if err := c.failure(); err != nil {
		result = "failed"
		d.deps.Log.Warn("plugin call failed", append(attrs, "result", result, "err", err)...)
	} else {
		d.deps.Log.Info("plugin call", append(attrs, "result", result)...)
	}
	d.metrics.calls.WithLabelValues(string(op), result).Inc()
	// Recorded before the next call, so that a restart does not send it
	// again.
	_ = d.persist("record the "+string(op)+" call", a.Alert, a.ID, func() error { return d.deps.Store.AddCall(ctx, &c) })

	d.mu.Lock()
	ac.running = false
	ac.a.TokenUntil, ac.a.Updated = end.Add(TokenLifetime), end
	switch op {
	case alert.OpCreate:
		ac.created = true
	case alert.OpDelete:
		ac.a.State, ac.created, ac.ending = StateEnded, false, false
	}
	d.mu.Unlock()
	_ = d.persistAction(ctx, ac)
}

// save saves a copy of ac's action, taken under ac.saveMu so that saves
// are in state order.
func (d *Dispatcher) save(ctx context.Context, ac *act) error {
	ac.saveMu.Lock()
	defer ac.saveMu.Unlock()
	d.mu.Lock()
	a, cid := ac.a, ac.last.CID
	d.mu.Unlock()
	if err := d.deps.Store.SaveAction(ctx, &a); err != nil {
		return fmt.Errorf("action %d: save: %w", a.ID, err)
	}
	if d.deps.OnChange != nil {
		d.deps.OnChange(a, cid)
	}
	return nil
}

// persistAction saves ac, retrying until it is stored (see persist).
func (d *Dispatcher) persistAction(ctx context.Context, ac *act) error {
	d.mu.Lock()
	alertID, id := ac.a.Alert, ac.a.ID
	d.mu.Unlock()
	return d.persist("save the action", alertID, id, func() error { return d.save(ctx, ac) })
}

// persist runs write, a store write, until it succeeds, waiting between
// attempts from RetryMin, doubling up to RetryMax. The caller's work waits
// behind it. It gives up only when the dispatcher stops, returning the
// last error. The first failure and the recovery are logged, not every
// attempt; Health reports the failure meanwhile.
func (d *Dispatcher) persist(what string, alertID, actionID uint64, write func() error) error {
	err := write()
	if err == nil {
		return nil
	}
	d.metrics.storeErrors.Inc()
	d.deps.Log.Error("store write failed; retrying until it succeeds, the plugin calls behind it wait",
		"write", what, "alert", alertID, "action", actionID, "err", err)
	d.mu.Lock()
	d.failing++
	d.storeErr = err
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		d.failing--
		if d.failing == 0 {
			d.storeErr = nil
		}
		d.mu.Unlock()
	}()
	for wait := RetryMin; ; wait = min(2*wait, RetryMax) {
		select {
		case <-d.ctx.Done():
			d.deps.Log.Error("store write abandoned at stop; a restart takes the work up again",
				"write", what, "alert", alertID, "action", actionID, "err", err)
			return err
		case <-d.after(wait):
		}
		if err = write(); err == nil {
			d.deps.Log.Info("store write succeeded after failing", "write", what, "alert", alertID, "action", actionID)
			return nil
		}
		d.metrics.storeErrors.Inc()
		d.mu.Lock()
		d.storeErr = err
		d.mu.Unlock()
	}
}

// Health returns nil when the dispatcher's store writes succeed, and the
// latest error while one is being retried: the plugin calls behind it
// wait until it succeeds.
func (d *Dispatcher) Health() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.storeErr != nil {
		return fmt.Errorf("action: %w", d.storeErr)
	}
	return nil
}

// Approve starts a waiting action: its CREATE is sent with the alert's
// current state, and the alert's later events follow.
func (d *Dispatcher) Approve(ctx context.Context, id uint64) error {
	return d.transition(ctx, id, "approve", StateWaiting, func(ac *act) {
		ac.a.State = StateInProgress
		d.enqueue(ac, job{op: alert.OpCreate, current: true})
	})
}

// Reject ends a waiting action without any call.
func (d *Dispatcher) Reject(ctx context.Context, id uint64) error {
	return d.transition(ctx, id, "reject", StateWaiting, func(ac *act) {
		ac.a.State = StateRejected
	})
}

// StopAction sends DELETE to an action in progress now (after its running
// call) and ends it; the alert's later events no longer reach it.
func (d *Dispatcher) StopAction(ctx context.Context, id uint64) error {
	return d.transition(ctx, id, "stop", StateInProgress, func(ac *act) {
		ac.ending = true
		d.enqueue(ac, job{op: alert.OpDelete, current: true})
	})
}

// Restart sends CREATE again, with the alert's current state, to an ended
// action whose alert is open; the alert's later events follow.
func (d *Dispatcher) Restart(ctx context.Context, id uint64) error {
	a, err := d.Action(ctx, id)
	if err != nil {
		return err
	}
	if a.State != StateEnded {
		return &StateError{ID: id, State: a.State, Op: "restart"}
	}
	al, err := d.deps.Alerts.Get(ctx, a.Alert)
	if err != nil {
		return fmt.Errorf("cannot restart action %d: %w", id, err)
	}
	if !al.Open() {
		return fmt.Errorf("cannot restart action %d of alert %d: %w", id, a.Alert, ErrAlertEnded)
	}
	d.mu.Lock()
	if d.acts[id] == nil {
		d.acts[id] = &act{a: a, last: al}
	}
	d.mu.Unlock()
	return d.transition(ctx, id, "restart", StateEnded, func(ac *act) {
		ac.a.State, ac.created, ac.ending = StateInProgress, false, false
		if !slices.Contains(d.byAlert[ac.a.Alert], ac) {
			d.byAlert[ac.a.Alert] = append(d.byAlert[ac.a.Alert], ac)
		}
		d.enqueue(ac, job{op: alert.OpCreate, current: true})
	})
}

// transition applies change to action id if it is in state from, then
// saves it before returning.
func (d *Dispatcher) transition(ctx context.Context, id uint64, op string, from State, change func(*act)) error {
	d.mu.Lock()
	ac := d.acts[id]
	if ac == nil {
		d.mu.Unlock()
		a, err := d.deps.Store.Action(ctx, id)
		if err != nil {
			return fmt.Errorf("action %d: %w", id, err)
		}
		return &StateError{ID: id, State: a.State, Op: op}
	}
	if ac.a.State != from || ac.ending {
		err := &StateError{ID: id, State: ac.a.State, Op: op}
		d.mu.Unlock()
		return err
	}
	ac.a.Updated = d.clock()
	change(ac)
	d.mu.Unlock()
	if err := d.save(ctx, ac); err != nil {
		// The change stands: the worker saves it, retrying, before any
		// call it leads to.
		d.metrics.storeErrors.Inc()
		d.mu.Lock()
		d.kickSave(ac)
		d.mu.Unlock()
		return fmt.Errorf("%w; the %s is retried until it is stored", err, op)
	}
	return nil
}

// Action returns action id in its current state.
func (d *Dispatcher) Action(ctx context.Context, id uint64) (Action, error) {
	d.mu.Lock()
	if ac := d.acts[id]; ac != nil {
		a := ac.a
		d.mu.Unlock()
		return a, nil
	}
	d.mu.Unlock()
	a, err := d.deps.Store.Action(ctx, id)
	if err != nil {
		return Action{}, fmt.Errorf("action %d: %w", id, err)
	}
	return a, nil
}

// Actions returns the actions of an alert in their current state.
func (d *Dispatcher) Actions(ctx context.Context, alertID uint64) ([]Action, error) {
	list, err := d.deps.Store.Actions(ctx, alertID)
	if err != nil {
		return nil, fmt.Errorf("actions of alert %d: %w", alertID, err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for i := range list {
		if ac := d.acts[list[i].ID]; ac != nil {
			list[i] = ac.a
		}
	}
	return list, nil
}

// Calls returns the recorded calls of an action, oldest first.
func (d *Dispatcher) Calls(ctx context.Context, id uint64) ([]Call, error) {
	calls, err := d.deps.Store.Calls(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("calls of action %d: %w", id, err)
	}
	return calls, nil
}

// Token returns the annotation grant of action actionID of alert alertID;
// it implements annotate.TokenChecker.
func (d *Dispatcher) Token(ctx context.Context, alertID, actionID uint64) (annotate.Grant, error) {
	d.mu.Lock()
	var (
		a       Action
		running bool
	)
	ac := d.acts[actionID]
	if ac != nil {
		a, running = ac.a, ac.running
	}
	d.mu.Unlock()
	if ac == nil {
		var err error
		a, err = d.deps.Store.Action(ctx, actionID)
		if errors.Is(err, ErrNotFound) {
			return annotate.Grant{}, fmt.Errorf("action %d: %w", actionID, annotate.ErrUnknownAction)
		}
		if err != nil {
			return annotate.Grant{}, fmt.Errorf("action %d: %w", actionID, err)
		}
	}
	if a.Alert != alertID {
		return annotate.Grant{}, fmt.Errorf("action %d is not an action of alert %d: %w", actionID, alertID, annotate.ErrUnknownAction)
	}
	g := annotate.Grant{Token: a.Token, Until: a.TokenUntil, Alert: annotate.AlertOpen}
	if running {
		g.Until = d.clock().Add(TokenLifetime)
	}
	al, err := d.deps.Alerts.Get(ctx, alertID)
	switch {
	case errors.Is(err, alert.ErrNotFound):
		g.Alert = annotate.AlertMissing
	case err != nil:
		return annotate.Grant{}, fmt.Errorf("alert %d of action %d: %w", alertID, actionID, err)
	case !al.Open():
		g.Alert = annotate.AlertEnded
	}
	return g, nil
}

// newToken returns 128 random bits in hex.
func newToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return hex.EncodeToString(b[:])
}
