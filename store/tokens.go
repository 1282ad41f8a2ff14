package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Token is an API token. The store knows only the SHA-256 hash of the
// secret, which the client sends as "Authorization: Bearer".
type Token struct {
	// ID numbers the token, for listing and revoking it.
	ID uint64 `json:"id"`
	// Hash is the SHA-256 hash of the secret; never served.
	Hash []byte `json:"-"`
	// User is the user the token acts as.
	User string `json:"user"`
	// Name says what the token is for.
	Name string `json:"name"`
	// Created is when the token was made; Expires when it stops working
	// (zero: never).
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires,omitzero"`
}

// CreateToken stores a new token of an existing user (else the error
// wraps ErrNotFound) and returns it with its ID.
func (s *Store) CreateToken(ctx context.Context, tk Token) (Token, error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return Token{}, fmt.Errorf("store: create token of %q: %w", tk.User, err)
	}
	defer tx.Rollback()
	if tk.ID, err = nextID(ctx, tx, "token"); err != nil {
		return Token{}, err
	}
	res, err := tx.ExecContext(ctx,
		`INSERT INTO tokens (id, hash, user, name, created, expires)
			SELECT ?, ?, name, ?, ?, ? FROM users WHERE name = ?`,
		int64(tk.ID), tk.Hash, tk.Name, micros(tk.Created), micros(tk.Expires), tk.User)
	if err != nil {
		return Token{}, fmt.Errorf("store: create token of %q: %w", tk.User, err)
	}
	if err := changedOne(res); err != nil {
		return Token{}, fmt.Errorf("store: create token of user %q: %w", tk.User, err)
	}
	if err := tx.Commit(); err != nil {
		return Token{}, fmt.Errorf("store: create token of %q: %w", tk.User, err)
	}
	return tk, nil
}

// TokenByHash reads the token of a secret's hash; an unknown one wraps
// ErrNotFound.
func (s *Store) TokenByHash(ctx context.Context, hash []byte) (Token, error) {
	list, err := s.tokens(ctx, `WHERE hash = ?`, hash)
	if err != nil {
		return Token{}, err
	}
	if len(list) == 0 {
		return Token{}, fmt.Errorf("store: token: %w", ErrNotFound)
	}
	return list[0], nil
}

// Tokens lists the tokens of user by ID, or every token when user is "".
func (s *Store) Tokens(ctx context.Context, user string) ([]Token, error) {
	if user == "" {
		return s.tokens(ctx, `ORDER BY id`)
	}
	return s.tokens(ctx, `WHERE user = ? ORDER BY id`, user)
}

// tokens reads the tokens selected by where.
func (s *Store) tokens(ctx context.Context, where string, args ...any) ([]Token, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id, hash, user, name, created, expires FROM tokens `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("store: tokens: %w", err)
	}
	defer rows.Close()
	out := []Token{}
	for rows.Next() {
		var tk Token
		var id, created, expires int64
		if err := rows.Scan(&id, &tk.Hash, &tk.User, &tk.Name, &created, &expires); err != nil {
			return nil, fmt.Errorf("store: tokens: %w", err)
		}
		tk.ID, tk.Created, tk.Expires = uint64(id), fromMicros(created), fromMicros(expires)
		out = append(out, tk)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: tokens: %w", err)
	}
	return out, nil
}

// DeleteToken revokes token id and returns it; an unknown ID wraps
// ErrNotFound.
func (s *Store) DeleteToken(ctx context.Context, id uint64) (Token, error) {
	var tk Token
	var created, expires int64
	err := s.w.QueryRowContext(ctx,
		`DELETE FROM tokens WHERE id = ? RETURNING hash, user, name, created, expires`, int64(id)).
		Scan(&tk.Hash, &tk.User, &tk.Name, &created, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return Token{}, fmt.Errorf("store: delete token %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return Token{}, fmt.Errorf("store: delete token %d: %w", id, err)
	}
	tk.ID, tk.Created, tk.Expires = id, fromMicros(created), fromMicros(expires)
	return tk, nil
}
