package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// migrationAuth adds what the auth package keeps: the traffic groups a
// user is restricted to (grps, a JSON array; null for every group of the
// user's partitions), login sessions and API tokens (both only as SHA-256
// hashes of the secret the client holds, and gone with their user), and
// the audit log.
var migrationAuth = []string{
	`ALTER TABLE users ADD COLUMN grps TEXT NOT NULL DEFAULT 'null'`,
	`CREATE TABLE sessions (
		hash BLOB PRIMARY KEY,
		user TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
		csrf TEXT NOT NULL,
		created INTEGER NOT NULL,
		last_seen INTEGER NOT NULL,
		expires INTEGER NOT NULL
	) STRICT, WITHOUT ROWID`,
	`CREATE INDEX sessions_user ON sessions (user)`,
	`CREATE INDEX sessions_expires ON sessions (expires)`,
	`INSERT INTO sequences (name, next) VALUES ('token', 1)`,
	`CREATE TABLE tokens (
		id INTEGER PRIMARY KEY,
		hash BLOB NOT NULL UNIQUE,
		user TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
		name TEXT NOT NULL,
		created INTEGER NOT NULL,
		expires INTEGER NOT NULL
	) STRICT`,
	`CREATE INDEX tokens_user ON tokens (user)`,
	`CREATE TABLE audit (
		seq INTEGER PRIMARY KEY,
		time INTEGER NOT NULL,
		user TEXT NOT NULL,
		addr TEXT NOT NULL,
		method TEXT NOT NULL,
		path TEXT NOT NULL,
		status INTEGER NOT NULL,
		summary TEXT NOT NULL
	) STRICT`,
	`CREATE INDEX audit_time ON audit (time)`,
}

// Session is a login session of the web UI or API. The store knows only
// the SHA-256 hash of the session ID the client holds in its cookie.
type Session struct {
	// Hash is the SHA-256 hash of the session ID.
	Hash []byte
	// User is the name of the user logged in.
	User string
	// CSRF is the token requests that change something must repeat in
	// the X-CSRF-Token header.
	CSRF string
	// Created is the login time, LastSeen the last request's time (kept
	// to about a minute) and Expires the absolute end of the session.
	Created, LastSeen, Expires time.Time
}

// CreateSession stores a new session; the user must exist (else the error
// wraps ErrNotFound).
func (s *Store) CreateSession(ctx context.Context, se Session) error {
	_, err := s.w.ExecContext(ctx,
		`INSERT INTO sessions (hash, user, csrf, created, last_seen, expires)
			SELECT ?, name, ?, ?, ?, ? FROM users WHERE name = ?`,
		se.Hash, se.CSRF, micros(se.Created), micros(se.LastSeen), micros(se.Expires), se.User)
	if err != nil {
		return fmt.Errorf("store: create session of %q: %w", se.User, err)
	}
	return nil
}

// Session reads the session of hash; an unknown hash wraps ErrNotFound.
func (s *Store) Session(ctx context.Context, hash []byte) (Session, error) {
	se := Session{Hash: hash}
	var created, seen, expires int64
	err := s.r.QueryRowContext(ctx,
		`SELECT user, csrf, created, last_seen, expires FROM sessions WHERE hash = ?`, hash).
		Scan(&se.User, &se.CSRF, &created, &seen, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return Session{}, fmt.Errorf("store: session: %w", ErrNotFound)
	}
	if err != nil {
		return Session{}, fmt.Errorf("store: session: %w", err)
	}
	se.Created, se.LastSeen, se.Expires = fromMicros(created), fromMicros(seen), fromMicros(expires)
	return se, nil
}

// TouchSession records a request of the session at t.
func (s *Store) TouchSession(ctx context.Context, hash []byte, t time.Time) error {
	if _, err := s.w.ExecContext(ctx, `UPDATE sessions SET last_seen = ? WHERE hash = ?`, micros(t), hash); err != nil {
		return fmt.Errorf("store: touch session: %w", err)
	}
	return nil
}

// DeleteSession ends a session; an unknown hash is not an error.
func (s *Store) DeleteSession(ctx context.Context, hash []byte) error {
	if _, err := s.w.ExecContext(ctx, `DELETE FROM sessions WHERE hash = ?`, hash); err != nil {
		return fmt.Errorf("store: delete session: %w", err)
	}
	return nil
}

// DeleteExpiredSessions removes the sessions past their absolute expiry
// or idle since before idleSince, and returns how many it removed.
func (s *Store) DeleteExpiredSessions(ctx context.Context, now, idleSince time.Time) (int64, error) {
	res, err := s.w.ExecContext(ctx, `DELETE FROM sessions WHERE expires <= ? OR last_seen < ?`, micros(now), micros(idleSince))
	if err != nil {
		return 0, fmt.Errorf("store: delete expired sessions: %w", err)
	}
	return res.RowsAffected()
}
