package alert

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/flowsentry/flowsentry/config/check"
)

const (
	sec  = time.Second
	min  = time.Minute
	hour = time.Hour
)

// between returns a predicate true from from (included) to to (excluded).
func between(from, to time.Duration) func(time.Duration) bool {
	return func(t time.Duration) bool { return t >= from && t < to }
}

func TestLifecycle(t *testing.T) {
	for _, tc := range []struct {
		name  string
		step  time.Duration // ticks (and observations) every step from 0
		until time.Duration // last tick
		seen  func(t time.Duration) bool
		want  []got
	}{
		{
			name: "one sighting: CREATE at once, no UPDATE, DELETE 10 minutes later",
			step: 10 * sec, until: 15 * min,
			seen: between(0, 1),
			want: []got{{0, OpCreate, 1001}, {10 * min, OpDelete, 1001}},
		},
		{
			name: "persisting: UPDATE at most once a minute, none before the first minute",
			step: 10 * sec, until: 5*min + 50*sec,
			seen: between(0, hour),
			want: []got{
				{0, OpCreate, 1001}, {1 * min, OpUpdate, 1001}, {2 * min, OpUpdate, 1001},
				{3 * min, OpUpdate, 1001}, {4 * min, OpUpdate, 1001}, {5 * min, OpUpdate, 1001},
			},
		},
		{
			name: "ticks finer than the interval still give one UPDATE a minute",
			step: sec, until: 2*min + 59*sec,
			seen: between(0, hour),
			want: []got{{0, OpCreate, 1001}, {1 * min, OpUpdate, 1001}, {2 * min, OpUpdate, 1001}},
		},
		{
			name: "stopped condition: its last sighting is reported, then quiet DELETE from that UPDATE",
			step: 10 * sec, until: 20 * min,
			seen: between(0, 80*sec),
			want: []got{
				{0, OpCreate, 1001}, {1 * min, OpUpdate, 1001}, {2 * min, OpUpdate, 1001},
				{12 * min, OpDelete, 1001},
			},
		},
		{
			name: "condition back within the quiet period: UPDATE, the quiet period restarts",
			step: 30 * sec, until: 30 * min,
			seen: func(t time.Duration) bool { return t == 0 || t == 9*min },
			want: []got{{0, OpCreate, 1001}, {9 * min, OpUpdate, 1001}, {19 * min, OpDelete, 1001}},
		},
		{
			name: "condition back after the DELETE: a new alert",
			step: 1 * min, until: 13 * min,
			seen: func(t time.Duration) bool { return t == 0 || t == 12*min },
			want: []got{{0, OpCreate, 1001}, {10 * min, OpDelete, 1001}, {12 * min, OpCreate, 1002}},
		},
		{
			name: "12 hours: DELETE the old ID, then CREATE a new one at once",
			step: 1 * min, until: 12*hour + 2*min,
			seen: between(0, 24*hour),
			want: append(append([]got{{0, OpCreate, 1001}}, updates(1001, 1*min, 12*hour)...),
				got{12 * hour, OpDelete, 1001}, got{12 * hour, OpCreate, 1002},
				got{12*hour + 1*min, OpUpdate, 1002}, got{12*hour + 2*min, OpUpdate, 1002}),
		},
		{
			name: "12 hours with the condition gone since the previous tick: DELETE only",
			step: 1 * min, until: 12*hour + 30*min,
			seen: between(0, 12*hour-1*sec),
			want: append(append([]got{{0, OpCreate, 1001}}, updates(1001, 1*min, 12*hour)...),
				got{12 * hour, OpDelete, 1001}),
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, DefaultConfig(), newMemStore())
			for at := time.Duration(0); at <= tc.until; at += tc.step {
				if tc.seen(at) {
					h.observe(at, tgrpCondition(1500))
				}
				h.tick(at)
			}
			if diff := cmp.Diff(h.got, tc.want); diff != "" {
				t.Errorf("events (-got +want):\n%s", diff)
			}
		})
	}
}

