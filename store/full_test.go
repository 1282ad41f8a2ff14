package store

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowsentry/flowsentry/action"
	"github.com/flowsentry/flowsentry/alert"
	"github.com/flowsentry/flowsentry/plugin"
)

// fullRig is what the action dispatcher needs around a real store.
type fullRig struct {
	al    alert.Alert
	mu    sync.Mutex
	calls []alert.Op
}

func (r *fullRig) Attachments(uint64) []action.Attachment {
	return []action.Attachment{{Instance: 1}}
}

func (r *fullRig) Get(context.Context, uint64) (alert.Alert, error) {
	return r.al, nil
}

func (r *fullRig) Open() []alert.Alert { return nil }

func (r *fullRig) Call(_ context.Context, _ string, op alert.Op, _ []string) plugin.Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, op)
	return plugin.Result{}
}

func (r *fullRig) ops() []alert.Op {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]alert.Op(nil), r.calls...)
}

type oneInstance struct{}

func (oneInstance) Get(uint64) (plugin.Instance, bool) {
	return plugin.Instance{ID: 1, Plugin: "email"}, true
}

// TestDispatcherOnFullDatabase fills the database up to its page limit
// (PRAGMA max_page_count: what a full disk does to SQLite), hands the
// dispatcher a new alert and checks that the plugin hears nothing while
// the action cannot be stored, then raises the limit: the plugin gets its
// CREATE once.
func TestDispatcherOnFullDatabase(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, "")
	saveAlerts(t, s, 1004)
	var pages int
	if err := s.w.QueryRowContext(ctx, `PRAGMA page_count`).Scan(&pages); err != nil {
		t.Fatal(err)
	}
	if _, err := s.w.ExecContext(ctx, `PRAGMA max_page_count = `+strconv.Itoa(pages)); err != nil {
		t.Fatal(err)
	}
	// Fill the free space of the actions table and its indexes: large
	// rows, then small ones, until SQLite refuses.
	id := 1000
	for _, size := range []int{2000, 200, 20, 1} {
		for {
			id++
			_, err := s.w.ExecContext(ctx, `INSERT INTO actions (`+actionColumns+`)
				VALUES (?, 1004, 0, 0, '', 'ended', 0, 0, ?, 0)`, id, strings.Repeat("x", size))
			if err != nil {
				if !strings.Contains(err.Error(), "database or disk is full") {
					t.Fatal(err)
				}
				break
			}
		}
	}

	rig := &fullRig{al: alert.Alert{ID: 1004, Policy: 7, Key: "k", Type: "t", Earliest: t0, Latest: t0, LastCall: t0}}
	retry := make(chan time.Time)
	d, err := action.New(action.Deps{
		Store: s, Policies: rig, Instances: oneInstance{}, Alerts: rig, Caller: rig,
		Log:   slog.New(slog.DiscardHandler),
		After: func(time.Duration) <-chan time.Time { return retry },
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Stop)
	d.Alert(alert.Event{Op: alert.OpCreate, Alert: rig.al})

	retry <- t0 // the first attempt failed: the dispatcher waits to retry
	retry <- t0 // so did the second
	if got := rig.ops(); len(got) != 0 {
		t.Errorf("calls while the database is full: %v, want none", got)
	}
	if err := d.Health(); err == nil || !strings.Contains(err.Error(), "database or disk is full") {
		t.Errorf("Health while the database is full: %v", err)
	}

	if _, err := s.w.ExecContext(ctx, `PRAGMA max_page_count = `+strconv.Itoa(pages+100)); err != nil {
		t.Fatal(err)
	}
	// The dispatcher retries whenever it is told to; it may be in the
	// middle of an attempt, so each retry is offered for a while only.
	deadline := time.Now().Add(10 * time.Second)
	for len(rig.ops()) == 0 && time.Now().Before(deadline) {
		select {
		case retry <- t0:
		case <-time.After(10 * time.Millisecond):
		}
	}
	d.Stop()
	if got := rig.ops(); len(got) != 1 || got[0] != alert.OpCreate {
		t.Errorf("calls after the database has room: %v, want one CREATE", got)
	}
	if err := d.Health(); err != nil {
		t.Errorf("Health after the database has room: %v", err)
	}
	list, err := s.Actions(ctx, 1004)
	if err != nil {
		t.Fatal(err)
	}
	var stored int
	for _, a := range list {
		if a.State == action.StateInProgress {
			stored++
		}
	}
	if stored != 1 {
		t.Errorf("%d actions stored in progress, want the new one", stored)
	}
}
