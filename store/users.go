package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"golang.org/x/crypto/bcrypt"

	"github.com/flowsentry/flowsentry/annotate"
)

// Role is what a user may do: an admin everything, a partition manager
// configure and see its partitions, a viewer only see them.
type Role string

// The roles.
const (
	RoleAdmin   Role = "admin"
	RoleManager Role = "manager"
	RoleViewer  Role = "viewer"
)

// Valid reports whether r is one of the roles.
func (r Role) Valid() bool {
	return r == RoleAdmin || r == RoleManager || r == RoleViewer
}

// User is an account of the HTTP API and the web UI. CIDs are the
// partitions a manager or viewer is bound to; an admin sees every
// partition whatever CIDs holds. Groups, when not empty, restricts a
// manager or viewer to those traffic groups of its partitions.
type User struct {
	Name   string   `json:"name"`
	Role   Role     `json:"role"`
	CIDs   []uint32 `json:"cids"`
	Groups []uint32 `json:"groups"`
}

// ErrBadCredentials is returned by Authenticate for an unknown user or a
// wrong password alike, so the caller cannot tell which. It is
// annotate.ErrBadCredentials, so that the alert retrieval needs no
// translation.
var ErrBadCredentials = annotate.ErrBadCredentials

// ErrUserExists is wrapped by CreateUser's error when the name is taken.
var ErrUserExists = errors.New("user already exists")

// ErrLastAdmin is wrapped by the error of a change that would leave no
// admin account.
var ErrLastAdmin = errors.New("the last admin account cannot be removed or demoted: create another admin first")

// generatedPasswordLen is the length of the password EnsureAdmin makes up:
// 16 base32 characters, 80 random bits.
const generatedPasswordLen = 16

// dummyHash is the bcrypt hash, at the default cost, of a random string
// nobody kept. Authenticate compares against it when the user is unknown,
// so that an unknown name takes as long as a wrong password.
var dummyHash = []byte("$2a$10$Qg5ZK3.ImJXkpj/YXf2k4O4qRtYM2nS1ouvmf/PCXl1Jvo8gkTLha")

