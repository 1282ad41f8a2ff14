// Package annotate implements the annotation side of the FlowTraq plugin
// contract and the alert retrieval that ftnbi uses.
//
// A plugin annotates the alert action that called it with `ftnbi -val
// KEY=VALUE ...`: ftnbi posts the values, with the TKN, ID and AID the
// plugin found in its environment, to POST /api/v1/annotations, which the
// Annotator serves. The Annotator checks the token, the 300-second window
// and the manual's limits, stores the values and answers with the manual's
// messages word for word (the Err* variables document which situation
// gives which).
//
// The Reader serves GET /api/v1/alerts (`ftnbi -alert -j`) in the
// manual's JSON format (see Alert) and GET /api/v1/alerts/{id}/annotations,
// the values grouped per action and key with what the plugin's gui.json
// says about graphing them.
package annotate

import (
	"context"
	"crypto/subtle"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"time"
)

// The manual's limits.
const (
	// MaxKeysPerAction is the number of distinct keys one action may store.
	MaxKeysPerAction = 128
	// MaxValuesPerKey is the number of values one key of one action may hold.
	MaxValuesPerKey = 770
	// MaxKeysPerAlert is the number of distinct keys of all the actions of
	// an alert together (a key used by two actions counts twice).
	MaxKeysPerAlert = 512
	// MaxValuesPerAlert is the number of values of all the actions and
	// keys of an alert together.
	MaxValuesPerAlert = 21000
)

// Value is one annotation: the positive integer Value stored under Key by
// the action Action of the alert Alert at Time.
type Value struct {
	// Alert is the alert ID (the plugin's ID).
	Alert uint64
	// Action is the alert action ID (the plugin's AID).
	Action uint64
	// Key is the annotation key, as given to ftnbi -val.
	Key string
	// Value is from 1 to math.MaxInt64.
	Value uint64
	// Time is when the value was stored.
	Time time.Time
}

// Store keeps annotation values; the store package implements it.
type Store interface {
	// AddValues stores vals in one transaction: all of them or none.
	AddValues(ctx context.Context, vals []Value) error
	// Values returns every value stored for an alert.
	Values(ctx context.Context, alertID uint64) ([]Value, error)
}

// AlertState is what a TokenChecker knows of the alert of an action.
type AlertState int

// The states of an action's alert.
const (
	// AlertOpen is an alert that has not been deleted yet.
	AlertOpen AlertState = iota
	// AlertEnded is an alert whose DELETE was issued.
	AlertEnded
	// AlertMissing is an alert the action refers to but that no longer
	// exists.
	AlertMissing
)

// Grant is what a TokenChecker knows of the annotation token of an action.
type Grant struct {
	// Token is the action's current token, issued with its latest plugin
	// call; "" when no call has issued one yet.
	Token string
	// Until is when the token stops being valid: the latest call's start
	// plus 300 seconds.
	Until time.Time
	// Alert is the state of the action's alert.
	Alert AlertState
}

// TokenChecker looks up the annotation token of an alert action. The
// action package implements it: every plugin call issues a new token (the
// TKN of the call's environment), valid for 300 seconds after the call.
// Implementations are safe for concurrent use.
type TokenChecker interface {
	// Token returns the grant of the action actionID of the alert
	// alertID. When the alert has no such action (no action with that ID,
	// or an action of another alert), the error wraps ErrUnknownAction.
	Token(ctx context.Context, alertID, actionID uint64) (Grant, error)
}

// Request is an annotation request, the body of POST /api/v1/annotations.
type Request struct {
	// Token is the TKN of the plugin's environment.
	Token string `json:"tkn"`
	// Alert is the ID of the plugin's environment.
	Alert uint64 `json:"id"`
	// Action is the AID of the plugin's environment.
	Action uint64 `json:"aid"`
	// Values are the key/value pairs to store, values from 1 to
	// math.MaxInt64.
	Values map[string]uint64 `json:"values"`
}

// Annotator checks and stores annotation requests. It is safe for
// concurrent use; requests are serialised, so the limits hold exactly.
type Annotator struct {
	cfg    Config
	store  Store
	tokens TokenChecker
	clock  func() time.Time
	log    *slog.Logger

	mu      sync.Mutex
	tallies map[uint64]*tally // per alert, loaded from the store on first use
	uses    uint64            // request counter, orders tallies for eviction
}

// tally counts what an alert holds. All values go through the Annotator
// under its lock, so a tally loaded from the store stays exact.
type tally struct {
	perKey    map[actionKey]int // values per action and key
	perAction map[uint64]int    // distinct keys per action
	keys      int               // distinct (action, key) pairs
	values    int
	used      uint64 // Annotator.uses at the last request
}

type actionKey struct {
	action uint64
	key    string
}

