package store

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/flowsentry/flowsentry/action"
	"github.com/flowsentry/flowsentry/alert"
)

// saveAlerts saves an open alert under each ID.
func saveAlerts(t *testing.T, s *Store, ids ...uint64) {
	t.Helper()
	for _, id := range ids {
		if err := s.SaveAlert(context.Background(), &alert.Alert{ID: id, Earliest: t0}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestActions(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, "")
	saveAlerts(t, s, 1004, 1005)
	waiting := action.Action{
		ID: 7, Alert: 1004, Policy: 3, Instance: 2, Plugin: "slack",
		State: action.StateWaiting, Created: t0, Updated: t0,
	}
	running := action.Action{
		ID: 8, Alert: 1004, Policy: 3, Instance: 4, Plugin: "blackhole",
		State: action.StateInProgress, Created: t0, Updated: t0.Add(time.Minute),
		Token: "00112233445566778899aabbccddeeff", TokenUntil: t0.Add(6 * time.Minute),
	}
	ended := action.Action{ID: 9, Alert: 1005, State: action.StateEnded, Created: t0}
	rejected := action.Action{ID: 10, Alert: 1005, State: action.StateRejected, Created: t0}
	for _, a := range []action.Action{ended, waiting, running, rejected} {
		if err := s.SaveAction(ctx, &a); err != nil {
			t.Fatal(err)
		}
	}
	// Saving again replaces the whole action.
	running.State, running.Token = action.StateEnded, "ffeeddccbbaa99887766554433221100"
	if err := s.SaveAction(ctx, &running); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name string
		get  func() (any, error)
		want any
	}{
		{"one", func() (any, error) { return s.Action(ctx, 8) }, running},
		{"of an alert", func() (any, error) { return s.Actions(ctx, 1004) }, []action.Action{waiting, running}},
		{"of an alert without actions", func() (any, error) { return s.Actions(ctx, 1) }, []action.Action(nil)},
		{"open", func() (any, error) { return s.OpenActions(ctx) }, []action.Action{waiting}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.get()
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(got, tc.want); diff != "" {
				t.Errorf("(-got +want):\n%s", diff)
			}
		})
	}

	t.Run("unknown", func(t *testing.T) {
		_, err := s.Action(ctx, 99)
		if !errors.Is(err, action.ErrNotFound) {
			t.Errorf("Action(99) error = %v, want one wrapping action.ErrNotFound", err)
		}
	})
	t.Run("alert missing", func(t *testing.T) {
		err := s.SaveAction(ctx, &action.Action{ID: 11, Alert: 1})
		want := "store: save action 11 of alert 1: constraint failed: FOREIGN KEY constraint failed"
		if err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("SaveAction error = %v, want %q", err, want)
		}
	})
}

func TestCalls(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, "")
	saveAlerts(t, s, 1)
	for _, id := range []uint64{7, 8} {
		if err := s.SaveAction(ctx, &action.Action{ID: id, Alert: 1, State: action.StateInProgress}); err != nil {
			t.Fatal(err)
		}
	}
	big := bytes.Repeat([]byte("x"), MaxCallOutput+1)
	calls := []action.Call{
		{Action: 7, Op: alert.OpCreate, Start: t0, Duration: 1500 * time.Millisecond, ExitCode: 0, Output: []byte("ok\n")},
		{Action: 8, Op: alert.OpCreate, Start: t0, ExitCode: -1, Err: "executable missing: plugin.sh"},
		{Action: 7, Op: alert.OpUpdate, Start: t0.Add(time.Minute), Duration: 60 * time.Second, ExitCode: -1, Err: "timeout", Output: big},
		{Action: 7, Op: alert.OpDelete, Start: t0.Add(11 * time.Minute), ExitCode: 1, Output: []byte("x"), Truncated: true},
	}
	for i := range calls {
		if err := s.AddCall(ctx, &calls[i]); err != nil {
			t.Fatal(err)
		}
	}
	if len(calls[2].Output) != MaxCallOutput+1 || calls[2].Truncated {
		t.Errorf("AddCall modified its argument")
	}
	capped := calls[2]
	capped.Output, capped.Truncated = big[:MaxCallOutput], true
	for _, tc := range []struct {
		name   string
		action uint64
		want   []action.Call
	}{
		{"in order, output capped", 7, []action.Call{calls[0], capped, calls[3]}},
		{"without output", 8, []action.Call{calls[1]}},
		{"no calls", 9, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.Calls(ctx, tc.action)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(got, tc.want); diff != "" {
				t.Errorf("Calls(%d) (-got +want):\n%s", tc.action, diff)
			}
		})
	}
	t.Run("action missing", func(t *testing.T) {
		err := s.AddCall(ctx, &action.Call{Action: 99, Op: alert.OpCreate})
		want := "store: add CREATE call of action 99: constraint failed: FOREIGN KEY constraint failed"
		if err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("AddCall error = %v, want %q", err, want)
		}
	})
}

