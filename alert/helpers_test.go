package alert

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"
)

// memStore is the in-memory store whose calls can be made to fail.
type memStore struct {
	*MemStore
	saves   int
	failIDs bool // NextAlertID fails
	failOps []Op // SaveAlert fails for alerts about to get these ops
}

var errDown = errors.New("store is down")

func newMemStore() *memStore { return &memStore{MemStore: NewMemStore(1000)} }

func (s *memStore) NextAlertID(ctx context.Context) (uint64, error) {
	if s.failIDs {
		return 0, errDown
	}
	return s.MemStore.NextAlertID(ctx)
}

func (s *memStore) SaveAlert(ctx context.Context, a *Alert) error {
	_, stored := s.stored(a.ID)
	op := OpUpdate
	switch {
	case !stored:
		op = OpCreate
	case !a.Ended.IsZero():
		op = OpDelete
	}
	if slices.Contains(s.failOps, op) {
		return errDown
	}
	s.saves++
	return s.MemStore.SaveAlert(ctx, a)
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
