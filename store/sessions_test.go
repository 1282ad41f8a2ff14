package store

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestAuthState checks sessions, tokens and the audit log: they read
// back, go with their user, and the audit log is trimmed.
func TestAuthState(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, "")
	if _, err := s.EnsureAdmin(ctx, "root", "pw"); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateUser(ctx, User{Name: "bob", Role: RoleViewer, CIDs: []uint32{2}, Groups: []uint32{7}}, "pw"); err != nil {
		t.Fatal(err)
	}
	if u, err := s.User(ctx, "bob"); err != nil || len(u.Groups) != 1 || u.Groups[0] != 7 {
		t.Fatalf("User = %+v, %v", u, err)
	}
	se := Session{Hash: []byte("h1"), User: "bob", CSRF: "c", Created: t0, LastSeen: t0, Expires: t0.Add(time.Hour)}
	if err := s.CreateSession(ctx, se); err != nil {
		t.Fatal(err)
	}
	got, err := s.Session(ctx, []byte("h1"))
	if err != nil || got.User != "bob" || !got.Expires.Equal(se.Expires) {
		t.Fatalf("Session = %+v, %v", got, err)
	}
	tk, err := s.CreateToken(ctx, Token{Hash: []byte("t1"), User: "bob", Name: "ci", Created: t0})
	if err != nil || tk.ID == 0 {
		t.Fatalf("CreateToken = %+v, %v", tk, err)
	}
	if _, err := s.CreateToken(ctx, Token{Hash: []byte("t2"), User: "nobody", Created: t0}); !errors.Is(err, ErrNotFound) {
		t.Errorf("token of an unknown user: %v", err)
	}
	if err := s.DeleteUser(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Session(ctx, []byte("h1")); !errors.Is(err, ErrNotFound) {
		t.Errorf("session of a deleted user: %v", err)
	}
	if _, err := s.TokenByHash(ctx, []byte("t1")); !errors.Is(err, ErrNotFound) {
		t.Errorf("token of a deleted user: %v", err)
	}
	for i := range 5 {
		if err := s.AddAudit(ctx, AuditEntry{Time: t0.Add(time.Duration(i) * time.Hour), User: "root", Method: "POST", Path: "/x", Status: 200}); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := s.TrimAudit(ctx, t0.Add(time.Hour), 3); err != nil || n != 2 {
		t.Errorf("TrimAudit removed %d, %v; want 2", n, err)
	}
	list, err := s.Audit(ctx, AuditQuery{Limit: 2, Users: []string{"root"}})
	if err != nil || len(list) != 2 || list[0].Seq != 5 {
		t.Fatalf("Audit = %+v, %v", list, err)
	}
	if older, _ := s.Audit(ctx, AuditQuery{Limit: 10, Before: list[1].Seq}); len(older) != 1 {
		t.Errorf("the page before seq %d has %d entries, want 1", list[1].Seq, len(older))
	}
}