// updates lists an UPDATE of id every minute from from to before to.
func updates(id uint64, from, to time.Duration) []got {
	var out []got
	for at := from; at < to; at += min {
		out = append(out, got{at, OpUpdate, id})
	}
	return out
}

func TestValues(t *testing.T) {
	h := newHarness(t, DefaultConfig(), newMemStore())
	c := tgrpCondition(1000)
	h.observe(0, c)
	h.tick(0)
	c = tgrpCondition(3000)
	c.Severity = 8
	c.Fields[4].Value = "2000.0"
	h.observe(20*sec, c)
	h.tick(20 * sec)
	h.observe(40*sec, tgrpCondition(2000))
	h.tick(40 * sec)
	h.tick(1 * min)

	want := tgrpCondition(2000)
	wantAlert := Alert{
		ID: 1001, Policy: 7, Key: "TGRP/1", Type: "threshold_exceeded", CID: 1, CIDName: "Default",
		Severity: want.Severity, Fields: want.Fields,
		Earliest: t0, Latest: t0.Add(40 * sec), LastCall: t0.Add(1 * min),
		Cur:     want.Values,
		Avg:     tgrpCondition(2000).Values,
		Peak:    tgrpCondition(3000).Values,
		Samples: 3,
	}
	if diff := cmp.Diff(h.events[len(h.events)-1], Event{Op: OpUpdate, Alert: wantAlert}); diff != "" {
		t.Errorf("UPDATE event (-got +want):\n%s", diff)
	}
	if diff := cmp.Diff(storedAlert(h.store, 1001), wantAlert); diff != "" {
		t.Errorf("stored alert at the UPDATE (-got +want):\n%s", diff)
	}
}

func TestFieldsAreCopied(t *testing.T) {
	h := newHarness(t, DefaultConfig(), newMemStore())
	c := tgrpCondition(1000)
	h.observe(0, c)
	c.Fields[2].Value = "changed by the detector after the call"
	h.tick(0)
	a, err := h.e.Get(context.Background(), 1001)
	if err != nil {
		t.Fatal(err)
	}
	if got := a.Fields[2].Value; got != "Servers" {
		t.Errorf("TGRP_NAME = %q after the detector reused its slice, want Servers", got)
	}
}

func TestRestart(t *testing.T) {
	for _, tc := range []struct {
		name string
		// seen says when the condition holds in the second engine's life,
		// which runs from restartAt to until.
		seen      func(time.Duration) bool
		restartAt time.Duration
		until     time.Duration
		want      []got
	}{
		{
			name:      "condition persists: same ID, UPDATE a minute after the last one",
			seen:      between(0, 5*min),
			restartAt: 90 * sec, until: 16 * min,
			want: []got{
				{2 * min, OpUpdate, 1001}, {3 * min, OpUpdate, 1001}, {4 * min, OpUpdate, 1001},
				{5 * min, OpUpdate, 1001}, {15 * min, OpDelete, 1001},
			},
		},
		{
			name:      "condition gone: DELETE 10 minutes after the last UPDATE",
			seen:      between(0, 0),
			restartAt: 3 * min, until: 20 * min,
			want: []got{{11 * min, OpDelete, 1001}},
		},
		{
			name:      "down longer than the quiet period: DELETE at the first tick",
			seen:      between(0, 0),
			restartAt: 45 * min, until: 50 * min,
			want: []got{{45 * min, OpDelete, 1001}},
		},
		{
			name:      "down past the 12 hours: DELETE, then CREATE for the persisting condition",
			seen:      between(0, 24*hour),
			restartAt: 13 * hour, until: 13*hour + 1*min,
			want: []got{{13 * hour, OpDelete, 1001}, {13 * hour, OpCreate, 1002}, {13*hour + 1*min, OpUpdate, 1002}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := newMemStore()
			before := newHarness(t, DefaultConfig(), store)
			for at := time.Duration(0); at <= 80*sec; at += 10 * sec {
				before.observe(at, tgrpCondition(1000))
				before.tick(at)
			}
			before.e.Stop()
			before.observe(85*sec, tgrpCondition(1000)) // after Stop: ignored
			before.tick(85 * sec)
			if diff := cmp.Diff(before.got, []got{{0, OpCreate, 1001}, {1 * min, OpUpdate, 1001}}); diff != "" {
				t.Fatalf("events before the restart (-got +want):\n%s", diff)
			}

			after := newHarness(t, DefaultConfig(), store)
			for at := tc.restartAt; at <= tc.until; at += 10 * sec {
				if tc.seen(at) {
					after.observe(at, tgrpCondition(1000))
				}
				after.tick(at)
			}
			if diff := cmp.Diff(after.got, tc.want); diff != "" {
				t.Errorf("events after the restart (-got +want):\n%s", diff)
			}
		})
	}
}

