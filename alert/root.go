// Package alert is the alert engine: it turns the conditions detectors
// report into alerts with the FlowTraq lifecycle — CREATE at once, UPDATE
// at most once a minute while the condition persists, DELETE after ten
// quiet minutes, a new ID after twelve hours — persisted so that a restart
// loses none, and hands each event to the actions.
//
// # Lifecycle
//
// Detectors call Observe at each evaluation tick for every object whose
// condition holds, then Tick once. An alert is identified by its
// condition's (Policy, Key). The first Observe of a condition without an
// open alert takes a new ID from the store and issues CREATE. At a Tick, an
// alert whose condition was seen since its last call (CREATE or UPDATE)
// gets an UPDATE once UpdateInterval has passed since that call; an alert
// whose condition was not seen since its last call is deleted once
// QuietPeriod has passed since that call; an alert MaxAge old is deleted
// and, when its condition was seen since the previous Tick, a new alert
// with a new ID is created at once. Latest is the last observation, Cur the
// latest values, Avg their mean over the observations and Peak their
// maximum per counter; Severity, Fields and the other descriptive fields
// follow the latest condition. Time comes only from the parameters of
// Observe and Tick.
//
// # Persistence: the outbox
//
// Observe and Tick never wait on the store. A transition (CREATE, UPDATE,
// DELETE) is applied to the engine's state and appended to a bounded
// outbox; a committer goroutine, woken by each Tick, saves the outbox in
// one store transaction (Store.SaveAlerts) and only then hands the events
// to the Sink, in order, each once. So every event the actions see is
// persisted, the evaluation path costs no disk write, and a tick that
// opens ten thousand alerts costs one transaction. A new alert has no ID
// until its CREATE commits: the store hands out IDs inside that
// transaction, so IDs never repeat and cost no round trip of their own;
// readers (Get, Alerts, Open) do not see an alert before it is committed.
//
// When the store fails or stalls, detection goes on: transitions wait in
// the outbox, in order, and the committer tries again at every Tick
// (flowsentry_alert_store_errors_total counts the failures, the first of a
// series is logged, Health reports it). When the outbox is full (Config
// Outbox), a new transition is not applied: it happens again at a later
// Observe (CREATE) or Tick (UPDATE, DELETE), counted in
// flowsentry_alert_deferred_total. A crash loses only transitions not yet
// committed, which no plugin has heard of; they happen again after the
// restart.
//
// An observation that changes only Latest and the values is not saved: the
// store holds them as of the last CREATE, UPDATE or DELETE, which costs one
// write per alert per UpdateInterval instead of one per tick. After a crash
// an open alert continues, with the same ID, from its last saved state:
// Latest, Avg and Peak then miss at most the observations of one
// UpdateInterval, and LastCall, which decides the UPDATE and the DELETE, is
// exact.
//
// # Concurrency
//
// All methods are safe for concurrent use; Observe and Tick are meant for
// the detectors' goroutine, Get, Alerts and Open for readers. The Sink is
// called from the committer goroutine (or from Flush), never with the
// engine's lock held.
package alert

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flowsentry/flowsentry/config/check"
)

// Engine runs the lifecycle of alerts. See the package documentation.
type Engine struct {
	cfg     Config
	store   Store
	sink    Sink
	log     *slog.Logger
	metrics metrics
	// ctx is for store calls made by Observe and Tick, which have none;
	// Stop cancels it.
	ctx    context.Context
	cancel context.CancelFunc

	mu     sync.Mutex
	open   map[ident]*entry
	byID   map[uint64]*entry // committed open alerts
	list   []*entry          // open alerts in creation order, plus ended ones until the Tick compacts it
	retire []*entry          // duplicates found by Start, deleted at the next Tick
	outbox []transition      // applied, not yet committed, in order
	// sealed is how many transitions at the head of the outbox belong to
	// finished ticks (see sealTick).
	sealed  int
	stopped bool
	// held counts the CommitAfter calls running: Commit waits for them.
	held int

	// The committer: wake is signalled by Tick; commitMu makes one
	// commit at a time, in order, whether the goroutine's or Flush's;
	// batch and rows are its scratch.
	wake       chan struct{}
	commitMu   sync.Mutex
	committing bool // the goroutine runs (guarded by commitMu)
	done       chan struct{}
	batch      []transition
	rows       []*Alert

	// storeErr holds the error of the last store write when it failed
	// (nil otherwise): read by Health without the lock, which store
	// calls hold.
	storeErr atomic.Pointer[error]
}

