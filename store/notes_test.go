package store

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/flowsentry/flowsentry/action"
	"github.com/flowsentry/flowsentry/alert"
	"github.com/flowsentry/flowsentry/alertindex"
)

func TestNotes(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openTest(t, dir)
	for _, id := range []uint64{1, 2} {
		if err := s.SaveAlert(ctx, &alert.Alert{ID: id, Earliest: t0}); err != nil {
			t.Fatal(err)
		}
	}
	add := []alertindex.Note{
		{Alert: 2, User: "ann", Time: t0, Text: "first @a"},
		{Alert: 1, User: "bob", Time: t0, Text: "other"},
		{Alert: 2, User: "bob", Time: t0, Text: "second @B @a"},
	}
	for i := range add {
		if err := s.AddNote(ctx, &add[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.AddNote(ctx, &alertindex.Note{Alert: 9, Text: "x"}); !errors.Is(err, alertindex.ErrNotFound) {
		t.Errorf("note on a missing alert: %v, want ErrNotFound", err)
	}
	s.Close()
	s = openTest(t, dir) // notes persist
	got, err := s.Notes(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	want := []alertindex.Note{
		{ID: 1, Alert: 2, User: "ann", Time: t0, Text: "first @a", Tags: []string{"@a"}},
		{ID: 3, Alert: 2, User: "bob", Time: t0, Text: "second @B @a", Tags: []string{"@b", "@a"}},
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("Notes (-got +want):\n%s", diff)
	}
	if got, err := s.Notes(ctx, 7); err != nil || got == nil || len(got) != 0 {
		t.Errorf("Notes of an alert without notes: %v, %v; want an empty list", got, err)
	}
	var all []uint64
	if err := s.EachNote(ctx, func(n alertindex.Note) error { all = append(all, n.ID); return nil }); err != nil || !slices.Equal(all, []uint64{1, 2, 3}) {
		t.Errorf("EachNote: %v, %v", all, err)
	}
}

func TestEachAlertAndActionState(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, "")
	for _, id := range []uint64{3, 1, 2} {
		if err := s.SaveAlert(ctx, &alert.Alert{ID: id, Type: "t", Earliest: t0}); err != nil {
			t.Fatal(err)
		}
	}
	for _, a := range []action.Action{{ID: 5, Alert: 2, State: action.StateWaiting}, {ID: 4, Alert: 3, State: action.StateEnded}} {
		if err := s.SaveAction(ctx, &a); err != nil {
			t.Fatal(err)
		}
	}
	var ids []uint64
	if err := s.EachAlert(ctx, func(a alert.Alert) error { ids = append(ids, a.ID); return nil }); err != nil || !slices.Equal(ids, []uint64{1, 2, 3}) {
		t.Errorf("EachAlert: %v, %v", ids, err)
	}
	stop := errors.New("stop")
	if err := s.EachAlert(ctx, func(alert.Alert) error { return stop }); err != stop {
		t.Errorf("EachAlert returned %v, want fn's error", err)
	}
	var states []string
	err := s.EachActionState(ctx, func(alertID, id uint64, state string) error {
		states = append(states, state)
		return nil
	})
	if err != nil || !slices.Equal(states, []string{"ended", "waiting_approval"}) {
		t.Errorf("EachActionState: %v, %v", states, err)
	}
}
