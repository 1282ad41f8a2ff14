package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/flowsentry/flowsentry/alert"
)

func TestSaveAlert(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, "")
	full := alert.Alert{
		ID: 1004, Policy: 3, Key: "TGRP+PROTO+PORT/1/6/80", Type: "threshold_exceeded",
		CID: 2, CIDName: "customers", Severity: 12,
		Fields: []alert.Field{
			{Name: "OBJECT_TYPE", Value: "TGRP+PROTO+PORT"},
			{Name: "PORT", Value: "80", Number: true},
			{Name: "SOURCES", List: []string{"10.0.0.0/24", "192.0.2.0/24"}, IsList: true},
		},
		Uniq:     true,
		Earliest: t0, Latest: t0.Add(90 * time.Second), LastCall: t0.Add(60 * time.Second),
		Cur:     alert.Values{PacketsIn: 4361.75, BytesIn: 1e12, NewConn: 0.125, UniqLocalEndpoint: 3, UniqRemoteCIDR: 7},
		Avg:     alert.Values{PacketsIn: 1000.5, PacketsOut: 1, BytesOut: 2},
		Peak:    alert.Values{PacketsIn: 9999.99, BytesIn: 1.5e12},
		Samples: 1 << 40,
	}
	ended := full
	ended.Ended = t0.Add(11 * time.Minute)
	ended.Severity = 3
	ended.Fields = nil
	for _, tc := range []struct {
		name string
		save []alert.Alert
		want []alert.Alert // by Alerts
	}{
		{"every field", []alert.Alert{full}, []alert.Alert{full}},
		{"minimal", []alert.Alert{{ID: 1}}, []alert.Alert{{ID: 1}}},
		{"replaced whole", []alert.Alert{full, ended}, []alert.Alert{ended}},
		{"nanoseconds dropped", []alert.Alert{{ID: 2, Earliest: t0.Add(999)}}, []alert.Alert{{ID: 2, Earliest: t0}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openTest(t, "")
			for i := range tc.save {
				if err := s.SaveAlert(ctx, &tc.save[i]); err != nil {
					t.Fatal(err)
				}
			}
			got, err := s.Alerts(ctx, alert.Query{})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(got, tc.want); diff != "" {
				t.Errorf("Alerts (-got +want):\n%s", diff)
			}
		})
	}

	t.Run("not JSON", func(t *testing.T) {
		bad := alert.Alert{ID: 5}
		bad.Avg.BytesIn = nan()
		err := s.SaveAlert(ctx, &bad)
		want := "store: save alert 5: average values: json: unsupported value: NaN"
		if err == nil || err.Error() != want {
			t.Errorf("SaveAlert error = %v, want %q", err, want)
		}
	})
}

// TestSaveAlerts commits a batch in one transaction: new alerts get the
// next IDs in order; a failure saves nothing, leaves their IDs at 0 and
// takes no ID from the sequence.
func TestSaveAlerts(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, "")
	first, err := s.NextAlertID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	kept := &alert.Alert{ID: first, Key: "kept", Earliest: t0}
	if err := s.SaveAlert(ctx, kept); err != nil {
		t.Fatal(err)
	}
	bad := &alert.Alert{ID: first, Key: "kept, changed", Earliest: t0}
	bad.Cur.PacketsIn = nan()
	a, b := &alert.Alert{Key: "a", Earliest: t0}, &alert.Alert{Key: "b", Earliest: t0}
	if err := s.SaveAlerts(ctx, []*alert.Alert{a, b, bad}); err == nil {
		t.Fatal("SaveAlerts with a NaN value succeeded")
	}
	if a.ID != 0 || b.ID != 0 {
		t.Errorf("IDs after a failed commit = %d, %d; want 0, 0", a.ID, b.ID)
	}
	changed := &alert.Alert{ID: first, Key: "kept, changed", Earliest: t0}
	if err := s.SaveAlerts(ctx, []*alert.Alert{a, changed, b}); err != nil {
		t.Fatal(err)
	}
	if a.ID != first+1 || b.ID != first+2 {
		t.Errorf("IDs = %d, %d; want %d, %d (the failed commit took none)", a.ID, b.ID, first+1, first+2)
	}
	got, err := s.Alerts(ctx, alert.Query{})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, al := range got {
		keys = append(keys, fmt.Sprintf("%d %s", al.ID, al.Key))
	}
	want := []string{fmt.Sprintf("%d b", first+2), fmt.Sprintf("%d a", first+1), fmt.Sprintf("%d kept, changed", first)}
	if diff := cmp.Diff(keys, want); diff != "" {
		t.Errorf("stored alerts (-got +want):\n%s", diff)
	}
	if next, err := s.NextAlertID(ctx); err != nil || next != first+3 {
		t.Errorf("NextAlertID after the batch = %d, %v; want %d", next, err, first+3)
	}
}

