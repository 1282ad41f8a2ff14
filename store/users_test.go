package store

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestEnsureAdmin(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name     string
		password string
	}{
		{"given password", "s3cret-from-config"},
		{"generated password", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s := openTest(t, dir)
			generated, err := s.EnsureAdmin(ctx, "root", tc.password)
			if err != nil {
				t.Fatalf("EnsureAdmin: %v", err)
			}
			password := tc.password
			if tc.password == "" {
				if len(generated) != generatedPasswordLen {
					t.Fatalf("generated password %q has %d characters, want %d", generated, len(generated), generatedPasswordLen)
				}
				password = generated
			} else if generated != "" {
				t.Fatalf("EnsureAdmin returned %q for a given password, want \"\"", generated)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}

			// A later start changes nothing, whatever it is given.
			s = openTest(t, dir)
			again, err := s.EnsureAdmin(ctx, "root", "")
			if err != nil || again != "" {
				t.Fatalf("second EnsureAdmin = %q, %v; want \"\", nil", again, err)
			}
			if _, err := s.EnsureAdmin(ctx, "other", "x"); err != nil {
				t.Fatalf("third EnsureAdmin: %v", err)
			}
			u, err := s.Authenticate(ctx, "root", password)
			if err != nil {
				t.Fatalf("Authenticate: %v", err)
			}
			if diff := cmp.Diff(u, User{Name: "root", Role: RoleAdmin}); diff != "" {
				t.Errorf("Authenticate (-got +want):\n%s", diff)
			}
			users, err := s.Users(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(users, []User{{Name: "root", Role: RoleAdmin}}); diff != "" {
				t.Errorf("Users (-got +want):\n%s", diff)
			}
		})
	}
}

func TestGeneratedPasswordsDiffer(t *testing.T) {
	ctx := context.Background()
	a, err := openTest(t, "").EnsureAdmin(ctx, "root", "")
	if err != nil {
		t.Fatal(err)
	}
	b, err := openTest(t, "").EnsureAdmin(ctx, "root", "")
	if err != nil {
		t.Fatal(err)
	}
	if a == b {
		t.Errorf("two databases got the same generated password %q", a)
	}
}

func TestAuthenticate(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, "")
	if _, err := s.EnsureAdmin(ctx, "root", "rootpw"); err != nil {
		t.Fatal(err)
	}
	viewer := User{Name: "eve", Role: RoleViewer, CIDs: []uint32{3, 1}}
	if err := s.CreateUser(ctx, viewer, "evepw"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, user, password string
		want                 User
		wantErr              error
	}{
		{"admin", "root", "rootpw", User{Name: "root", Role: RoleAdmin}, nil},
		{"viewer with sorted partitions", "eve", "evepw", User{Name: "eve", Role: RoleViewer, CIDs: []uint32{1, 3}}, nil},
		{"wrong password", "eve", "rootpw", User{}, ErrBadCredentials},
		{"empty password", "eve", "", User{}, ErrBadCredentials},
		{"unknown user", "mallory", "evepw", User{}, ErrBadCredentials},
		{"empty user", "", "", User{}, ErrBadCredentials},
		{"name is case sensitive", "Root", "rootpw", User{}, ErrBadCredentials},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.Authenticate(ctx, tc.user, tc.password)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Authenticate error = %v, want %v", err, tc.wantErr)
			}
			if diff := cmp.Diff(got, tc.want); diff != "" {
				t.Errorf("Authenticate (-got +want):\n%s", diff)
			}
		})
	}
}

