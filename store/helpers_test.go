package store

import (
	"context"
	"testing"
	"time"

	"github.com/flowsentry/flowsentry/alert"
)

// openTest opens a store in dir (a new temporary folder when dir is "")
// and closes it at the end of the test.
func openTest(t testing.TB, dir string) *Store {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	s, err := Open(context.Background(), dir, nil)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// t0 is a time with microsecond precision, the precision stored.
var t0 = time.Date(2026, 3, 14, 15, 9, 26, 535897000, time.UTC)

// NextAlertID takes a new alert ID on its own, committed at once, as the
// tests that check the sequence across crashes need; the alert engine
// takes IDs inside SaveAlerts.
func (s *Store) NextAlertID(ctx context.Context) (uint64, error) {
	return nextID(ctx, s.w, "alert")
}

// SaveAlert saves one alert whose ID is set, durably when it returns.
func (s *Store) SaveAlert(ctx context.Context, a *alert.Alert) error {
	return saveAlert(ctx, s.w, a)
}
