// Package auth authenticates the users of the HTTP API and the web UI:
// login sessions (a cookie), API tokens (Authorization: Bearer) and HTTP
// basic auth (ftnbi -un/-up, curl -u). It is independent of net/http: the
// api package reads the credentials from the request and hands them here.
//
// # Secrets
//
// Session IDs and tokens are 256 random bits; the store keeps only their
// SHA-256 hashes. A successful basic-auth check is cached for
// Config.CacheFor under an HMAC-SHA-256 (with a key that lives only in
// the process) of the name and password, compared in constant time, so
// that bcrypt runs once per user and minute rather than per request.
// Sessions and tokens carry the user's role, partitions and groups cached
// for as long; Forget drops every cached entry of a user at once (the API
// calls it when a user changes or goes). Accounts changed by another
// process sharing the database (`flowsentry user passwd` or `delete` while
// the server runs) are noticed through the store's users generation, read
// at most every FollowEvery (1 s): when it moved, every cache is dropped.
//
// # Throttling
//
// Failed checks are counted per user name and per client address: after
// Config.LockAfter consecutive failures, further attempts of that name or
// from that address are refused, without checking the password, for a
// delay doubling from Config.LockMin up to Config.LockMax. A success
// resets both counts. An unknown user and a wrong password are one
// failure, ErrBadCredentials, and take the same time (the store compares a
// dummy hash).
package auth

import (
	"context"
	"crypto/rand"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flowsentry/flowsentry/store"
)

// Store is what the service keeps its state in; *store.Store implements
// it.
type Store interface {
	Authenticate(ctx context.Context, name, password string) (store.User, error)
	User(ctx context.Context, name string) (store.User, error)
	UsersGeneration(ctx context.Context) (uint64, error)
	CreateSession(ctx context.Context, se store.Session) error
	Session(ctx context.Context, hash []byte) (store.Session, error)
	TouchSession(ctx context.Context, hash []byte, t time.Time) error
	DeleteSession(ctx context.Context, hash []byte) error
	DeleteExpiredSessions(ctx context.Context, now, idleSince time.Time) (int64, error)
	CreateToken(ctx context.Context, tk store.Token) (store.Token, error)
	TokenByHash(ctx context.Context, hash []byte) (store.Token, error)
	Tokens(ctx context.Context, user string) ([]store.Token, error)
	DeleteToken(ctx context.Context, id uint64) (store.Token, error)
	AddAudit(ctx context.Context, e store.AuditEntry) error
	TrimAudit(ctx context.Context, before time.Time, keep int) (int64, error)
}

// Deps are the service's dependencies; Store is required.
type Deps struct {
	Store Store
	// Registerer receives the metrics; nil registers none.
	Registerer prometheus.Registerer
	// Log receives a Warn line per failed check; nil discards.
	Log *slog.Logger
	// Now is the clock; nil is time.Now.
	Now func() time.Time
}

// Service checks credentials and manages sessions, tokens and the audit
// log. It is safe for concurrent use.
type Service struct {
	cfg      Config
	st       Store
	log      *slog.Logger
	now      func() time.Time
	m        *metrics
	throttle *Throttle
	// key is the HMAC key of the basic-auth cache.
	key [32]byte

	mu       sync.Mutex
	basic    map[string]basicEntry
	sessions map[[32]byte]sessionEntry
	tokens   map[[32]byte]tokenEntry
	// gen is the users generation the caches belong to, read at genRead.
	gen     uint64
	genRead time.Time

	stop chan struct{}
	done chan struct{}
	once sync.Once
}

// New validates cfg and builds the service; it starts nothing.
func New(cfg Config, deps Deps) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Log == nil {
		deps.Log = slog.New(slog.DiscardHandler)
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	m, err := newMetrics(deps.Registerer)
	if err != nil {
		return nil, err
	}
	s := &Service{
		cfg: cfg, st: deps.Store, log: deps.Log, now: deps.Now, m: m,
		throttle: NewThrottle(cfg.LockAfter, cfg.LockMin, cfg.LockMax, cfg.TrackedKeys),
		basic:    make(map[string]basicEntry),
		sessions: make(map[[32]byte]sessionEntry),
		tokens:   make(map[[32]byte]tokenEntry),
	}
	rand.Read(s.key[:])
	return s, nil
}

// Start begins the hourly removal of expired sessions and old audit
// entries, the first right away.
func (s *Service) Start() error {
	s.stop, s.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(s.done)
		tick := time.NewTicker(time.Hour)
		defer tick.Stop()
		for {
			s.trim()
			select {
			case <-s.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return nil
}

// Stop ends the trimming and waits for it; it is idempotent and safe when
// Start never ran.
func (s *Service) Stop() {
	s.once.Do(func() {
		if s.stop == nil {
			return
		}
		close(s.stop)
		<-s.done
	})
}

// trim removes expired sessions and the audit entries past retention.
func (s *Service) trim() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	now := s.now()
	if _, err := s.st.DeleteExpiredSessions(ctx, now, now.Add(-s.cfg.SessionIdle)); err != nil {
		s.log.Warn("removing expired sessions", "err", err)
	}
	if _, err := s.st.TrimAudit(ctx, now.Add(-s.cfg.AuditKeep), s.cfg.AuditRows); err != nil {
		s.log.Warn("trimming the audit log", "err", err)
	}
}

// Forget drops every cached credential check of user name, so that the
// next request of its sessions, tokens or basic auth reads the user
// again: call it after the user's password, role, partitions or groups
// changed, or the user was deleted.
func (s *Service) Forget(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.basic, name)
	for k, e := range s.sessions {
		if e.se.User == name {
			delete(s.sessions, k)
		}
	}
	for k, e := range s.tokens {
		if e.tk.User == name {
			delete(s.tokens, k)
		}
	}
}

// Refused counts a request refused for reason outside this package (a
// missing CSRF token).
func (s *Service) Refused(reason Reason) { s.m.failures.WithLabelValues(string(reason)).Inc() }
