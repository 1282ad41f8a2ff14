package auth

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowsentry/flowsentry/store"
)

// countingStore counts the password checks (bcrypt) of a real store.
type countingStore struct {
	*store.Store
	checks atomic.Int64
}

func (c *countingStore) Authenticate(ctx context.Context, name, password string) (store.User, error) {
	c.checks.Add(1)
	return c.Store.Authenticate(ctx, name, password)
}

// clock is a settable time.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// newTest opens a store in dir with user "alice" (password "right",
// viewer of partition 3) and a service over it on a virtual clock; it
// logs into logs.
func newTest(t *testing.T, dir string, c *clock, logs *bytes.Buffer) (*Service, *countingStore) {
	t.Helper()
	st, err := store.Open(context.Background(), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.CreateUser(context.Background(), store.User{Name: "alice", Role: store.RoleViewer, CIDs: []uint32{3}}, "right"); err != nil && !errors.Is(err, store.ErrUserExists) {
		t.Fatal(err)
	}
	if _, err := st.EnsureAdmin(context.Background(), "root", "root-pw"); err != nil {
		t.Fatal(err)
	}
	cs := &countingStore{Store: st}
	s, err := New(DefaultConfig(), Deps{Store: cs, Now: c.now, Log: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return s, cs
}

// TestBasicCache checks that bcrypt runs once for many requests, again
// after the cache time or Forget, and never answers a wrong password from
// the cache.
func TestBasicCache(t *testing.T) {
	ctx := context.Background()
	c := &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	s, cs := newTest(t, t.TempDir(), c, &bytes.Buffer{})
	for range 100 {
		u, err := s.Basic(ctx, "alice", "right", "192.0.2.1")
		if err != nil || u.Name != "alice" || u.CIDs[0] != 3 {
			t.Fatalf("Basic = %+v, %v", u, err)
		}
	}
	if n := cs.checks.Load(); n != 1 {
		t.Errorf("100 requests ran %d password checks, want 1", n)
	}
	if _, err := s.Basic(ctx, "alice", "wrong", "192.0.2.1"); !errors.Is(err, ErrBadCredentials) {
		t.Errorf("wrong password with a cached right one: %v", err)
	}
	c.add(61 * time.Second)
	s.Basic(ctx, "alice", "right", "192.0.2.1")
	s.Forget("alice")
	s.Basic(ctx, "alice", "right", "192.0.2.1")
	if n := cs.checks.Load(); n != 4 {
		t.Errorf("%d password checks, want 4 (first, wrong, after a minute, after Forget)", n)
	}
}

// TestLockout checks the throttle: the fifth failure locks for a second,
// the next for two, the right password is refused while locked and
// accepted after, and each failure logs a line.
func TestLockout(t *testing.T) {
	ctx := context.Background()
	c := &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	var logs bytes.Buffer
	s, _ := newTest(t, t.TempDir(), c, &logs)
	for i := range 5 {
		if _, err := s.Basic(ctx, "alice", "guess", "192.0.2.1"); !errors.Is(err, ErrBadCredentials) {
			t.Fatalf("failure %d: %v", i+1, err)
		}
	}
	var locked *LockedError
	if _, err := s.Basic(ctx, "alice", "right", "192.0.2.99"); !errors.As(err, &locked) || locked.Wait != time.Second {
		t.Fatalf("right password from another address while the user is locked: %v, want locked for 1s", err)
	}
	if _, _, err := s.Login(ctx, "bob", "x", "192.0.2.1"); !errors.As(err, &locked) {
		t.Fatalf("another user from the locked address: %v, want locked", err)
	}
	c.add(time.Second)
	if _, err := s.Basic(ctx, "alice", "guess", "192.0.2.1"); !errors.Is(err, ErrBadCredentials) {
		t.Fatal(err)
	}
	if _, err := s.Basic(ctx, "alice", "right", "192.0.2.1"); !errors.As(err, &locked) || locked.Wait != 2*time.Second {
		t.Fatalf("after the sixth failure: %v, want locked for 2s", err)
	}
	c.add(2 * time.Second)
	if _, err := s.Basic(ctx, "alice", "right", "192.0.2.1"); err != nil {
		t.Fatalf("right password after the lock: %v", err)
	}
	if _, err := s.Basic(ctx, "alice", "guess", "192.0.2.1"); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("a success resets the count: %v", err)
	}
	if n := strings.Count(logs.String(), "authentication failed"); n != 7 {
		t.Errorf("%d log lines for 7 failures:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), "locked_until=") || strings.Contains(logs.String(), "guess") {
		t.Errorf("log lines lack locked_until or hold the password:\n%s", logs.String())
	}
}

// TestThrottleBounded checks that the throttle forgets the least recently
// failed keys beyond its capacity.
func TestThrottleBounded(t *testing.T) {
	th := NewThrottle(1, time.Second, time.Minute, 100)
	now := time.Now()
	for i := range 1000 {
		th.Fail(now, addrKey(strings.Repeat("x", i%7)+string(rune('a'+i%26))+time.Duration(i).String()))
	}
	if n := th.Len(); n != 100 {
		t.Errorf("%d keys tracked, want 100", n)
	}
}

// TestSessions checks idle and absolute expiry, and that a session
// survives a restart.
func TestSessions(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	c := &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	s, _ := newTest(t, dir, c, &bytes.Buffer{})
	_, ns, err := s.Login(ctx, "alice", "right", "192.0.2.1")
	if err != nil {
		t.Fatal(err)
	}
	// A new service over the same database (a restart) knows the session.
	s2, cs := newTest(t, dir, c, &bytes.Buffer{})
	u, se, err := s2.Session(ctx, ns.ID)
	if err != nil || u.Name != "alice" || se.CSRF != ns.CSRF {
		t.Fatalf("session after a restart: %+v %+v %v", u, se, err)
	}
	// Used every 11 hours it lives 7 days, not a minute more.
	for range 15 {
		c.add(11 * time.Hour)
		if _, _, err := s2.Session(ctx, ns.ID); err != nil {
			t.Fatalf("session used after 11 h: %v", err)
		}
	}
	c.add(4 * time.Hour) // 169 h after the login
	if _, _, err := s2.Session(ctx, ns.ID); !errors.Is(err, ErrExpired) {
		t.Errorf("session after 7 days: %v, want ErrExpired", err)
	}
	// Idle for 12 hours, it ends.
	_, ns, err = s2.Login(ctx, "alice", "right", "192.0.2.1")
	if err != nil {
		t.Fatal(err)
	}
	c.add(12 * time.Hour)
	if _, _, err := s2.Session(ctx, ns.ID); !errors.Is(err, ErrExpired) {
		t.Errorf("session idle for 12 h: %v, want ErrExpired", err)
	}
	if _, _, err := s2.Session(ctx, "made-up"); !errors.Is(err, ErrExpired) {
		t.Errorf("unknown session: %v", err)
	}
	if n := cs.checks.Load(); n != 1 {
		t.Errorf("%d password checks, want 1 (the second login)", n)
	}
	// A deleted user's sessions and tokens end with it.
	_, ns, _ = s2.Login(ctx, "alice", "right", "192.0.2.1")
	raw, _, err := s2.CreateToken(ctx, "alice", "ci", 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := cs.Store.DeleteUser(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	s2.Forget("alice")
	if _, _, err := s2.Session(ctx, ns.ID); !errors.Is(err, ErrExpired) {
		t.Errorf("session of a deleted user: %v", err)
	}
	if _, _, err := s2.Token(ctx, raw, "192.0.2.1"); !errors.Is(err, ErrBadToken) {
		t.Errorf("token of a deleted user: %v", err)
	}
}

// TestTokenExpiry checks that a token stops at its expiry.
func TestTokenExpiry(t *testing.T) {
	ctx := context.Background()
	c := &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	s, _ := newTest(t, t.TempDir(), c, &bytes.Buffer{})
	raw, tk, err := s.CreateToken(ctx, "alice", "ci", time.Hour)
	if err != nil || !strings.HasPrefix(raw, TokenPrefix) || len(raw) < 40 {
		t.Fatalf("CreateToken = %q, %+v, %v", raw, tk, err)
	}
	if u, _, err := s.Token(ctx, raw, "192.0.2.1"); err != nil || u.Name != "alice" {
		t.Fatalf("Token = %+v, %v", u, err)
	}
	c.add(time.Hour)
	if _, _, err := s.Token(ctx, raw, "192.0.2.1"); !errors.Is(err, ErrExpired) {
		t.Errorf("token after its hour: %v, want ErrExpired", err)
	}
}
