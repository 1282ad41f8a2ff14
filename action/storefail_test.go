package action

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/flowsentry/flowsentry/alert"
)

// errFull is what the flaky store fails with.
var errFull = errors.New("database or disk is full")

// flakyStore is a memStore whose writes fail while fail names them:
// "next_id", "save" or "add_call".
type flakyStore struct {
	*memStore
	mu   sync.Mutex
	fail map[string]bool
}

func (s *flakyStore) failing(op string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fail[op]
}

// set makes the writes named by ops fail, and every other write succeed.
func (s *flakyStore) set(ops ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = map[string]bool{}
	for _, op := range ops {
		s.fail[op] = true
	}
}

func (s *flakyStore) NextActionID(ctx context.Context) (uint64, error) {
	if s.failing("next_id") {
		return 0, errFull
	}
	return s.memStore.NextActionID(ctx)
}

func (s *flakyStore) SaveAction(ctx context.Context, a *Action) error {
	if s.failing("save") {
		return errFull
	}
	return s.memStore.SaveAction(ctx, a)
}

func (s *flakyStore) AddCall(ctx context.Context, c *Call) error {
	if s.failing("add_call") {
		return errFull
	}
	return s.memStore.AddCall(ctx, c)
}

// timers is a fake Deps.After: waits end when the test fires them.
type timers struct {
	mu      sync.Mutex
	waits   []time.Duration // every wait asked for
	pending []chan time.Time
}

func (tm *timers) After(d time.Duration) <-chan time.Time {
	tm.mu.Lock()
	defer tm.mu.Unlock()
	ch := make(chan time.Time, 1)
	tm.waits = append(tm.waits, d)
	tm.pending = append(tm.pending, ch)
	return ch
}

// fire ends the pending waits.
func (tm *timers) fire() {
	tm.mu.Lock()
	defer tm.mu.Unlock()
	for _, ch := range tm.pending {
		ch <- t0
	}
	tm.pending = nil
}

// waitsSoFar returns a copy of the waits asked for.
func (tm *timers) waitsSoFar() []time.Duration {
	tm.mu.Lock()
	defer tm.mu.Unlock()
	return append([]time.Duration(nil), tm.waits...)
}

// newFlakyRig is newRig over a flaky store and fake timers.
func newFlakyRig(t *testing.T, st *flakyStore, al *alerts, tm *timers) *rig {
	t.Helper()
	r := &rig{t: t, store: st.memStore, alerts: al, caller: newCaller(t, st.memStore), clock: &clock{t: t0}}
	d, err := New(Deps{
		Store: st, Policies: testPolicies, Instances: instances{}, Alerts: al, Caller: r.caller,
		Log: slog.New(slog.DiscardHandler), Clock: r.clock.Now, After: tm.After,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Stop)
	r.d = d
	return r
}

// TestStoreFailure fails a store write, checks that no plugin hears of
// anything meanwhile and that the dispatcher reports it, then lets the
// store recover: every transition reaches the plugin exactly once, in
// order, and a restart sends nothing again.
func TestStoreFailure(t *testing.T) {
	for _, tc := range []struct {
		name string
		fail string
		// before are the calls made before the failing write.
		before []string
	}{
		{name: "new action ID", fail: "next_id"},
		{name: "saving the action", fail: "save"},
		{name: "recording the call", fail: "add_call", before: []string{"email CREATE alert=1004 aid=7 cur=1500.00"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := &flakyStore{memStore: newMemStore()}
			tm := &timers{}
			al := newAlerts()
			r := newFlakyRig(t, st, al, tm)
			if err := r.d.Health(); err != nil {
				t.Fatalf("Health before any failure: %v", err)
			}
			st.set(tc.fail)
			r.event(alert.OpCreate, tgrpAlert(1004, 7, 1500))
			r.event(alert.OpUpdate, tgrpAlert(1004, 7, 1600))
			// Two failed attempts, waiting 100 ms then 200 ms.
			wait := func(n int) {
				t.Helper()
				r.waitFor("a retry wait", func() bool { return len(tm.waitsSoFar()) >= n })
			}
			wait(1)
			tm.fire()
			wait(2)
			if diff := cmp.Diff(tm.waitsSoFar(), []time.Duration{RetryMin, 2 * RetryMin}); diff != "" {
				t.Errorf("waits (-got +want):\n%s", diff)
			}
			if diff := cmp.Diff(r.caller.shorts(), tc.before); diff != "" {
				t.Errorf("calls while the store fails (-got +want):\n%s", diff)
			}
			if err := r.d.Health(); !errors.Is(err, errFull) {
				t.Errorf("Health while the store fails: %v, want %v", err, errFull)
			}
			if got := testutil.ToFloat64(r.d.metrics.storeErrors); got != 2 {
				t.Errorf("store errors counted: %v, want 2", got)
			}

			st.set()
			tm.fire()
			r.waitCalls(2)
			r.settle()
			want := []string{"email CREATE alert=1004 aid=7 cur=1500.00", "email UPDATE alert=1004 aid=7 cur=1600.00"}
			if diff := cmp.Diff(r.caller.shorts(), want); diff != "" {
				t.Errorf("calls after the store recovered (-got +want):\n%s", diff)
			}
			for i, saved := range r.caller.tokenSaved {
				if !saved {
					t.Errorf("call %d ran before its action and token were stored", i)
				}
			}
			if err := r.d.Health(); err != nil {
				t.Errorf("Health after the store recovered: %v", err)
			}
			calls, err := r.d.Calls(ctx, 7)
			if err != nil {
				t.Fatal(err)
			}
			if len(calls) != 2 {
				t.Errorf("%d calls recorded, want 2: %+v", len(calls), calls)
			}

			// A restart sends nothing again.
			r.d.Stop()
			r2 := newFlakyRig(t, st, al, tm)
			r2.settle()
			if got := r2.caller.shorts(); len(got) != 0 {
				t.Errorf("calls after a restart: %v, want none", got)
			}
		})
	}
}