func TestStoreFailures(t *testing.T) {
	store := newMemStore()
	h := newHarness(t, DefaultConfig(), store)
	cond := tgrpCondition(1000)

	store.failNew = true
	h.observe(0, cond)
	h.tick(0) // CREATE applied, its commit fails: not sent, not visible
	if open := h.e.Open(); len(open) != 0 {
		t.Errorf("an alert whose CREATE is not committed is visible: %+v", open)
	}
	h.observe(10*sec, cond)
	h.tick(10 * sec)
	store.failNew = false
	h.observe(20*sec, cond)
	h.tick(20 * sec) // CREATE committed at last, as first seen at 0

	store.failOps = []Op{OpUpdate}
	h.observe(80*sec, cond)
	h.tick(80 * sec) // UPDATE due, not saved: not sent
	if h.e.Health() == nil {
		t.Errorf("Health is nil while the UPDATE cannot be saved")
	}
	store.failOps = nil
	h.tick(90 * sec) // sent now
	if err := h.e.Health(); err != nil {
		t.Errorf("Health after a save succeeded: %v", err)
	}

	store.failOps = []Op{OpDelete}
	h.tick(11*min + 30*sec) // DELETE due (10 minutes after the UPDATE of 80 s), not saved: not sent
	store.failOps = nil
	h.tick(11*min + 40*sec)

	want := []got{{20 * sec, OpCreate, 1001}, {90 * sec, OpUpdate, 1001}, {11*min + 40*sec, OpDelete, 1001}}
	if diff := cmp.Diff(h.got, want); diff != "" {
		t.Errorf("events (-got +want):\n%s", diff)
	}
	if len(h.events) == 3 {
		if got := h.events[0].Alert.Earliest; !got.Equal(t0) {
			t.Errorf("CREATE earliest = %v, want the first sighting %v", got, t0)
		}
		if got := h.events[1].Alert.LastCall; !got.Equal(t0.Add(80 * sec)) {
			t.Errorf("UPDATE last call = %v, want the tick that issued it, %v", got, t0.Add(80*sec))
		}
	}
	if got := testutil.ToFloat64(h.e.metrics.storeErrors.WithLabelValues("commit")); got != 4 {
		t.Errorf("failed commits = %v, want 4", got)
	}
}

// recorder is a Sink safe for the committer goroutine.
type recorder struct {
	mu     sync.Mutex
	events []Event
}

func (r *recorder) Alert(ev Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, ev)
}

