package store

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/flowsentry/flowsentry/action"
	"github.com/flowsentry/flowsentry/annotate"
)

func TestAnnotations(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, "")
	saveAlerts(t, s, 1004, 1005)
	for _, a := range []action.Action{{ID: 7, Alert: 1004}, {ID: 8, Alert: 1004}, {ID: 9, Alert: 1005}} {
		if err := s.SaveAction(ctx, &a); err != nil {
			t.Fatal(err)
		}
	}
	first := []annotate.Value{
		{Alert: 1004, Action: 7, Key: "blocked", Value: 1, Time: t0},
		{Alert: 1004, Action: 8, Key: "ticket", Value: math.MaxUint64, Time: t0},
		{Alert: 1005, Action: 9, Key: "blocked", Value: 3, Time: t0},
	}
	second := []annotate.Value{
		{Alert: 1004, Action: 7, Key: "blocked", Value: 2, Time: t0.Add(time.Minute)},
	}
	for _, vals := range [][]annotate.Value{first, second, nil} {
		if err := s.AddValues(ctx, vals); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name  string
		alert uint64
		want  []annotate.Value
	}{
		{"in the order added", 1004, []annotate.Value{first[0], first[1], second[0]}},
		{"other alert", 1005, first[2:]},
		{"none", 1, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.Values(ctx, tc.alert)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(got, tc.want); diff != "" {
				t.Errorf("Values(%d) (-got +want):\n%s", tc.alert, diff)
			}
		})
	}

	t.Run("all or none", func(t *testing.T) {
		err := s.AddValues(ctx, []annotate.Value{
			{Alert: 1005, Action: 9, Key: "kept?", Value: 1, Time: t0},
			{Alert: 1005, Action: 99, Key: "bad", Value: 1, Time: t0},
		})
		want := `store: add annotation "bad" of alert 1005 action 99: constraint failed: FOREIGN KEY constraint failed`
		if err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("AddValues error = %v, want %q", err, want)
		}
		got, err := s.Values(ctx, 1005)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(got, first[2:]); diff != "" {
			t.Errorf("Values after a failed AddValues (-got +want):\n%s", diff)
		}
	})
}
