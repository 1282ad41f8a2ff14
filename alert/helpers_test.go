package alert

import (
	"cmp"
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"
)

// memStore is an in-memory Store whose calls can be made to fail.
type memStore struct {
	mu      sync.Mutex
	next    uint64
	alerts  map[uint64]Alert
	saves   int
	failIDs bool // NextAlertID fails
	failOps []Op // SaveAlert fails for alerts about to get these ops
}

var errDown = errors.New("store is down")

func newMemStore() *memStore { return &memStore{next: 1000, alerts: map[uint64]Alert{}} }

func (s *memStore) NextAlertID(context.Context) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failIDs {
		return 0, errDown
	}
	s.next++
	return s.next, nil
}

func (s *memStore) SaveAlert(_ context.Context, a *Alert) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if slices.Contains(s.failOps, opOf(s.alerts, a)) {
		return errDown
	}
	s.saves++
	s.alerts[a.ID] = *a
	return nil
}

// opOf guesses the transition a save stands for, for failure injection.
func opOf(stored map[uint64]Alert, a *Alert) Op {
	switch _, ok := stored[a.ID]; {
	case !ok:
		return OpCreate
	case !a.Ended.IsZero():
		return OpDelete
	}
	return OpUpdate
}

func (s *memStore) OpenAlerts(context.Context) ([]Alert, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Alert
	for _, a := range s.alerts {
		if a.Open() {
			out = append(out, a)
		}
	}
	return out, nil
}

func (s *memStore) Alerts(_ context.Context, q Query) ([]Alert, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Alert
	for _, a := range s.alerts {
		switch {
		case q.IDs != nil && !slices.Contains(q.IDs, a.ID):
		case q.CIDs != nil && !slices.Contains(q.CIDs, a.CID):
		case !q.CreatedSince.IsZero() && a.Earliest.Before(q.CreatedSince):
		case !q.ActiveSince.IsZero() && !a.Open() && a.Latest.Before(q.ActiveSince):
		default:
			out = append(out, a)
		}
	}
	slices.SortFunc(out, func(a, b Alert) int { return cmp.Compare(b.ID, a.ID) })
	if q.Limit > 0 && len(out) > q.Limit {
		out = out[:q.Limit]
	}
	return out, nil
}

// got is an event as the tests compare it: when it was issued (the time of
// the Observe or Tick that issued it, from t0), its op and alert ID.
type got struct {
	At time.Duration
	Op Op
	ID uint64
}

// harness drives an engine with test time and records its events.
type harness struct {
	t      testing.TB
	store  *memStore
	e      *Engine
	now    time.Duration
	events []Event
	got    []got
}

var t0 = time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newHarness(t testing.TB, cfg Config, store *memStore) *harness {
	t.Helper()
	h := &harness{t: t, store: store}
	e, err := New(cfg, store, SinkFunc(func(ev Event) {
		h.events = append(h.events, ev)
		h.got = append(h.got, got{At: h.now, Op: ev.Op, ID: ev.Alert.ID})
	}), quietLog())
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.e = e
	return h
}

func (h *harness) observe(at time.Duration, c Condition) {
	h.now = at
	h.e.Observe(t0.Add(at), c)
}

func (h *harness) tick(at time.Duration) {
	h.now = at
	h.e.Tick(t0.Add(at))
}

// tgrpCondition is a threshold_exceeded TGRP condition with packets in at
// pps.
func tgrpCondition(pps float64) Condition {
	return Condition{
		Policy: 7, Key: "TGRP/1", Type: "threshold_exceeded", CID: 1, CIDName: "Default", Severity: 5,
		Fields: []Field{
			{Name: "OBJECT_TYPE", Value: "TGRP"},
			{Name: "TGRP", Value: "1", Number: true},
			{Name: "TGRP_NAME", Value: "Servers"},
			{Name: "THRESHOLD_TYPE", Value: "packets_in"},
			{Name: "THRESHOLD_VALUE", Value: "1000.0", Number: true},
		},
		Values: Values{PacketsIn: pps, PacketsOut: pps / 2, BytesIn: pps * 100, BytesOut: pps * 50, NewConn: pps / 10},
	}
}