// TestListActions lists the actions of several partitions: the order
// (waiting, in progress, ended; newest first inside each), the filters,
// the counts, the latest call and the paging.
func TestListActions(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, "")
	for _, al := range []alert.Alert{
		{ID: 1, CID: 1, Type: "threshold", Earliest: t0, Fields: []alert.Field{{Name: "TGRP", Value: "4", Number: true}}},
		{ID: 2, CID: 2, Type: "ddos", Earliest: t0},
		{ID: 3, CID: 1, Type: "scan", Earliest: t0, Fields: []alert.Field{{Name: "TARGET_TG", Value: "0", Number: true}, {Name: "SCANNER_TG", Value: "7", Number: true}}},
	} {
		if err := s.SaveAlert(ctx, &al); err != nil {
			t.Fatal(err)
		}
	}
	acts := []action.Action{
		{ID: 10, Alert: 1, State: action.StateEnded, Created: t0},
		{ID: 11, Alert: 1, State: action.StateWaiting, Created: t0},
		{ID: 12, Alert: 2, State: action.StateInProgress, Created: t0},
		{ID: 13, Alert: 3, State: action.StateInProgress, Created: t0},
		{ID: 14, Alert: 3, State: action.StateRejected, Created: t0},
		{ID: 15, Alert: 3, State: action.StateWaiting, Created: t0},
	}
	for i := range acts {
		if err := s.SaveAction(ctx, &acts[i]); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []action.Call{
		{Action: 13, Op: alert.OpCreate, Start: t0, ExitCode: 0},
		{Action: 13, Op: alert.OpUpdate, Start: t0.Add(time.Minute), ExitCode: 3},
	} {
		if err := s.AddCall(ctx, &c); err != nil {
			t.Fatal(err)
		}
	}
	ended := []action.State{action.StateEnded, action.StateRejected}
	for _, tc := range []struct {
		name   string
		q      action.Query
		ids    []uint64
		counts map[action.State]int
		total  int
	}{
		{"admin, every state", action.Query{All: true, Limit: 100}, []uint64{15, 11, 13, 12, 14, 10},
			map[action.State]int{action.StateWaiting: 2, action.StateInProgress: 2, action.StateEnded: 1, action.StateRejected: 1}, 6},
		{"partition 1 only", action.Query{CIDs: []uint32{1}, Limit: 100}, []uint64{15, 11, 13, 14, 10},
			map[action.State]int{action.StateWaiting: 2, action.StateInProgress: 1, action.StateEnded: 1, action.StateRejected: 1}, 5},
		{"partition 2, waiting", action.Query{CIDs: []uint32{2}, States: []action.State{action.StateWaiting}, Limit: 100}, []uint64{},
			map[action.State]int{action.StateInProgress: 1}, 0},
		{"no partition", action.Query{Limit: 100}, []uint64{}, map[action.State]int{}, 0},
		{"partition 1, traffic group 7 only", action.Query{CIDs: []uint32{1}, Groups: []uint32{7}, Limit: 100}, []uint64{15, 13, 14},
			map[action.State]int{action.StateWaiting: 1, action.StateInProgress: 1, action.StateRejected: 1}, 3},
		{"partition 1, traffic group 4 only", action.Query{CIDs: []uint32{1}, Groups: []uint32{4}, Limit: 100}, []uint64{11, 10},
			map[action.State]int{action.StateWaiting: 1, action.StateEnded: 1}, 2},
		{"ended of alert 3", action.Query{All: true, Alert: 3, States: ended, Limit: 100}, []uint64{14},
			map[action.State]int{action.StateWaiting: 1, action.StateInProgress: 1, action.StateRejected: 1}, 1},
		{"paged", action.Query{All: true, Limit: 2, Offset: 1}, []uint64{11, 13},
			map[action.State]int{action.StateWaiting: 2, action.StateInProgress: 2, action.StateEnded: 1, action.StateRejected: 1}, 6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			page, err := s.ListActions(ctx, tc.q)
			if err != nil {
				t.Fatal(err)
			}
			ids := []uint64{}
			for _, l := range page.Actions {
				ids = append(ids, l.ID)
			}
			if diff := cmp.Diff(ids, tc.ids); diff != "" {
				t.Errorf("IDs (-got +want):\n%s", diff)
			}
			if diff := cmp.Diff(page.Counts, tc.counts); diff != "" {
				t.Errorf("counts (-got +want):\n%s", diff)
			}
			if page.Total != tc.total {
				t.Errorf("total = %d, want %d", page.Total, tc.total)
			}
		})
	}
	t.Run("alert and latest call", func(t *testing.T) {
		page, err := s.ListActions(ctx, action.Query{All: true, Alert: 3, States: []action.State{action.StateInProgress}, Limit: 1})
		if err != nil {
			t.Fatal(err)
		}
		code, start := 3, t0.Add(time.Minute)
		want := []action.Listed{{Action: acts[3], AlertType: "scan", CID: 1, LastCall: &start, LastExitCode: &code}}
		if diff := cmp.Diff(page.Actions, want); diff != "" {
			t.Errorf("(-got +want):\n%s", diff)
		}
		page, err = s.ListActions(ctx, action.Query{All: true, Alert: 3, States: []action.State{action.StateWaiting}, Limit: 1})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Actions) != 1 || page.Actions[0].LastCall != nil || page.Actions[0].LastExitCode != nil {
			t.Errorf("an action without calls: %+v, want no latest call", page.Actions)
		}
	})
}
