package auth

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/flowsentry/flowsentry/store"
)

// TokenPrefix starts every API token, so that a leaked one is easy to
// recognise (and to scan repositories for).
const TokenPrefix = "fst_"

// tokenEntry is a cached token with its user.
type tokenEntry struct {
	tk     store.Token
	user   store.User
	loaded time.Time
}

// CreateToken makes an API token for user named name, valid for ttl (0:
// until revoked). It returns the secret, shown only this once.
func (s *Service) CreateToken(ctx context.Context, user, name string, ttl time.Duration) (string, store.Token, error) {
	if ttl < 0 {
		return "", store.Token{}, fmt.Errorf("expires_in %s is negative: give a positive duration such as \"720h\", or leave it out for a token that does not expire", ttl)
	}
	now := s.now()
	raw := TokenPrefix + secret()
	hash := sha256.Sum256([]byte(raw))
	tk := store.Token{Hash: hash[:], User: user, Name: name, Created: now}
	if ttl > 0 {
		tk.Expires = now.Add(ttl)
	}
	tk, err := s.st.CreateToken(ctx, tk)
	if err != nil {
		return "", store.Token{}, err
	}
	return raw, tk, nil
}

// Token returns the user and token of a bearer token sent from addr:
// *LockedError while the address is locked, ErrBadToken for an unknown or
// revoked token (a failure of the address), ErrExpired for an expired
// one.
func (s *Service) Token(ctx context.Context, raw, addr string) (store.User, store.Token, error) {
	now := s.now()
	if err := s.checkLock(now, "", addr); err != nil {
		return store.User{}, store.Token{}, err
	}
	hash := sha256.Sum256([]byte(raw))
	gen := s.follow(ctx, now)
	s.mu.Lock()
	e, ok := s.tokens[hash]
	s.mu.Unlock()
	if !ok || now.Sub(e.loaded) >= s.cfg.CacheFor {
		var tk store.Token
		var err error
		if strings.HasPrefix(raw, TokenPrefix) {
			tk, err = s.st.TokenByHash(ctx, hash[:])
		} else {
			err = store.ErrNotFound
		}
		if errors.Is(err, store.ErrNotFound) {
			s.failed(now, ReasonBadToken, "", addr)
			return store.User{}, store.Token{}, ErrBadToken
		}
		if err != nil {
			return store.User{}, store.Token{}, err
		}
		u, err := s.st.User(ctx, tk.User)
		if err != nil {
			return store.User{}, store.Token{}, err
		}
		e = tokenEntry{tk: tk, user: u, loaded: now}
		cache(s, gen, s.tokens, hash, e)
	}
	if !e.tk.Expires.IsZero() && !now.Before(e.tk.Expires) {
		s.m.failures.WithLabelValues(string(ReasonExpired)).Inc()
		return store.User{}, store.Token{}, ErrExpired
	}
	return e.user, e.tk, nil
}

// Tokens lists the tokens of user, or every token when user is "".
func (s *Service) Tokens(ctx context.Context, user string) ([]store.Token, error) {
	return s.st.Tokens(ctx, user)
}

// RevokeToken deletes token id and returns it; it stops working at once.
func (s *Service) RevokeToken(ctx context.Context, id uint64) (store.Token, error) {
	tk, err := s.st.DeleteToken(ctx, id)
	if err != nil {
		return store.Token{}, err
	}
	s.mu.Lock()
	delete(s.tokens, [32]byte(tk.Hash))
	s.mu.Unlock()
	return tk, nil
}