func TestManageUsers(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, "")
	if _, err := s.EnsureAdmin(ctx, "root", "rootpw"); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name    string
		do      func() error
		wantErr error  // errors.Is
		wantMsg string // error text, when wantErr is nil
		want    []User // Users after the step
	}{
		{
			name: "create manager",
			do: func() error {
				return s.CreateUser(ctx, User{Name: "mgr", Role: RoleManager, CIDs: []uint32{2}}, "pw")
			},
			want: []User{{Name: "mgr", Role: RoleManager, CIDs: []uint32{2}}, {Name: "root", Role: RoleAdmin}},
		},
		{
			name:    "create existing",
			do:      func() error { return s.CreateUser(ctx, User{Name: "mgr", Role: RoleViewer}, "pw") },
			wantErr: ErrUserExists,
			want:    []User{{Name: "mgr", Role: RoleManager, CIDs: []uint32{2}}, {Name: "root", Role: RoleAdmin}},
		},
		{
			name:    "create with bad role",
			do:      func() error { return s.CreateUser(ctx, User{Name: "x", Role: "root"}, "pw") },
			wantMsg: `store: user "x": role "root" is not one of admin, manager, viewer`,
			want:    []User{{Name: "mgr", Role: RoleManager, CIDs: []uint32{2}}, {Name: "root", Role: RoleAdmin}},
		},
		{
			name:    "create without name",
			do:      func() error { return s.CreateUser(ctx, User{Role: RoleViewer}, "pw") },
			wantMsg: `store: user: the name is empty: give one`,
			want:    []User{{Name: "mgr", Role: RoleManager, CIDs: []uint32{2}}, {Name: "root", Role: RoleAdmin}},
		},
		{
			name:    "create without password",
			do:      func() error { return s.CreateUser(ctx, User{Name: "x", Role: RoleViewer}, "") },
			wantMsg: `store: create user "x": the password is empty: give one`,
			want:    []User{{Name: "mgr", Role: RoleManager, CIDs: []uint32{2}}, {Name: "root", Role: RoleAdmin}},
		},
		{
			name: "create with a password over 72 bytes",
			do: func() error {
				return s.CreateUser(ctx, User{Name: "x", Role: RoleViewer}, string(make([]byte, 73)))
			},
			wantMsg: `store: create user "x": the password is 73 bytes long: use at most 72`,
			want:    []User{{Name: "mgr", Role: RoleManager, CIDs: []uint32{2}}, {Name: "root", Role: RoleAdmin}},
		},
		{
			name: "promote manager, keep password",
			do:   func() error { return s.UpdateUser(ctx, User{Name: "mgr", Role: RoleAdmin}, "") },
			want: []User{{Name: "mgr", Role: RoleAdmin}, {Name: "root", Role: RoleAdmin}},
		},
		{
			name:    "update unknown",
			do:      func() error { return s.UpdateUser(ctx, User{Name: "nobody", Role: RoleAdmin}, "") },
			wantErr: ErrNotFound,
			want:    []User{{Name: "mgr", Role: RoleAdmin}, {Name: "root", Role: RoleAdmin}},
		},
		{
			name: "delete root",
			do:   func() error { return s.DeleteUser(ctx, "root") },
			want: []User{{Name: "mgr", Role: RoleAdmin}},
		},
		{
			name:    "demote the last admin",
			do:      func() error { return s.UpdateUser(ctx, User{Name: "mgr", Role: RoleViewer}, "") },
			wantErr: ErrLastAdmin,
			want:    []User{{Name: "mgr", Role: RoleAdmin}},
		},
		{
			name:    "delete the last admin",
			do:      func() error { return s.DeleteUser(ctx, "mgr") },
			wantErr: ErrLastAdmin,
			want:    []User{{Name: "mgr", Role: RoleAdmin}},
		},
		{
			name:    "delete unknown",
			do:      func() error { return s.DeleteUser(ctx, "root") },
			wantErr: ErrNotFound,
			want:    []User{{Name: "mgr", Role: RoleAdmin}},
		},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			err := st.do()
			switch {
			case st.wantErr != nil:
				if !errors.Is(err, st.wantErr) {
					t.Errorf("error = %v, want one wrapping %v", err, st.wantErr)
				}
			case st.wantMsg != "":
				if err == nil || err.Error() != st.wantMsg {
					t.Errorf("error = %v, want %q", err, st.wantMsg)
				}
			case err != nil:
				t.Errorf("error = %v", err)
			}
			got, err := s.Users(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(got, st.want); diff != "" {
				t.Errorf("Users (-got +want):\n%s", diff)
			}
		})
	}

	// The password survived the role changes; a new one replaces it.
	if _, err := s.Authenticate(ctx, "mgr", "pw"); err != nil {
		t.Errorf("Authenticate with the unchanged password: %v", err)
	}
	if err := s.UpdateUser(ctx, User{Name: "mgr", Role: RoleAdmin}, "new"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(ctx, "mgr", "pw"); !errors.Is(err, ErrBadCredentials) {
		t.Errorf("Authenticate with the old password: %v, want ErrBadCredentials", err)
	}
	if _, err := s.Authenticate(ctx, "mgr", "new"); err != nil {
		t.Errorf("Authenticate with the new password: %v", err)
	}
}
