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

// memStore is the in-memory store whose commits can be made to fail or
// stall.
type memStore struct {
	*MemStore
	saves   int  // alerts saved
	commits int  // successful SaveAlerts calls
	failNew bool // a commit with a new alert fails
	failOps []Op // a commit fails when it holds an alert about to get one of these ops
	// stall, when not nil, blocks every commit until it is closed or the
	// context ends.
	stall chan struct{}
}

var errDown = errors.New("store is down")

func newMemStore() *memStore { return &memStore{MemStore: NewMemStore(1000)} }

func (s *memStore) SaveAlerts(ctx context.Context, list []*Alert) error {
	if s.stall != nil {
		select {
		case <-s.stall:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	for _, a := range list {
		_, stored := s.stored(a.ID)
		op := OpUpdate
		switch {
		case a.ID == 0 && s.failNew:
			return errDown
		case !stored:
			op = OpCreate
		case !a.Ended.IsZero():
			op = OpDelete
		}
		if slices.Contains(s.failOps, op) {
			return errDown
		}
	}
	s.saves += len(list)
	s.commits++
	return s.MemStore.SaveAlerts(ctx, list)
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

// tick runs a Tick and commits its transitions, so that its events are
// recorded at its time (in serve the committer goroutine does this).
func (h *harness) tick(at time.Duration) {
	h.now = at
	h.e.Tick(t0.Add(at))
	_ = h.e.Flush(context.Background())
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
