package alert

import (
	"context"
	"errors"
	"time"
)

// ErrNotFound is wrapped by the error Get returns for an unknown alert ID.
var ErrNotFound = errors.New("alert not found")

// Store persists alerts. Implementations must be safe for concurrent use.
type Store interface {
	// SaveAlerts inserts or replaces every alert of list in one
	// transaction: all are saved or none. An alert whose ID is 0 is new:
	// it gets an ID never handed out before (in list order) in the same
	// transaction. On failure the IDs of list are as they were.
	SaveAlerts(ctx context.Context, list []*Alert) error
	// OpenAlerts returns every alert whose Ended is zero.
	OpenAlerts(ctx context.Context) ([]Alert, error)
	// Alerts returns the alerts matching q, newest first.
	Alerts(ctx context.Context, q Query) ([]Alert, error)
}

// Query selects alerts. Zero fields select everything.
type Query struct {
	// CreatedSince keeps alerts with Earliest >= CreatedSince (zero: no
	// bound).
	CreatedSince time.Time
	// ActiveSince keeps open alerts and those with Latest >= ActiveSince
	// (zero: no bound).
	ActiveSince time.Time
	// CIDs keeps alerts of these partitions (nil: every partition).
	CIDs []uint32
	// IDs keeps alerts with these IDs (nil: any).
	IDs []uint64
	// Limit is the most alerts returned (0: 10000).
	Limit int
}

// Event is an alert transition for the actions: the operation and a copy of
// the alert as persisted. Alert.Fields is shared with the engine and other
// events and must not be modified.
type Event struct {
	// Op is CREATE, UPDATE or DELETE.
	Op Op
	// Alert is the alert as saved with the transition.
	Alert Alert
}

// Sink receives the engine's events in order, each once, after the
// transition is committed. Alert is called from the engine's persister, so
// it must not block: the action dispatcher queues the event and returns.
type Sink interface {
	// Alert takes one event.
	Alert(ev Event)
}

// SinkFunc adapts a function to a Sink, e.g. to break the construction
// cycle between the engine and a dispatcher that reads from it.
type SinkFunc func(ev Event)

// Alert calls f(ev).
func (f SinkFunc) Alert(ev Event) { f(ev) }
