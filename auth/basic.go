package auth

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"time"

	"github.com/flowsentry/flowsentry/store"
)

// basicEntry is a cached successful basic-auth check of one user.
type basicEntry struct {
	mac     []byte
	user    store.User
	expires time.Time
}

// Basic checks a user name and password (HTTP basic auth) from client
// address addr. It fails with *LockedError while the name or address is
// locked, whatever the password, and with ErrBadCredentials for an
// unknown user or a wrong password.
func (s *Service) Basic(ctx context.Context, name, password, addr string) (store.User, error) {
	now := s.now()
	if err := s.checkLock(now, name, addr); err != nil {
		return store.User{}, err
	}
	gen := s.follow(ctx, now)
	mac := s.mac(name, password)
	s.mu.Lock()
	e, ok := s.basic[name]
	s.mu.Unlock()
	if ok && now.Before(e.expires) && hmac.Equal(e.mac, mac) {
		return e.user, nil
	}
	u, err := s.password(ctx, now, name, password, addr)
	if err != nil {
		return store.User{}, err
	}
	s.mu.Lock()
	if s.gen == gen {
		s.basic[name] = basicEntry{mac: mac, user: u, expires: now.Add(s.cfg.CacheFor)}
	}
	s.mu.Unlock()
	return u, nil
}

// password runs the store's (bcrypt) check, counting a failure or
// resetting the counts.
func (s *Service) password(ctx context.Context, now time.Time, name, password, addr string) (store.User, error) {
	u, err := s.st.Authenticate(ctx, name, password)
	if errors.Is(err, store.ErrBadCredentials) {
		s.failed(now, ReasonBadCredentials, name, addr)
		return store.User{}, ErrBadCredentials
	}
	if err != nil {
		return store.User{}, err
	}
	s.throttle.Reset(userKey(name), addrKey(addr))
	return u, nil
}

// checkLock refuses an attempt of a locked name or address; name is ""
// for a token.
func (s *Service) checkLock(now time.Time, name, addr string) error {
	keys := []string{addrKey(addr)}
	if name != "" {
		keys = append(keys, userKey(name))
	}
	until := s.throttle.Locked(now, keys...)
	if until.IsZero() {
		return nil
	}
	s.m.failures.WithLabelValues(string(ReasonLocked)).Inc()
	s.log.Debug("authentication refused while locked", "user", name, "addr", addr, "locked_until", until)
	return &LockedError{Until: until, Wait: until.Sub(now)}
}

// failed counts and logs a failed check of name ("" for a token) from
// addr.
func (s *Service) failed(now time.Time, reason Reason, name, addr string) {
	keys := []string{addrKey(addr)}
	if name != "" {
		keys = append(keys, userKey(name))
	}
	fails, until := s.throttle.Fail(now, keys...)
	s.m.failures.WithLabelValues(string(reason)).Inc()
	attrs := []any{"reason", reason, "user", name, "addr", addr, "failures", fails}
	if !until.IsZero() {
		attrs = append(attrs, "locked_until", until.UTC().Format(time.RFC3339))
	}
	s.log.Warn("authentication failed", attrs...)
}

// mac is the cache key of a name and password.
func (s *Service) mac(name, password string) []byte {
	h := hmac.New(sha256.New, s.key[:])
	h.Write([]byte(name))
	h.Write([]byte{0})
	h.Write([]byte(password))
	return h.Sum(nil)
}