func nan() float64 {
	zero := 0.0
	return zero / zero
}

func TestOpenAlerts(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, "")
	list := []alert.Alert{
		{ID: 3, Earliest: t0},
		{ID: 1, Earliest: t0.Add(time.Hour)},
		{ID: 2, Earliest: t0, Ended: t0.Add(time.Minute)},
	}
	for i := range list {
		if err := s.SaveAlert(ctx, &list[i]); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.OpenAlerts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(got, []alert.Alert{list[1], list[0]}); diff != "" {
		t.Errorf("OpenAlerts (-got +want):\n%s", diff)
	}
}

func TestAlertsQuery(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, "")
	h := func(n float64) time.Time { return t0.Add(time.Duration(n * float64(time.Hour))) }
	for _, a := range []alert.Alert{
		{ID: 1, CID: 1, Earliest: h(0), Latest: h(0.1), Ended: h(0.3)},
		{ID: 2, CID: 2, Earliest: h(1), Latest: h(1.2)}, // open
		{ID: 3, CID: 1, Earliest: h(2), Latest: h(2), Ended: h(2.2)},
		{ID: 4, CID: 3, Earliest: h(3), Latest: h(3.1)}, // open
		{ID: 5, CID: 1, Earliest: h(3), Latest: h(3), Ended: h(3.2)},
	} {
		if err := s.SaveAlert(ctx, &a); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name    string
		q       alert.Query
		want    []uint64
		wantErr string
	}{
		{name: "everything, newest first", q: alert.Query{}, want: []uint64{5, 4, 3, 2, 1}},
		{name: "created since, bound included", q: alert.Query{CreatedSince: h(2)}, want: []uint64{5, 4, 3}},
		{name: "created since the future", q: alert.Query{CreatedSince: h(4)}},
		{name: "active since: open ones and those seen since", q: alert.Query{ActiveSince: h(2)}, want: []uint64{5, 4, 3, 2}},
		{name: "active since: only open ones", q: alert.Query{ActiveSince: h(5)}, want: []uint64{4, 2}},
		{name: "partitions", q: alert.Query{CIDs: []uint32{1, 3}}, want: []uint64{5, 4, 3, 1}},
		{name: "no partition", q: alert.Query{CIDs: []uint32{}}},
		{name: "IDs", q: alert.Query{IDs: []uint64{1, 4, 99}}, want: []uint64{4, 1}},
		{name: "no ID", q: alert.Query{IDs: []uint64{}}},
		{name: "limit", q: alert.Query{Limit: 2}, want: []uint64{5, 4}},
		{
			name: "every filter",
			q:    alert.Query{CreatedSince: h(1), ActiveSince: h(2.5), CIDs: []uint32{1, 2}, IDs: []uint64{1, 2, 3, 5}, Limit: 1},
			want: []uint64{5},
		},
		{name: "negative limit", q: alert.Query{Limit: -1}, wantErr: "store: alerts: the limit -1 is negative: use 0 for the default of 10000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			list, err := s.Alerts(ctx, tc.q)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("Alerts error = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []uint64
			for _, a := range list {
				got = append(got, a.ID)
			}
			if diff := cmp.Diff(got, tc.want); diff != "" {
				t.Errorf("Alerts IDs (-got +want):\n%s", diff)
			}
		})
	}
}

func TestAlertsDefaultLimit(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, "")
	_, err := s.w.ExecContext(ctx, `WITH RECURSIVE n (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
		INSERT INTO alerts (`+alertColumns+`)
		SELECT i, 0, '', '', 0, '', 0, i, 0, 0, 0, 'null', '{}', '{}', '{}', 0, 0 FROM n`, DefaultAlertLimit+5)
	if err != nil {
		t.Fatal(err)
	}
	list, err := s.Alerts(ctx, alert.Query{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != DefaultAlertLimit || list[0].ID != DefaultAlertLimit+5 {
		t.Errorf("Alerts returned %d alerts, newest %d; want %d, newest %d", len(list), list[0].ID, DefaultAlertLimit, DefaultAlertLimit+5)
	}
}