// ident is the identity of a condition.
type ident struct {
	policy uint64
	key    string
}

type entry struct {
	// a is the alert's current state; a.ID is 0 until its CREATE is
	// committed.
	a Alert
	// seen says the condition was observed since the last CREATE or
	// UPDATE; seenTick since the previous Tick.
	seen, seenTick bool
	ended          bool
}

// transition is an event waiting in the outbox: the entry and a copy of
// its alert as of the transition.
type transition struct {
	en *entry
	op Op
	a  Alert
}

// maxCommit is the most transitions one store transaction takes, which
// bounds its latency; a longer outbox takes several.
const maxCommit = 20000

// New validates cfg and returns an engine that saves alerts in store and
// hands their events to sink. It loads nothing: Start does. The engine is a
// prometheus.Collector; register it to export its metrics.
func New(cfg Config, store Store, sink Sink, log *slog.Logger) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, check.Prefix("alert", err)
	}
	if store == nil || sink == nil || log == nil {
		return nil, fmt.Errorf("alert: New needs a store, a sink and a logger")
	}
	if cfg.Outbox == 0 {
		cfg.Outbox = defaultOutbox
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Engine{
		cfg:     cfg,
		store:   store,
		sink:    sink,
		log:     log,
		metrics: newMetrics(),
		ctx:     ctx,
		cancel:  cancel,
		open:    map[ident]*entry{},
		byID:    map[uint64]*entry{},
		wake:    make(chan struct{}, 1),
		done:    make(chan struct{}),
	}, nil
}

// Start loads the open alerts from the store: they continue with their IDs
// and get their UPDATE and DELETE as if the engine had never stopped. Call
// it before the first Observe, and StartCommitting once the Sink is ready.
func (e *Engine) Start(ctx context.Context) error {
	alerts, err := e.store.OpenAlerts(ctx)
	if err != nil {
		e.metrics.storeErrors.WithLabelValues("load").Inc()
		return fmt.Errorf("alert: load open alerts: %w", err)
	}
	slices.SortFunc(alerts, func(a, b Alert) int { return cmp.Compare(a.ID, b.ID) })
	e.mu.Lock()
	defer e.mu.Unlock()
	for i := range alerts {
		a := alerts[i]
		k := ident{a.Policy, a.Key}
		if old := e.open[k]; old != nil {
			// Two open alerts for one condition cannot come from this
			// engine; end the older so that its actions get a DELETE.
			e.log.Warn("two open alerts for one condition; deleting the older at the next tick",
				"older", old.a.ID, "newer", a.ID, "policy", a.Policy, "key", a.Key)
			e.forget(k, old)
			e.retire = append(e.retire, &entry{a: old.a})
		}
		e.add(&entry{a: a})
	}
	e.list = slices.DeleteFunc(e.list, func(en *entry) bool { return en.ended })
	return nil
}

// Stop stops the engine: later calls of Observe and Tick do nothing, and
// the transitions still in the outbox are committed and handed to the Sink
// (StopCommitting). It is idempotent. What cannot be committed is logged;
// no plugin has heard of it, and it happens again after a restart.
func (e *Engine) Stop() {
	e.mu.Lock()
	e.stopped = true
	e.mu.Unlock()
	e.StopCommitting()
}

// Observe records that condition c holds at now. A condition without an
// open alert opens one at once (CREATE); otherwise the alert's Latest,
// values and descriptive fields are updated in memory.
func (e *Engine) Observe(now time.Time, c Condition) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.stopped {
		return
	}
	if en := e.open[ident{c.Policy, c.Key}]; en != nil {
		e.observe(en, now, &c)
		return
	}
	e.create(now, &c)
}