func (r *recorder) got() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// TestStalledStore stalls every commit while conditions come and go:
// Observe and Tick must not wait for the store, and once it answers every
// transition is delivered once, in order, with the IDs it committed.
func TestStalledStore(t *testing.T) {
	store := newMemStore()
	store.stall = make(chan struct{})
	rec := &recorder{}
	e, err := New(DefaultConfig(), store, rec, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.StartCommitting()
	defer e.Stop()
	ticked := make(chan struct{})
	go func() {
		defer close(ticked)
		for s := range 200 { // 200 virtual seconds: CREATEs, then UPDATEs
			at := t0.Add(time.Duration(s) * sec)
			for k := range 3 {
				c := tgrpCondition(1000)
				c.Key = fmt.Sprintf("TGRP/%d", k+1)
				e.Observe(at, c)
			}
			e.Tick(at)
		}
	}()
	select {
	case <-ticked:
	case <-time.After(10 * time.Second):
		t.Fatal("Observe and Tick wait for a stalled store")
	}
	if n := len(rec.got()); n != 0 {
		t.Fatalf("%d events delivered while the store stalls; none is committed", n)
	}
	if got := testutil.ToFloat64(e.metrics.outbox); got != 12 { // 3 CREATE, 3 UPDATE at 60, 120, 180 s
		t.Errorf("outbox = %v, want 12", got)
	}
	close(store.stall)
	if err := e.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ev := range rec.got() {
		got = append(got, fmt.Sprintf("%s %d %s", ev.Op, ev.Alert.ID, ev.Alert.Key))
	}
	want := []string{
		"CREATE 1001 TGRP/1", "CREATE 1002 TGRP/2", "CREATE 1003 TGRP/3",
		"UPDATE 1001 TGRP/1", "UPDATE 1002 TGRP/2", "UPDATE 1003 TGRP/3",
		"UPDATE 1001 TGRP/1", "UPDATE 1002 TGRP/2", "UPDATE 1003 TGRP/3",
		"UPDATE 1001 TGRP/1", "UPDATE 1002 TGRP/2", "UPDATE 1003 TGRP/3",
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("events (-got +want):\n%s", diff)
	}
	if len(e.Open()) != 3 {
		t.Errorf("%d open alerts after the commit, want 3", len(e.Open()))
	}
}

// TestOutboxFull bounds the outbox while the store is down: transitions
// beyond it are not applied and happen at a later tick, none is lost.
func TestOutboxFull(t *testing.T) {
	store := newMemStore()
	store.failNew = true
	cfg := DefaultConfig()
	cfg.Outbox = 2
	h := newHarness(t, cfg, store)
	observeAll := func(at time.Duration) {
		for k := range 3 {
			c := tgrpCondition(1000)
			c.Key = fmt.Sprintf("TGRP/%d", k+1)
			h.observe(at, c)
		}
		h.tick(at)
	}
	observeAll(0)
	if got := testutil.ToFloat64(h.e.metrics.deferred); got != 1 {
		t.Errorf("deferred = %v, want 1 (the third CREATE)", got)
	}
	store.failNew = false
	observeAll(10 * sec) // the outbox is still full at the Observe; the tick commits the two
	observeAll(20 * sec) // the third is created now
	want := []got{{10 * sec, OpCreate, 1001}, {10 * sec, OpCreate, 1002}, {20 * sec, OpCreate, 1003}}
	if diff := cmp.Diff(h.got, want); diff != "" {
		t.Errorf("events (-got +want):\n%s", diff)
	}
	if got := testutil.ToFloat64(h.e.metrics.deferred); got != 2 {
		t.Errorf("deferred = %v, want 2", got)
	}
}

// TestTickOrder reports conditions in a different order in each tick: the
// alerts of one tick get their IDs, and their events, ordered by policy
// and object, whatever order the detectors met them in.
func TestTickOrder(t *testing.T) {
	h := newHarness(t, DefaultConfig(), newMemStore())
	for _, key := range []string{"TGRP/3", "TGRP/1", "TGRP/2"} {
		c := tgrpCondition(1000)
		c.Key = key
		h.observe(0, c)
	}
	other := tgrpCondition(1000)
	other.Policy, other.Key = 2, "TGRP/9"
	h.observe(0, other)
	h.tick(0)
	var got []string
	for _, ev := range h.events {
		got = append(got, fmt.Sprintf("%d %d %s", ev.Alert.ID, ev.Alert.Policy, ev.Alert.Key))
	}
	want := []string{"1001 2 TGRP/9", "1002 7 TGRP/1", "1003 7 TGRP/2", "1004 7 TGRP/3"}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("events (-got +want):\n%s", diff)
	}
}

