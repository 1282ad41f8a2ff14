package annotate

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"unicode"
)

// Rejection is why an annotation request was refused: Message is what
// ftnbi prints, Status the HTTP status of the answer.
type Rejection struct {
	// Status is the HTTP status code.
	Status int
	// Message is the manual's message, or what is wrong with a malformed
	// request and how to write it.
	Message string
}

// Error returns the message.
func (r *Rejection) Error() string { return r.Message }

// The manual's messages, word for word, and the situations they are given
// in. Checks run in this order: the request's form (400, our own
// messages), the token, the alert, the limits, the storage.
//
//   - ErrUnknownAction: the alert has no action with that AID; or no call
//     of the action has issued a token yet; or the token matches but the
//     300 seconds after the action's latest call have passed while the
//     alert is still open (the next UPDATE call issues a new token).
//   - ErrToken: the token does not match the action's current one (a
//     token of an earlier call is no longer current).
//   - ErrAlertGone: the token matches but the action's alert no longer
//     exists.
//   - ErrTooOld: the token matches, the alert has ended (DELETE issued)
//     and the 300 seconds after the action's latest call (the DELETE) have
//     passed.
//   - ErrKeysPerAction, ErrKeysPerAlert, ErrValuesPerKey,
//     ErrValuesPerAlert: the request would break a limit; nothing of it is
//     stored.
//   - ErrStoreFailed: the database failed (the cause is logged).
//
// The manual's "Key block was found, but unable to allocate new value
// block", "Could not allocate new key block" and "The alert can no longer
// be updated" describe FlowTraq's fixed in-memory block pools and alert
// cache recycling, which flowsentry does not have: it never gives them.
var (
	ErrUnknownAction  = &Rejection{http.StatusNotFound, "The alert action ID/AID was not found"}
	ErrToken          = &Rejection{http.StatusForbidden, "Update rejected: token mismatch, or the alert has timed out"}
	ErrAlertGone      = &Rejection{http.StatusNotFound, "The alert was not found in memory"}
	ErrTooOld         = &Rejection{http.StatusGone, "The alert is too old and cannot be updated"}
	ErrKeysPerAction  = &Rejection{http.StatusConflict, "Too many keys for this alert action (max: 128 per action)"}
	ErrValuesPerKey   = &Rejection{http.StatusConflict, "Too many values for this key (max: 770 per key)"}
	ErrKeysPerAlert   = &Rejection{http.StatusConflict, "Too many keys for this alert (max: 512 per alert)"}
	ErrValuesPerAlert = &Rejection{http.StatusConflict, "Too many values for this alert (max: 21,000 per alert)"}
	ErrStoreFailed    = &Rejection{http.StatusInternalServerError, "Failed to store key for this alert action"}
)

// errLookup is the answer when the token checker fails (the cause is
// logged); the manual has no message for it.
var errLookup = &Rejection{http.StatusServiceUnavailable, "the annotation token could not be checked (server error, see its log); try again"}

// maxKeyLen is the longest key accepted, in bytes.
const maxKeyLen = 255

func invalid(format string, args ...any) *Rejection {
	return &Rejection{http.StatusBadRequest, fmt.Sprintf(format, args...)}
}

// parseValue reads an annotation value written as a decimal integer.
func parseValue(key, text string) (uint64, error) {
	v, err := strconv.ParseUint(text, 10, 64)
	if err != nil || v == 0 || v > math.MaxInt64 {
		return 0, invalid("value %s of key %q is not a positive integer: values are whole numbers from 1 to %d", text, key, int64(math.MaxInt64))
	}
	return v, nil
}

// validate checks the form of a request whose keys, sorted, are keys; the
// first problem found is the answer, so it does not depend on map order.
func (r *Request) validate(keys []string) error {
	switch {
	case r.Token == "":
		return invalid("tkn is missing: give the TKN that flowsentry put in the plugin's environment")
	case r.Alert == 0:
		return invalid("id is missing or 0: give the alert ID, the ID of the plugin's environment")
	case r.Action == 0:
		return invalid("aid is missing or 0: give the alert action ID, the AID of the plugin's environment")
	case len(keys) == 0:
		return invalid("values is empty: give at least one KEY=VALUE")
	}
	for _, k := range keys {
		if err := checkKey(k); err != nil {
			return err
		}
		if v := r.Values[k]; v == 0 || v > math.MaxInt64 {
			_, err := parseValue(k, strconv.FormatUint(v, 10))
			return err
		}
	}
	return nil
}

// checkKey accepts keys of 1 to 255 bytes without control characters.
func checkKey(k string) error {
	if k == "" {
		return invalid("a key is empty: write KEY=VALUE with a key such as tcp_total_drop")
	}
	if len(k) > maxKeyLen {
		return invalid("key %.32q... is %d bytes long: keys are at most %d bytes", k, len(k), maxKeyLen)
	}
	for _, c := range k {
		if unicode.IsControl(c) || c == unicode.ReplacementChar {
			return invalid("key %q holds a control character or invalid UTF-8: use printable characters", k)
		}
	}
	return nil
}
