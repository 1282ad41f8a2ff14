package auth

import (
	"errors"
	"fmt"
	"time"

	"github.com/flowsentry/flowsentry/store"
)

// ErrBadCredentials is an unknown user or a wrong password, alike.
var ErrBadCredentials = store.ErrBadCredentials

// ErrBadToken is an unknown or revoked API token.
var ErrBadToken = errors.New("the API token is unknown or revoked")

// ErrExpired is a session or API token past its end.
var ErrExpired = errors.New("the session or token has expired")

// LockedError refuses an attempt of a user name or client address that
// failed too often.
type LockedError struct {
	// Until is when attempts are accepted again, Wait how long that is
	// from the attempt.
	Until time.Time
	Wait  time.Duration
}

// Error says when to retry.
func (e *LockedError) Error() string {
	return fmt.Sprintf("too many failed logins for this user or from this address: retry after %s", e.Until.UTC().Format(time.RFC3339))
}