// TestOneCommitPerTick opens 10,000 alerts in one tick: one store
// transaction, 10,000 distinct IDs, no store call per alert.
func TestOneCommitPerTick(t *testing.T) {
	store := newMemStore()
	h := newHarness(t, DefaultConfig(), store)
	for k := range 10000 {
		c := tgrpCondition(1000)
		c.Key = fmt.Sprintf("TGRP+IP/1/10.0.%d.%d", k/256, k%256)
		h.observe(0, c)
	}
	h.tick(0)
	if store.commits != 1 {
		t.Errorf("%d commits for one tick, want 1", store.commits)
	}
	ids := map[uint64]bool{}
	for _, ev := range h.events {
		ids[ev.Alert.ID] = true
	}
	if len(h.events) != 10000 || len(ids) != 10000 || ids[0] {
		t.Errorf("%d events with %d distinct IDs (0 among them: %v), want 10000 of each", len(h.events), len(ids), ids[0])
	}
}

func TestDuplicateOpenAlertsAtStart(t *testing.T) {
	store := newMemStore()
	for _, id := range []uint64{5, 9} {
		_ = store.MemStore.SaveAlerts(context.Background(), []*Alert{{ID: id, Policy: 7, Key: "TGRP/1", Type: "threshold_exceeded", Earliest: t0, LastCall: t0}})
	}
	h := newHarness(t, DefaultConfig(), store)
	h.observe(10*sec, tgrpCondition(1000))
	h.tick(10 * sec)
	if diff := cmp.Diff(h.got, []got{{10 * sec, OpDelete, 5}}); diff != "" {
		t.Errorf("events (-got +want):\n%s", diff)
	}
	if got := len(h.e.Open()); got != 1 {
		t.Errorf("%d open alerts, want 1", got)
	}
}

// TestOpenGaugeFollowsSeverity checks that flowsentry_alert_open moves
// an alert to its new severity when the policy's severity changes.
func TestOpenGaugeFollowsSeverity(t *testing.T) {
	h := newHarness(t, DefaultConfig(), newMemStore())
	h.observe(0, tgrpCondition(1000))
	h.tick(0)
	c := tgrpCondition(1000)
	c.Severity = 8
	h.observe(1*sec, c)
	h.tick(1 * sec)
	open := func(sev string) float64 {
		return testutil.ToFloat64(h.e.metrics.open.WithLabelValues("threshold_exceeded", sev))
	}
	if got5, got8 := open("5"), open("8"); got5 != 0 || got8 != 1 {
		t.Errorf("open alerts of severity 5 and 8 = %v, %v; want 0, 1", got5, got8)
	}
	h.tick(2 * min)  // the UPDATE
	h.tick(13 * min) // 10 quiet minutes after it: the alert ends
	if got := open("8"); got != 0 {
		t.Errorf("open alerts of severity 8 after the end = %v, want 0", got)
	}
}