// EnsureAdmin creates the admin account name on first start, that is when
// no admin account exists. An empty password is replaced by 16 random
// characters, returned as generated so that the caller shows it once; it
// is stored only hashed. Later starts change nothing and return "".
func (s *Store) EnsureAdmin(ctx context.Context, name, password string) (generated string, err error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return "", fmt.Errorf("store: ensure admin %q: %w", name, err)
	}
	defer tx.Rollback()
	var admins int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM users WHERE role = 'admin'`).Scan(&admins); err != nil {
		return "", fmt.Errorf("store: ensure admin %q: %w", name, err)
	}
	if admins > 0 {
		return "", nil
	}
	if password == "" {
		generated = rand.Text()[:generatedPasswordLen]
		password = generated
	}
	if err := insertUser(ctx, tx, User{Name: name, Role: RoleAdmin}, password); err != nil {
		return "", fmt.Errorf("store: ensure admin: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return "", fmt.Errorf("store: ensure admin %q: %w", name, err)
	}
	s.log.Info("admin account created", "user", name, "generated_password", generated != "")
	return generated, nil
}

// CreateUser adds an account. The name must be new (else the error wraps
// ErrUserExists) and the password not empty.
func (s *Store) CreateUser(ctx context.Context, u User, password string) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: create user %q: %w", u.Name, err)
	}
	defer tx.Rollback()
	if err := insertUser(ctx, tx, u, password); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: create user %q: %w", u.Name, err)
	}
	return nil
}

// insertUser validates and inserts u, and moves the users generation.
func insertUser(ctx context.Context, q querier, u User, password string) error {
	if err := u.check(); err != nil {
		return err
	}
	if password == "" {
		return fmt.Errorf("create user %q: the password is empty: give one", u.Name)
	}
	hash, err := hashPassword(password)
	if err != nil {
		return fmt.Errorf("create user %q: %w", u.Name, err)
	}
	cids, grps := u.idLists()
	res, err := q.ExecContext(ctx,
		`INSERT INTO users (name, hash, role, cids, grps) VALUES (?, ?, ?, ?, ?) ON CONFLICT (name) DO NOTHING`,
		u.Name, hash, string(u.Role), cids, grps)
	if err != nil {
		return fmt.Errorf("create user %q: %w", u.Name, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("create user %q: %w", u.Name, err)
	}
	if n == 0 {
		return fmt.Errorf("create user %q: %w", u.Name, ErrUserExists)
	}
	if err := bumpUsers(ctx, q); err != nil {
		return fmt.Errorf("create user %q: %w", u.Name, err)
	}
	return nil
}

// UpdateUser changes the role, partitions and groups of an existing account and,
// when password is not empty, its password. Demoting the last admin is
// refused with an error wrapping ErrLastAdmin.
func (s *Store) UpdateUser(ctx context.Context, u User, password string) error {
	if err := u.check(); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	cids, grps := u.idLists()
	var hash []byte
	if password != "" {
		var err error
		if hash, err = hashPassword(password); err != nil {
			return fmt.Errorf("store: update user %q: %w", u.Name, err)
		}
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: update user %q: %w", u.Name, err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx,
		`UPDATE users SET role = ?, cids = ?, grps = ?, hash = coalesce(?, hash) WHERE name = ?`,
		string(u.Role), cids, grps, hash, u.Name)
	if err != nil {
		return fmt.Errorf("store: update user %q: %w", u.Name, err)
	}
	if err := changedOne(res); err != nil {
		return fmt.Errorf("store: update user %q: %w", u.Name, err)
	}
	if err := checkAdminLeft(ctx, tx); err != nil {
		return fmt.Errorf("store: update user %q: %w", u.Name, err)
	}
	if err := bumpUsers(ctx, tx); err != nil {
		return fmt.Errorf("store: update user %q: %w", u.Name, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: update user %q: %w", u.Name, err)
	}
	return nil
}

// DeleteUser removes an account. Removing the last admin is refused with
// an error wrapping ErrLastAdmin; an unknown name wraps ErrNotFound.
func (s *Store) DeleteUser(ctx context.Context, name string) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: delete user %q: %w", name, err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `DELETE FROM users WHERE name = ?`, name)
	if err != nil {
		return fmt.Errorf("store: delete user %q: %w", name, err)
	}
	if err := changedOne(res); err != nil {
		return fmt.Errorf("store: delete user %q: %w", name, err)
	}
	if err := checkAdminLeft(ctx, tx); err != nil {
		return fmt.Errorf("store: delete user %q: %w", name, err)
	}
	if err := bumpUsers(ctx, tx); err != nil {
		return fmt.Errorf("store: delete user %q: %w", name, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: delete user %q: %w", name, err)
	}
	return nil
}

// SetPassword replaces the password of account name and ends its login
// sessions, so that whoever knew the old password is logged out; its API
// tokens stay. An unknown name wraps ErrNotFound.
func (s *Store) SetPassword(ctx context.Context, name, password string) error {
	if password == "" {
		return fmt.Errorf("store: set password of %q: the password is empty: give one", name)
	}
	hash, err := hashPassword(password)
	if err != nil {
		return fmt.Errorf("store: set password of %q: %w", name, err)
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: set password of %q: %w", name, err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `UPDATE users SET hash = ? WHERE name = ?`, hash, name)
	if err != nil {
		return fmt.Errorf("store: set password of %q: %w", name, err)
	}
	if err := changedOne(res); err != nil {
		return fmt.Errorf("store: set password of %q: %w", name, err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE user = ?`, name); err != nil {
		return fmt.Errorf("store: set password of %q: end its sessions: %w", name, err)
	}
	if err := bumpUsers(ctx, tx); err != nil {
		return fmt.Errorf("store: set password of %q: %w", name, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: set password of %q: %w", name, err)
	}
	return nil
}

// usersGeneration names the row of the sequences table that counts the
// changes of the users table: every change moves it in the same
// transaction, so that another process (a running server, after
// `flowsentry user passwd`) learns from one cheap read that the accounts
// it cached may be stale.
const usersGeneration = "users_generation"

// bumpUsers moves the users generation.
func bumpUsers(ctx context.Context, q querier) error {
	_, err := q.ExecContext(ctx,
		`INSERT INTO sequences (name, next) VALUES (?, 1) ON CONFLICT (name) DO UPDATE SET next = next + 1`,
		usersGeneration)
	if err != nil {
		return fmt.Errorf("move the users generation: %w", err)
	}
	return nil
}

// UsersGeneration returns a number that changes whenever an account is
// created, changed or deleted, by this process or another one sharing
// the database; 0 before the first change.
func (s *Store) UsersGeneration(ctx context.Context) (uint64, error) {
	var gen int64
	err := s.r.QueryRowContext(ctx,
		`SELECT coalesce((SELECT next FROM sequences WHERE name = ?), 0)`, usersGeneration).Scan(&gen)
	if err != nil {
		return 0, fmt.Errorf("store: users generation: %w", err)
	}
	return uint64(gen), nil
}

