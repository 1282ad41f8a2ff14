package auth

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/flowsentry/flowsentry/store"
)

// TestFollowOtherProcess changes alice through a second store on the same
// database, as `flowsentry user` does while the server runs, and checks
// that the service's cached basic auth, session and token keep working
// until FollowEvery has passed and stop right after.
func TestFollowOtherProcess(t *testing.T) {
	for _, tc := range []struct {
		name    string
		change  func(ctx context.Context, other *store.Store) error
		basic   string // the password accepted after the change; "" none
		session bool   // whether the session outlives the change
		token   bool   // whether the token outlives the change
	}{
		{
			name:   "password changed",
			change: func(ctx context.Context, o *store.Store) error { return o.SetPassword(ctx, "alice", "new-pw") },
			basic:  "new-pw", token: true,
		},
		{
			name:   "user deleted",
			change: func(ctx context.Context, o *store.Store) error { return o.DeleteUser(ctx, "alice") },
		},
		{
			name: "role changed",
			change: func(ctx context.Context, o *store.Store) error {
				return o.UpdateUser(ctx, store.User{Name: "alice", Role: store.RoleManager, CIDs: []uint32{3}}, "")
			},
			basic: "right", session: true, token: true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			c := &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
			s, _ := newTest(t, dir, c, &bytes.Buffer{})
			_, ns, err := s.Login(ctx, "alice", "right", "192.0.2.1")
			if err != nil {
				t.Fatal(err)
			}
			raw, _, err := s.CreateToken(ctx, "alice", "grafana", 0)
			if err != nil {
				t.Fatal(err)
			}
			check := func(when string, wantOld, wantSession, wantToken bool) {
				t.Helper()
				if _, err := s.Basic(ctx, "alice", "right", "192.0.2.1"); (err == nil) != wantOld {
					t.Errorf("%s: Basic with the old password: %v, want accepted %v", when, err, wantOld)
				}
				if _, _, err := s.Session(ctx, ns.ID); (err == nil) != wantSession {
					t.Errorf("%s: Session: %v, want accepted %v", when, err, wantSession)
				}
				if _, _, err := s.Token(ctx, raw, "192.0.2.1"); (err == nil) != wantToken {
					t.Errorf("%s: Token: %v, want accepted %v", when, err, wantToken)
				}
			}
			check("before the change", true, true, true)

			other, err := store.Open(ctx, dir, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer other.Close()
			if err := tc.change(ctx, other); err != nil {
				t.Fatal(err)
			}
			c.add(FollowEvery - time.Millisecond)
			check("within FollowEvery, from the caches", true, true, true)

			c.add(time.Millisecond)
			check("after FollowEvery", tc.basic == "right", tc.session, tc.token)
			u, err := s.Basic(ctx, "alice", tc.basic, "192.0.2.2")
			switch {
			case tc.basic == "" && !errors.Is(err, ErrBadCredentials):
				t.Errorf("Basic after the change: %v, want ErrBadCredentials", err)
			case tc.basic != "" && err != nil:
				t.Errorf("Basic with password %q after the change: %v", tc.basic, err)
			case tc.name == "role changed" && u.Role != store.RoleManager:
				t.Errorf("role after the change = %s, want manager", u.Role)
			}
		})
	}
}

// TestFollowReadsAtMostEverySecond checks that the generation is read
// once per FollowEvery however many requests come.
func TestFollowReadsAtMostEverySecond(t *testing.T) {
	ctx := context.Background()
	c := &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	s, _ := newTest(t, t.TempDir(), c, &bytes.Buffer{})
	gs := &genCountingStore{Store: s.st}
	s.st = gs
	for range 3 {
		for range 50 {
			if _, err := s.Basic(ctx, "alice", "right", "192.0.2.1"); err != nil {
				t.Fatal(err)
			}
			c.add(FollowEvery / 100)
		}
	}
	// 150 requests over 1.5 s: reads at 0 s and 1 s.
	if gs.reads != 2 {
		t.Errorf("150 requests over 1.5 s read the generation %d times, want 2", gs.reads)
	}
}

// genCountingStore counts the reads of the users generation.
type genCountingStore struct {
	Store
	reads int
}

func (g *genCountingStore) UsersGeneration(ctx context.Context) (uint64, error) {
	g.reads++
	return g.Store.UsersGeneration(ctx)
}
