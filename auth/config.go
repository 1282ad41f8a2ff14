package auth

import (
	"errors"
	"time"
)

// Config sets the lifetimes, the throttle and the audit retention.
type Config struct {
	// SessionIdle ends a session not used for this long.
	SessionIdle time.Duration
	// SessionMax ends a session this long after the login, used or not.
	SessionMax time.Duration
	// CacheFor is how long a successful basic-auth check, and the user a
	// session or token acts as, are kept in memory.
	CacheFor time.Duration
	// LockAfter is the number of consecutive failures of a user name or
	// client address after which its attempts are refused for a while.
	LockAfter int
	// LockMin is the first refusal period; each further failure doubles
	// it, up to LockMax.
	LockMin, LockMax time.Duration
	// TrackedKeys caps the user names and addresses the throttle
	// remembers; the least recently failed are forgotten first.
	TrackedKeys int
	// AuditKeep is how long audit entries are kept, AuditRows how many
	// at most.
	AuditKeep time.Duration
	AuditRows int
}

// DefaultConfig: sessions idle out after 12 h and end after 7 days,
// checks are cached for a minute, the fifth consecutive failure locks for
// 1 s, doubling up to 15 min, 100,000 keys are tracked, and the audit log
// keeps 90 days and at most 1,000,000 entries.
func DefaultConfig() Config {
	return Config{
		SessionIdle: 12 * time.Hour, SessionMax: 7 * 24 * time.Hour, CacheFor: time.Minute,
		LockAfter: 5, LockMin: time.Second, LockMax: 15 * time.Minute, TrackedKeys: 100000,
		AuditKeep: 90 * 24 * time.Hour, AuditRows: 1000000,
	}
}

// Validate checks that every field is positive and ordered.
func (c Config) Validate() error {
	if c.SessionIdle <= 0 || c.SessionMax <= 0 || c.CacheFor <= 0 || c.LockAfter <= 0 ||
		c.LockMin <= 0 || c.LockMax < c.LockMin || c.TrackedKeys <= 0 || c.AuditKeep <= 0 || c.AuditRows <= 0 {
		return errors.New("auth: every duration and count must be positive, and LockMax at least LockMin: start from auth.DefaultConfig()")
	}
	return nil
}