func TestRead(t *testing.T) {
	h := newHarness(t, DefaultConfig(), newMemStore())
	other := tgrpCondition(10)
	other.Key, other.CID = "TGRP/2", 2
	h.observe(0, other)
	h.tick(0)
	h.observe(1*min, tgrpCondition(1000))
	h.tick(1 * min)
	h.tick(10 * min) // 1001 ends
	h.observe(10*min+30*sec, tgrpCondition(2000))
	ctx := context.Background()

	t.Run("Get open alert is the engine's current state", func(t *testing.T) {
		a, err := h.e.Get(ctx, 1002)
		if err != nil {
			t.Fatal(err)
		}
		if a.Latest != t0.Add(10*min+30*sec) || a.Cur.PacketsIn != 2000 {
			t.Errorf("Latest %v, Cur.PacketsIn %v; want the last observation", a.Latest, a.Cur.PacketsIn)
		}
	})
	t.Run("Get ended alert comes from the store", func(t *testing.T) {
		a, err := h.e.Get(ctx, 1001)
		if err != nil {
			t.Fatal(err)
		}
		if a.Open() || a.Ended != t0.Add(10*min) {
			t.Errorf("Ended = %v, want %v", a.Ended, t0.Add(10*min))
		}
	})
	t.Run("Get unknown", func(t *testing.T) {
		_, err := h.e.Get(ctx, 42)
		if !errors.Is(err, ErrNotFound) || err.Error() != "alert 42: alert not found" {
			t.Errorf("err = %v, want alert 42: alert not found", err)
		}
	})
	t.Run("Alerts merges the current state of open alerts", func(t *testing.T) {
		list, err := h.e.Alerts(ctx, Query{CIDs: []uint32{1}})
		if err != nil {
			t.Fatal(err)
		}
		var ids []uint64
		for _, a := range list {
			ids = append(ids, a.ID)
		}
		if diff := cmp.Diff(ids, []uint64{1002}); diff != "" {
			t.Errorf("IDs (-got +want):\n%s", diff)
		}
		if list[0].Latest != t0.Add(10*min+30*sec) {
			t.Errorf("Latest = %v, want the last observation", list[0].Latest)
		}
	})
	t.Run("Open lists open alerts oldest first", func(t *testing.T) {
		var ids []uint64
		for _, a := range h.e.Open() {
			ids = append(ids, a.ID)
		}
		if diff := cmp.Diff(ids, []uint64{1002}); diff != "" {
			t.Errorf("IDs (-got +want):\n%s", diff)
		}
	})
	t.Run("metrics", func(t *testing.T) {
		for _, c := range []struct {
			name string
			got  float64
			want float64
		}{
			{"open threshold_exceeded", testutil.ToFloat64(h.e.metrics.open.WithLabelValues("threshold_exceeded", "5")), 1},
			{"CREATE", testutil.ToFloat64(h.e.metrics.events.WithLabelValues("CREATE")), 2},
			{"UPDATE", testutil.ToFloat64(h.e.metrics.events.WithLabelValues("UPDATE")), 0},
			{"DELETE", testutil.ToFloat64(h.e.metrics.events.WithLabelValues("DELETE")), 1},
		} {
			if c.got != c.want {
				t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
			}
		}
		// open by type, events by op, store errors by operation, outbox,
		// deferred, commit duration.
		if n := testutil.CollectAndCount(h.e); n != 1+3+3+3 {
			t.Errorf("engine collects %d series, want 10", n)
		}
	})
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want []string
	}{
		{"default", func(*Config) {}, nil},
		{"shortened for a test", func(c *Config) { *c = Config{UpdateInterval: sec, QuietPeriod: 3 * sec, MaxAge: min} }, nil},
		{"zero", func(c *Config) { *c = Config{} }, []string{
			"update_interval: 0s is not positive; use e.g. 1m (the manual's value)",
			"quiet_period: 0s is not longer than update_interval (0s); use e.g. 10m (the manual's value)",
			"max_age: 0s is not longer than quiet_period (0s); use e.g. 12h (the manual's value)",
		}},
		{"quiet not longer than max age", func(c *Config) { c.MaxAge = 10 * min }, []string{
			"max_age: 10m0s is not longer than quiet_period (10m0s); use e.g. 12h (the manual's value)",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tc.edit(&cfg)
			var msgs []string
			for _, err := range check.Flatten(cfg.Validate()) {
				msgs = append(msgs, err.Error())
			}
			if diff := cmp.Diff(msgs, tc.want); diff != "" {
				t.Errorf("Validate (-got +want):\n%s", diff)
			}
		})
	}
	if _, err := New(Config{}, newMemStore(), SinkFunc(func(Event) {}), quietLog()); err == nil ||
		err.Error() != "alert.update_interval: 0s is not positive; use e.g. 1m (the manual's value)\n"+
			"alert.quiet_period: 0s is not longer than update_interval (0s); use e.g. 10m (the manual's value)\n"+
			"alert.max_age: 0s is not longer than quiet_period (0s); use e.g. 12h (the manual's value)" {
		t.Errorf("New with a zero config: %v", err)
	}
}

func storedAlert(s *memStore, id uint64) Alert {
	a, _ := s.stored(id)
	return a
}