// New validates cfg and returns an Annotator storing into store, checking
// tokens with tokens and reading the time from clock (time.Now when nil).
// A nil log discards messages.
func New(cfg Config, store Store, tokens TokenChecker, clock func() time.Time, log *slog.Logger) (*Annotator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if store == nil || tokens == nil {
		return nil, errors.New("annotate: new: the store and the token checker are required")
	}
	if clock == nil {
		clock = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Annotator{
		cfg:     cfg,
		store:   store,
		tokens:  tokens,
		clock:   clock,
		log:     log,
		tallies: make(map[uint64]*tally),
	}, nil
}

// Annotate checks req and stores its values, all of them or none, with the
// current time. It returns the number of values stored. A refused request
// gives a *Rejection: one of the Err* values with the manual's message, or
// a 400 one for a malformed request.
func (a *Annotator) Annotate(ctx context.Context, req Request) (int, error) {
	keys := make([]string, 0, len(req.Values))
	for k := range req.Values {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if err := req.validate(keys); err != nil {
		return 0, err
	}
	grant, err := a.tokens.Token(ctx, req.Alert, req.Action)
	if errors.Is(err, ErrUnknownAction) {
		return 0, ErrUnknownAction
	}
	if err != nil {
		a.log.Error("annotation token look-up failed", "alert", req.Alert, "action", req.Action, "err", err)
		return 0, errLookup
	}
	now := a.clock()
	if err := checkGrant(grant, req.Token, now); err != nil {
		if err == ErrTooOld || err == ErrAlertGone {
			a.forget(req.Alert)
		}
		return 0, err
	}

	a.mu.Lock()
	defer a.mu.Unlock()
	t, err := a.tally(ctx, req.Alert)
	if err != nil {
		a.log.Error("loading annotation counts failed", "alert", req.Alert, "err", err)
		return 0, ErrStoreFailed
	}
	if err := t.admit(req.Action, keys); err != nil {
		return 0, err
	}
	vals := make([]Value, len(keys))
	for i, k := range keys {
		vals[i] = Value{Alert: req.Alert, Action: req.Action, Key: k, Value: req.Values[k], Time: now}
	}
	if err := a.store.AddValues(ctx, vals); err != nil {
		a.log.Error("storing annotations failed", "alert", req.Alert, "action", req.Action, "err", err)
		return 0, ErrStoreFailed
	}
	for _, v := range vals {
		t.add(v.Action, v.Key)
	}
	return len(vals), nil
}

// checkGrant maps the token look-up to the manual's messages. The order
// matters: a token is checked before anything about its alert is told.
func checkGrant(g Grant, token string, now time.Time) error {
	switch {
	case g.Token == "":
		return ErrUnknownAction
	case subtle.ConstantTimeCompare([]byte(g.Token), []byte(token)) != 1:
		return ErrToken
	case g.Alert == AlertMissing:
		return ErrAlertGone
	case now.After(g.Until) && g.Alert == AlertEnded:
		return ErrTooOld
	case now.After(g.Until):
		return ErrUnknownAction
	}
	return nil
}

// tally returns the counts of an alert, loading them from the store on
// first use and evicting the least recently used alert beyond
// cfg.CachedAlerts. The caller holds a.mu.
func (a *Annotator) tally(ctx context.Context, alertID uint64) (*tally, error) {
	a.uses++
	if t, ok := a.tallies[alertID]; ok {
		t.used = a.uses
		return t, nil
	}
	vals, err := a.store.Values(ctx, alertID)
	if err != nil {
		return nil, err
	}
	t := &tally{perKey: make(map[actionKey]int), perAction: make(map[uint64]int), used: a.uses}
	for _, v := range vals {
		t.add(v.Action, v.Key)
	}
	if len(a.tallies) >= a.cfg.CachedAlerts {
		var oldest uint64
		var first *tally
		for id, c := range a.tallies {
			if first == nil || c.used < first.used {
				oldest, first = id, c
			}
		}
		delete(a.tallies, oldest)
	}
	a.tallies[alertID] = t
	return t, nil
}

// forget drops the counts of an alert that can no longer be annotated.
func (a *Annotator) forget(alertID uint64) {
	a.mu.Lock()
	delete(a.tallies, alertID)
	a.mu.Unlock()
}

// admit checks that one more value for each of keys (distinct, sorted)
// fits the limits, in the manual's order: keys per action, keys per alert,
// values per key, values per alert.
func (t *tally) admit(action uint64, keys []string) error {
	newKeys := 0
	for i, k := range keys {
		n := t.perKey[actionKey{action, k}]
		if n == 0 {
			if t.perAction[action]+newKeys+1 > MaxKeysPerAction {
				return ErrKeysPerAction
			}
			if t.keys+newKeys+1 > MaxKeysPerAlert {
				return ErrKeysPerAlert
			}
			newKeys++
		}
		if n+1 > MaxValuesPerKey {
			return ErrValuesPerKey
		}
		if t.values+i+1 > MaxValuesPerAlert {
			return ErrValuesPerAlert
		}
	}
	return nil
}

// add counts one stored value.
func (t *tally) add(action uint64, key string) {
	k := actionKey{action, key}
	if t.perKey[k] == 0 {
		t.perAction[action]++
		t.keys++
	}
	t.perKey[k]++
	t.values++
}