// Tick issues the UPDATE and DELETE events due at now; call it after the
// detectors' Observe calls of an evaluation tick.
func (e *Engine) Tick(now time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.stopped {
		return
	}
	e.retire = slices.DeleteFunc(e.retire, func(en *entry) bool {
		en.a.Ended = now
		if e.enqueue(en, OpDelete) {
			return true
		}
		en.a.Ended = time.Time{}
		return false
	})
	var again []*entry // alerts past MaxAge whose condition persists
	for _, en := range e.list {
		if en.ended {
			continue
		}
		a := &en.a
		switch {
		case now.Sub(a.Earliest) >= e.cfg.MaxAge:
			if e.end(en, now) && en.seenTick {
				again = append(again, en)
			}
		case !en.seen && now.Sub(a.LastCall) >= e.cfg.QuietPeriod:
			e.end(en, now)
		case en.seen && now.Sub(a.LastCall) >= e.cfg.UpdateInterval:
			prev := a.LastCall
			a.LastCall = now
			if e.enqueue(en, OpUpdate) {
				en.seen = false
			} else {
				a.LastCall = prev
			}
		}
		en.seenTick = false
	}
	e.list = slices.DeleteFunc(e.list, func(en *entry) bool { return en.ended })
	for _, old := range again {
		c := Condition{
			Policy: old.a.Policy, Key: old.a.Key, Type: old.a.Type,
			CID: old.a.CID, CIDName: old.a.CIDName, Severity: old.a.Severity,
			Fields: old.a.Fields, Values: old.a.Cur, Uniq: old.a.Uniq,
		}
		e.create(old.a.Latest, &c)
	}
	e.sealTick()
	e.wakeCommitter()
}

// Commit seals the transitions observed since the last Tick and wakes the
// committer, so that an alert a detector found between ticks (a flood
// crossing its threshold) reaches the actions at once instead of at the
// next Tick. The transitions it seals are ordered among themselves only.
func (e *Engine) Commit() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.stopped || e.held > 0 || e.sealed == len(e.outbox) {
		return
	}
	e.sealTick()
	e.wakeCommitter()
}

// CommitAfter runs fn, during which Commit seals nothing, then commits
// what fn's Observe calls queued as one lot, ordered by policy and object
// as at a Tick. Replay polls its shards one after the other in one
// goroutine: the alerts they find at one poll then come in the same
// order, and get the same IDs, whatever the number of shards.
func (e *Engine) CommitAfter(fn func()) {
	e.mu.Lock()
	e.held++
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		e.held--
		e.mu.Unlock()
		e.Commit()
	}()
	fn()
}

func (e *Engine) wakeCommitter() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// Get returns alert id: the engine's current state when it is open, the
// stored one otherwise. An unknown ID gives an error wrapping ErrNotFound.
func (e *Engine) Get(ctx context.Context, id uint64) (Alert, error) {
	e.mu.Lock()
	if en := e.byID[id]; en != nil && !en.ended {
		a := en.a
		e.mu.Unlock()
		return a, nil
	}
	e.mu.Unlock()
	list, err := e.store.Alerts(ctx, Query{IDs: []uint64{id}, Limit: 1})
	if err != nil {
		e.metrics.storeErrors.WithLabelValues("query").Inc()
		return Alert{}, fmt.Errorf("alert %d: %w", id, err)
	}
	if len(list) == 0 {
		return Alert{}, fmt.Errorf("alert %d: %w", id, ErrNotFound)
	}
	return list[0], nil
}

// Alerts returns the stored alerts matching q, newest first, with open
// alerts in their current state.
func (e *Engine) Alerts(ctx context.Context, q Query) ([]Alert, error) {
	list, err := e.store.Alerts(ctx, q)
	if err != nil {
		e.metrics.storeErrors.WithLabelValues("query").Inc()
		return nil, fmt.Errorf("alert: query alerts: %w", err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for i := range list {
		if en := e.byID[list[i].ID]; en != nil {
			list[i] = en.a
		}
	}
	return list, nil
}

// Open returns the open alerts in their current state, oldest first.
func (e *Engine) Open() []Alert {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]Alert, 0, len(e.list))
	for _, en := range e.list {
		if !en.ended && en.a.ID != 0 {
			out = append(out, en.a)
		}
	}
	return out
}

// create opens an alert for c first seen at now. A full outbox leaves the
// condition without an alert, so the next Observe tries again.
func (e *Engine) create(now time.Time, c *Condition) {
	en := &entry{seenTick: true}
	en.a = Alert{
		Policy: c.Policy, Key: c.Key,
		Earliest: now, Latest: now, LastCall: now,
		Cur: c.Values, Avg: c.Values, Peak: c.Values, Samples: 1,
	}
	en.a.describe(c)
	if !e.enqueue(en, OpCreate) {
		return
	}
	e.add(en)
}