// checkAdminLeft fails with ErrLastAdmin when no admin account remains.
func checkAdminLeft(ctx context.Context, q querier) error {
	var admins int
	if err := q.QueryRowContext(ctx, `SELECT count(*) FROM users WHERE role = 'admin'`).Scan(&admins); err != nil {
		return err
	}
	if admins == 0 {
		return ErrLastAdmin
	}
	return nil
}

// Users lists the accounts by name.
func (s *Store) Users(ctx context.Context) ([]User, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT name, role, cids, grps FROM users ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("store: users: %w", err)
	}
	defer rows.Close()
	var out []User
	for rows.Next() {
		var u User
		var cids, grps string
		if err := rows.Scan(&u.Name, &u.Role, &cids, &grps); err != nil {
			return nil, fmt.Errorf("store: users: %w", err)
		}
		if err := u.setIDLists(cids, grps); err != nil {
			return nil, fmt.Errorf("store: users: %w", err)
		}
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: users: %w", err)
	}
	return out, nil
}

// Authenticate checks a name and password and returns the account. An
// unknown name and a wrong password both give ErrBadCredentials, and take
// about the same time: an unknown name is still compared against a hash.
func (s *Store) Authenticate(ctx context.Context, name, password string) (User, error) {
	u := User{Name: name}
	var hash []byte
	var cids, grps string
	err := s.r.QueryRowContext(ctx, `SELECT hash, role, cids, grps FROM users WHERE name = ?`, name).
		Scan(&hash, &u.Role, &cids, &grps)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		bcrypt.CompareHashAndPassword(dummyHash, []byte(password))
		return User{}, ErrBadCredentials
	case err != nil:
		return User{}, fmt.Errorf("store: authenticate %q: %w", name, err)
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(password)) != nil {
		return User{}, ErrBadCredentials
	}
	if err := u.setIDLists(cids, grps); err != nil {
		return User{}, fmt.Errorf("store: authenticate: %w", err)
	}
	return u, nil
}

// User reads the account name without checking a password; an unknown
// name wraps ErrNotFound.
func (s *Store) User(ctx context.Context, name string) (User, error) {
	u := User{Name: name}
	var cids, grps string
	err := s.r.QueryRowContext(ctx, `SELECT role, cids, grps FROM users WHERE name = ?`, name).
		Scan(&u.Role, &cids, &grps)
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, fmt.Errorf("store: user %q: %w", name, ErrNotFound)
	}
	if err != nil {
		return User{}, fmt.Errorf("store: user %q: %w", name, err)
	}
	if err := u.setIDLists(cids, grps); err != nil {
		return User{}, fmt.Errorf("store: %w", err)
	}
	return u, nil
}

// idLists encodes the partitions and groups of u as stored: sorted JSON
// arrays, null for none.
func (u *User) idLists() (cids, grps string) {
	c, _ := json.Marshal(sortedCIDs(u.CIDs)) // integers always encode
	g, _ := json.Marshal(sortedCIDs(u.Groups))
	return string(c), string(g)
}

// setIDLists decodes the stored partitions and groups into u.
func (u *User) setIDLists(cids, grps string) error {
	if err := json.Unmarshal([]byte(cids), &u.CIDs); err != nil {
		return fmt.Errorf("partitions of user %q: %w", u.Name, err)
	}
	if err := json.Unmarshal([]byte(grps), &u.Groups); err != nil {
		return fmt.Errorf("traffic groups of user %q: %w", u.Name, err)
	}
	return nil
}

// check validates the name and role of u.
func (u *User) check() error {
	if u.Name == "" {
		return errors.New("user: the name is empty: give one")
	}
	if !u.Role.Valid() {
		return fmt.Errorf("user %q: role %q is not one of admin, manager, viewer", u.Name, u.Role)
	}
	return nil
}

// hashPassword is bcrypt at its default cost, with the 72-byte limit
// explained.
func hashPassword(password string) ([]byte, error) {
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if errors.Is(err, bcrypt.ErrPasswordTooLong) {
		return nil, fmt.Errorf("the password is %d bytes long: use at most 72", len(password))
	}
	return hash, err
}

// sortedCIDs sorts a copy of the partitions (or groups) so that they read back in
// order; none is stored as JSON null and reads back nil.
func sortedCIDs(cids []uint32) []uint32 {
	return slices.Sorted(slices.Values(cids))
}
