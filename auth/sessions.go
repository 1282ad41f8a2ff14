package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"time"

	"github.com/flowsentry/flowsentry/store"
)

// touchEvery is how stale a session's stored last-seen time may get, so
// that a busy session does not write on every request.
const touchEvery = time.Minute

// maxCached caps each of the session and token caches.
const maxCached = 10000

// sessionEntry is a cached session with its user.
type sessionEntry struct {
	se     store.Session
	user   store.User
	loaded time.Time
}

// NewSession is a session just created: ID goes in the cookie and is not
// kept anywhere else.
type NewSession struct {
	ID      string
	CSRF    string
	Expires time.Time
}

// Login checks a name and password as Basic does, without its cache, and
// opens a session.
func (s *Service) Login(ctx context.Context, name, password, addr string) (store.User, NewSession, error) {
	now := s.now()
	if err := s.checkLock(now, name, addr); err != nil {
		return store.User{}, NewSession{}, err
	}
	gen := s.follow(ctx, now)
	u, err := s.password(ctx, now, name, password, addr)
	if err != nil {
		return store.User{}, NewSession{}, err
	}
	ns := NewSession{ID: secret(), CSRF: secret(), Expires: now.Add(s.cfg.SessionMax)}
	hash := sha256.Sum256([]byte(ns.ID))
	se := store.Session{Hash: hash[:], User: u.Name, CSRF: ns.CSRF, Created: now, LastSeen: now, Expires: ns.Expires}
	if err := s.st.CreateSession(ctx, se); err != nil {
		return store.User{}, NewSession{}, err
	}
	cache(s, gen, s.sessions, hash, sessionEntry{se: se, user: u, loaded: now})
	return u, ns, nil
}

// Session returns the user and session of a session ID, ErrExpired for
// an unknown, ended or expired one.
func (s *Service) Session(ctx context.Context, id string) (store.User, store.Session, error) {
	now := s.now()
	hash := sha256.Sum256([]byte(id))
	gen := s.follow(ctx, now)
	s.mu.Lock()
	e, ok := s.sessions[hash]
	s.mu.Unlock()
	if !ok || now.Sub(e.loaded) >= s.cfg.CacheFor {
		se, err := s.st.Session(ctx, hash[:])
		if errors.Is(err, store.ErrNotFound) {
			s.m.failures.WithLabelValues(string(ReasonExpired)).Inc()
			return store.User{}, store.Session{}, ErrExpired
		}
		if err != nil {
			return store.User{}, store.Session{}, err
		}
		u, err := s.st.User(ctx, se.User)
		if err != nil {
			return store.User{}, store.Session{}, err
		}
		e = sessionEntry{se: se, user: u, loaded: now}
	}
	if !now.Before(e.se.Expires) || now.Sub(e.se.LastSeen) >= s.cfg.SessionIdle {
		s.drop(hash)
		if err := s.st.DeleteSession(ctx, hash[:]); err != nil {
			return store.User{}, store.Session{}, err
		}
		s.m.failures.WithLabelValues(string(ReasonExpired)).Inc()
		return store.User{}, store.Session{}, ErrExpired
	}
	if now.Sub(e.se.LastSeen) >= touchEvery {
		if err := s.st.TouchSession(ctx, hash[:], now); err != nil {
			return store.User{}, store.Session{}, err
		}
		e.se.LastSeen = now
	}
	cache(s, gen, s.sessions, hash, e)
	return e.user, e.se, nil
}

// Logout ends the session of id; an unknown one is not an error.
func (s *Service) Logout(ctx context.Context, id string) error {
	hash := sha256.Sum256([]byte(id))
	s.drop(hash)
	return s.st.DeleteSession(ctx, hash[:])
}

// drop forgets a cached session.
func (s *Service) drop(hash [32]byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.sessions, hash)
}

// cache stores e in m under the lock, making room by dropping an
// arbitrary entry when m is full. It stores nothing when the users
// generation moved from gen, the one e was read under.
func cache[E any](s *Service, gen uint64, m map[[32]byte]E, k [32]byte, e E) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gen != gen {
		return
	}
	if _, ok := m[k]; !ok && len(m) >= maxCached {
		for old := range m {
			delete(m, old)
			break
		}
	}
	m[k] = e
}

// secret returns 256 random bits in URL-safe base64.
func secret() string {
	var b [32]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
