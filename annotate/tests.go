//go:build !release

package annotate

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/flowsentry/flowsentry/alert"
)

// This file holds in-memory implementations of the package's interfaces
// for the tests of this package and of the packages that mount its
// handlers (cmd/ftnbi). They are left out of release builds.

// MemoryStore is a Store in memory. Fail, when set, is returned by every
// call. It is safe for concurrent use.
type MemoryStore struct {
	mu   sync.Mutex
	vals []Value
	Fail error
}

// AddValues appends vals.
func (s *MemoryStore) AddValues(_ context.Context, vals []Value) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Fail != nil {
		return s.Fail
	}
	s.vals = append(s.vals, vals...)
	return nil
}

// Values returns the values of an alert in the order stored.
func (s *MemoryStore) Values(_ context.Context, alertID uint64) ([]Value, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Fail != nil {
		return nil, s.Fail
	}
	var out []Value
	for _, v := range s.vals {
		if v.Alert == alertID {
			out = append(out, v)
		}
	}
	return out, nil
}

// StaticTokens is a TokenChecker over fixed grants, keyed by alert and
// action ID.
type StaticTokens map[[2]uint64]Grant

// Token returns the grant of the action or an error wrapping
// ErrUnknownAction.
func (s StaticTokens) Token(_ context.Context, alertID, actionID uint64) (Grant, error) {
	g, ok := s[[2]uint64{alertID, actionID}]
	if !ok {
		return Grant{}, fmt.Errorf("alert %d action %d: %w", alertID, actionID, ErrUnknownAction)
	}
	return g, nil
}

// AlertList is an AlertSource over a fixed list that applies alert.Query
// as the store does and records the last query. It is safe for
// concurrent use.
type AlertList struct {
	mu     sync.Mutex
	alerts []alert.Alert
	last   alert.Query
}

// NewAlertList returns an AlertList of alerts.
func NewAlertList(alerts ...alert.Alert) *AlertList {
	return &AlertList{alerts: alerts}
}

// Alerts returns the matching alerts, newest (highest Earliest) first.
func (l *AlertList) Alerts(_ context.Context, q alert.Query) ([]alert.Alert, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.last = q
	var out []alert.Alert
	for _, a := range l.alerts {
		switch {
		case !q.CreatedSince.IsZero() && a.Earliest.Before(q.CreatedSince),
			!q.ActiveSince.IsZero() && !a.Open() && a.Latest.Before(q.ActiveSince),
			q.CIDs != nil && !slices.Contains(q.CIDs, a.CID),
			q.IDs != nil && !slices.Contains(q.IDs, a.ID):
			continue
		}
		out = append(out, a)
	}
	slices.SortStableFunc(out, func(x, y alert.Alert) int { return y.Earliest.Compare(x.Earliest) })
	if limit := cmp.Or(q.Limit, 10000); len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// Last returns the last query received.
func (l *AlertList) Last() alert.Query {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.last
}

// User is an account of StaticUsers.
type User struct {
	Password string
	Admin    bool
	CIDs     []uint32
	// Groups restricts the user to the alerts about these traffic
	// groups; nil for none.
	Groups []uint32
}

// StaticUsers is an Authenticator over fixed accounts, keyed by name.
type StaticUsers map[string]User

// Authenticate checks the password in clear.
func (s StaticUsers) Authenticate(_ context.Context, name, password string) ([]uint32, bool, error) {
	u, ok := s[name]
	if !ok || u.Password != password {
		return nil, false, fmt.Errorf("user %q: %w", name, ErrBadCredentials)
	}
	return u.CIDs, u.Admin, nil
}

// Groups returns the traffic groups user name is restricted to.
func (s StaticUsers) Groups(_ context.Context, name string) []uint32 { return s[name].Groups }

// StaticActions is an ActionLister over fixed lists, keyed by alert ID.
type StaticActions map[uint64][]ActionRef

// AlertActions returns the list of the alert.
func (s StaticActions) AlertActions(_ context.Context, alertID uint64) ([]ActionRef, error) {
	return s[alertID], nil
}

// Graph is what StaticGraphs returns for one plugin.
type Graph struct {
	Containers []string
	Fields     []UpdateField
}

// StaticGraphs is a Grapher over fixed graphs, keyed by plugin name.
type StaticGraphs map[string]Graph

// Graphs returns the plugin's graph.
func (s StaticGraphs) Graphs(plugin string) ([]string, []UpdateField) {
	g := s[plugin]
	return g.Containers, g.Fields
}
