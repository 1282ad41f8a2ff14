package store

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/flowsentry/flowsentry/alert"
)

func TestAlertCounts(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, "")
	now := t0
	tg := func(id string) []alert.Field { return []alert.Field{{Name: "TGRP", Value: id, Number: true}} }
	iface := []alert.Field{{Name: "EXPORTER_ADDR", Value: "192.0.2.1"}, {Name: "IFINDEX", Value: "7", Number: true}}
	ago := func(m int) time.Time { return now.Add(-time.Duration(m) * time.Minute) }
	alerts := []alert.Alert{
		// Policy 1, group 3: one ended 10 minutes ago, one ended 90
		// minutes ago, one still open since 3 hours (in both hours).
		{Policy: 1, Key: "a", Fields: tg("3"), Earliest: ago(20), Latest: ago(10), Ended: ago(10)},
		{Policy: 1, Key: "b", Fields: tg("3"), Earliest: ago(100), Latest: ago(90), Ended: ago(90)},
		{Policy: 1, Key: "c", Fields: tg("3"), Earliest: ago(180), Latest: ago(170)},
		// Too old, and in the future: counted nowhere.
		{Policy: 1, Key: "d", Fields: tg("3"), Earliest: ago(300), Latest: ago(200), Ended: ago(200)},
		{Policy: 1, Key: "e", Fields: tg("3"), Earliest: now.Add(time.Minute), Latest: now.Add(time.Minute), Ended: now.Add(time.Minute)},
		// A DDoS-style target group (zero first, then the real one) and an
		// interface.
		{Policy: 2, Key: "f", Fields: []alert.Field{{Name: "CLIENT_TG", Value: "0"}, {Name: "TARGET_TG", Value: "5"}}, Earliest: ago(5), Latest: ago(1), Ended: ago(1)},
		{Policy: 4, Key: "g", Fields: iface, Earliest: ago(70), Latest: ago(65), Ended: ago(65)},
	}
	for i := range alerts {
		alerts[i].ID = uint64(i + 1)
		alerts[i].LastCall = alerts[i].Latest
		if err := s.SaveAlert(ctx, &alerts[i]); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.AlertCounts(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	byPolicy := map[uint64]AlertCount{}
	for _, c := range got {
		byPolicy[c.Policy] = c
	}
	if len(got) != 3 {
		t.Fatalf("got %d rows, want 3: %+v", len(got), got)
	}
	cases := []struct {
		name   string
		policy uint64
		want   AlertCount
	}{
		{"group in both hours", 1, AlertCount{Policy: 1, Group: 3, LastHour: 2, PrevHour: 2}},
		{"first non-zero group field", 2, AlertCount{Policy: 2, Group: 5, LastHour: 1}},
		{"interface", 4, AlertCount{Policy: 4, Exporter: netip.MustParseAddr("192.0.2.1"), IfIndex: 7, PrevHour: 1}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if byPolicy[c.policy] != c.want {
				t.Errorf("got %+v, want %+v", byPolicy[c.policy], c.want)
			}
		})
	}
}

// TestAlertGroupSQL checks that the SQL of an alert's traffic group
// agrees with alert.Alert.Group, field order and zeros included.
func TestAlertGroupSQL(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, "")
	f := func(name, value string) alert.Field { return alert.Field{Name: name, Value: value, Number: true} }
	alerts := []alert.Alert{
		{ID: 1, Fields: []alert.Field{f("TGRP", "3")}},
		{ID: 2, Fields: []alert.Field{f("TARGET_TG", "0"), f("SCANNER_TG", "7")}},
		{ID: 3, Fields: []alert.Field{f("CLIENT_TG", "5"), f("SERVER_TG", "6")}},
		{ID: 4, Fields: []alert.Field{f("EXPORTER_ADDR", "192.0.2.1"), f("IFINDEX", "2")}},
		{ID: 5},
	}
	for i := range alerts {
		alerts[i].Earliest, alerts[i].Type = t0, "x"
		if err := s.SaveAlert(ctx, &alerts[i]); err != nil {
			t.Fatal(err)
		}
	}
	for _, a := range alerts {
		var got int64
		if err := s.r.QueryRowContext(ctx, `SELECT `+alertGroupSQL("al")+` FROM alerts al WHERE id = ?`, int64(a.ID)).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if want := a.Group(); uint32(got) != want {
			t.Errorf("alert %d: SQL group %d, Group() %d", a.ID, got, want)
		}
	}
}