// observe updates an open alert with a new observation of its condition.
func (e *Engine) observe(en *entry, now time.Time, c *Condition) {
	a := &en.a
	if now.After(a.Latest) {
		a.Latest = now
	}
	a.Samples++
	a.Cur = c.Values
	a.Avg.meanWith(c.Values, a.Samples)
	a.Peak.maxWith(c.Values)
	relabel := a.Type != c.Type || a.Severity != c.Severity
	if relabel {
		e.metrics.openOf(a).Dec()
	}
	a.describe(c)
	if relabel {
		e.metrics.openOf(a).Inc()
	}
	en.seen, en.seenTick = true, true
}

// end deletes an open alert; false when the outbox is full, in which case
// the alert stays open for the next Tick to try again.
func (e *Engine) end(en *entry, now time.Time) bool {
	en.a.Ended = now
	if !e.enqueue(en, OpDelete) {
		en.a.Ended = time.Time{}
		return false
	}
	e.forget(ident{en.a.Policy, en.a.Key}, en)
	return true
}

func (e *Engine) add(en *entry) {
	e.open[ident{en.a.Policy, en.a.Key}] = en
	if en.a.ID != 0 {
		e.byID[en.a.ID] = en
	}
	e.list = append(e.list, en)
	e.metrics.openOf(&en.a).Inc()
}

// forget removes an entry from the maps and marks it for removal from the
// list.
func (e *Engine) forget(k ident, en *entry) {
	delete(e.open, k)
	delete(e.byID, en.a.ID)
	en.ended = true
	e.metrics.openOf(&en.a).Dec()
}

// Health returns nil when the engine's last commit succeeded, and its
// error when it failed: the transitions it could not save wait in the
// outbox and are retried at the next Tick; a commit that succeeds clears
// it.
func (e *Engine) Health() error {
	if err := e.storeErr.Load(); err != nil {
		return fmt.Errorf("alert: %w", *err)
	}
	return nil
}

// failed counts a store failure and logs the first of a series.
func (e *Engine) failed(operation string, err error) {
	e.metrics.storeErrors.WithLabelValues(operation).Inc()
	if e.storeErr.Swap(&err) == nil {
		e.log.Error("alert store failed; the transitions wait and are retried at the next tick", "operation", operation, "err", err)
	}
}

// describe copies the descriptive fields of c. Fields are copied only when
// they changed: events share them, so they are never modified in place.
func (a *Alert) describe(c *Condition) {
	a.Type, a.CID, a.CIDName, a.Severity, a.Uniq = c.Type, c.CID, c.CIDName, c.Severity, c.Uniq
	if !fieldsEqual(a.Fields, c.Fields) {
		a.Fields = cloneFields(c.Fields)
	}
}

func fieldsEqual(a, b []Field) bool {
	return slices.EqualFunc(a, b, func(x, y Field) bool {
		return x.Name == y.Name && x.Value == y.Value && x.IsList == y.IsList &&
			x.Number == y.Number && slices.Equal(x.List, y.List)
	})
}

func cloneFields(fs []Field) []Field {
	out := slices.Clone(fs)
	for i := range out {
		out[i].List = slices.Clone(out[i].List)
	}
	return out
}

// meanWith makes v the mean of n observations given the mean of the first
// n-1 and the n-th, x.
func (v *Values) meanWith(x Values, n uint64) {
	f := float64(n)
	v.PacketsIn += (x.PacketsIn - v.PacketsIn) / f
	v.PacketsOut += (x.PacketsOut - v.PacketsOut) / f
	v.BytesIn += (x.BytesIn - v.BytesIn) / f
	v.BytesOut += (x.BytesOut - v.BytesOut) / f
	v.NewConn += (x.NewConn - v.NewConn) / f
	v.UniqLocalEndpoint += (x.UniqLocalEndpoint - v.UniqLocalEndpoint) / f
	v.UniqRemoteCIDR += (x.UniqRemoteCIDR - v.UniqRemoteCIDR) / f
}

// maxWith makes each counter of v the larger of it and x's.
func (v *Values) maxWith(x Values) {
	v.PacketsIn = max(v.PacketsIn, x.PacketsIn)
	v.PacketsOut = max(v.PacketsOut, x.PacketsOut)
	v.BytesIn = max(v.BytesIn, x.BytesIn)
	v.BytesOut = max(v.BytesOut, x.BytesOut)
	v.NewConn = max(v.NewConn, x.NewConn)
	v.UniqLocalEndpoint = max(v.UniqLocalEndpoint, x.UniqLocalEndpoint)
	v.UniqRemoteCIDR = max(v.UniqRemoteCIDR, x.UniqRemoteCIDR)
}
