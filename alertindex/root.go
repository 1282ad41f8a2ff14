// Package alertindex keeps every stored alert in memory in a compact form
// for the alert search of the UI: filters, facet counts and a time
// histogram over 100,000 alerts answer in milliseconds.
//
// The index is loaded from the store at start (Load), then follows the
// alert engine's transitions (Alert), the actions' state changes (Action)
// and the notes users write (AddNote, which stores the note first). Each
// alert is held as an entry of numbers and interned values (type,
// severity, partition, blacklist IDs, @tags: indexes into dictionaries) and
// the three strings the result shows (object, reason, sources), computed
// once per transition; a search reads the entries under a read lock and
// parses nothing.
//
// The index holds at most Config.MaxAlerts alerts: past it, the oldest
// ended alerts (lowest IDs) leave it, and stay in the store.
package alertindex

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/flowsentry/flowsentry/action"
	"github.com/flowsentry/flowsentry/alert"
)

// ErrNotFound is wrapped by the errors about an alert the index does not
// hold or the user may not see.
var ErrNotFound = errors.New("alert not found")

// Store is where the index loads alerts, action states and notes from and
// writes notes to; the store package implements it.
type Store interface {
	// EachAlert calls fn with every stored alert.
	EachAlert(ctx context.Context, fn func(alert.Alert) error) error
	// EachActionState calls fn with the alert, ID and state of every
	// stored action.
	EachActionState(ctx context.Context, fn func(alertID, actionID uint64, state string) error) error
	// EachNote calls fn with every note, in ID order.
	EachNote(ctx context.Context, fn func(Note) error) error
	// AddNote stores a note with a new ID, which it sets; an unknown alert
	// gives an error wrapping ErrNotFound.
	AddNote(ctx context.Context, n *Note) error
	// Notes returns the notes of an alert, oldest first.
	Notes(ctx context.Context, alertID uint64) ([]Note, error)
}

// Config bounds the index.
type Config struct {
	// MaxAlerts is the most alerts held; past it the oldest ended ones
	// leave the index (not the store). Zero means DefaultMaxAlerts.
	MaxAlerts int
}

// DefaultMaxAlerts is MaxAlerts when the configuration leaves it zero:
// about 470 MB at most (about 470 bytes per alert).
const DefaultMaxAlerts = 1_000_000

// Index is the in-memory alert index. Its methods are safe for concurrent
// use.
type Index struct {
	store Store
	clock func() time.Time
	max   int

	mu      sync.RWMutex
	entries []entry          // in ID order
	byID    map[uint64]int32 // alert ID → position in entries
	acts    map[uint64][]actState
	dicts   [numFacets]dict // values of the interned facets
}

// actState is the state of one action of an alert.
type actState struct {
	id    uint64
	state action.State
}

// New returns an empty index over st; clock gives the time open alerts
// last until (nil: time.Now).
func New(cfg Config, st Store, clock func() time.Time) (*Index, error) {
	if st == nil {
		return nil, errors.New("alertindex: New needs a store")
	}
	if cfg.MaxAlerts < 0 {
		return nil, fmt.Errorf("alertindex: MaxAlerts %d is negative: use 0 for the default of %d", cfg.MaxAlerts, DefaultMaxAlerts)
	}
	if cfg.MaxAlerts == 0 {
		cfg.MaxAlerts = DefaultMaxAlerts
	}
	if clock == nil {
		clock = time.Now
	}
	x := &Index{store: st, clock: clock, max: cfg.MaxAlerts}
	x.reset()
	return x, nil
}

// reset empties the index; the caller holds x.mu or owns x.
func (x *Index) reset() {
	x.entries, x.byID, x.acts = nil, map[uint64]int32{}, map[uint64][]actState{}
	for f := range x.dicts {
		x.dicts[f] = newDict()
	}
	// The fixed values come first, in the order of their constants.
	for _, s := range Statuses {
		x.dicts[facetStatus].id(s)
	}
	for _, d := range Durations {
		x.dicts[facetDuration].id(d)
	}
	x.dicts[facetNote].id(NoteNone)
}

// Load replaces the index's content with the store's alerts, action
// states and notes. Call it before the alert engine commits transitions.
func (x *Index) Load(ctx context.Context) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.reset()
	err := x.store.EachAlert(ctx, func(a alert.Alert) error {
		x.put(a, describe(&a))
		return nil
	})
	if err != nil {
		return fmt.Errorf("alertindex: load: %w", err)
	}
	err = x.store.EachActionState(ctx, func(alertID, id uint64, state string) error {
		x.setAction(alertID, id, action.State(state))
		return nil
	})
	if err != nil {
		return fmt.Errorf("alertindex: load: %w", err)
	}
	err = x.store.EachNote(ctx, func(n Note) error {
		x.note(n)
		return nil
	})
	if err != nil {
		return fmt.Errorf("alertindex: load: %w", err)
	}
	return nil
}

// Group returns the traffic group alert id is about (alert.Alert.Group),
// and whether the index holds the alert.
func (x *Index) Group(id uint64) (uint32, bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	i, ok := x.byID[id]
	if !ok {
		return 0, false
	}
	return x.entries[i].group, true
}

// Len returns the number of alerts held.
func (x *Index) Len() int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return len(x.entries)
}

// Alert takes a transition of the alert engine; it implements alert.Sink
// and does not block beyond the index's lock.
func (x *Index) Alert(ev alert.Event) {
	d := describe(&ev.Alert)
	x.mu.Lock()
	defer x.mu.Unlock()
	x.put(ev.Alert, d)
}

// Action takes a saved action state (action.Deps.OnChange's signature;
// the partition is not needed).
func (x *Index) Action(a action.Action, _ uint32) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.setAction(a.Alert, a.ID, a.State)
}

// AddNote stores a note of user on alert id, which may must allow, and
// adds it to the index. The text must be 1 to MaxNoteLen characters.
func (x *Index) AddNote(ctx context.Context, id uint64, user, text string, may func(cid, group uint32) bool) (Note, error) {
	if err := CheckNote(text); err != nil {
		return Note{}, err
	}
	if !x.visible(id, may) {
		return Note{}, fmt.Errorf("alert %d: %w", id, ErrNotFound)
	}
	n := Note{Alert: id, User: user, Time: x.clock().UTC().Truncate(time.Microsecond), Text: text, Tags: Tags(text)}
	if err := x.store.AddNote(ctx, &n); err != nil {
		return Note{}, err
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	x.note(n)
	return n, nil
}

// Notes returns the notes of alert id, which may must allow.
func (x *Index) Notes(ctx context.Context, id uint64, may func(cid, group uint32) bool) ([]Note, error) {
	if !x.visible(id, may) {
		return nil, fmt.Errorf("alert %d: %w", id, ErrNotFound)
	}
	return x.store.Notes(ctx, id)
}

// visible reports whether the index holds alert id and may allows its
// partition.
func (x *Index) visible(id uint64, may func(cid, group uint32) bool) bool {
	x.mu.RLock()
	defer x.mu.RUnlock()
	i, ok := x.byID[id]
	return ok && may(x.entries[i].cid, x.entries[i].group)
}

// put inserts or replaces the entry of a, keeping its actions and notes;
// the caller holds x.mu.
func (x *Index) put(a alert.Alert, d description) {
	e := entry{
		id: a.ID, policy: a.Policy, cid: a.CID, group: a.Group(), cidName: a.CIDName, severity: int32(a.Severity),
		earliest: a.Earliest.UnixMilli(), latest: a.Latest.UnixMilli(),
		object: d.object, reason: d.reason, sources: d.sources, search: d.search,
		status: statusNone,
	}
	if !a.Ended.IsZero() {
		e.ended = a.Ended.UnixMilli()
	}
	e.val[facetSeverity] = x.dicts[facetSeverity].id(itoa(a.Severity))
	e.val[facetType] = x.dicts[facetType].id(a.Type)
	e.val[facetCID] = x.dicts[facetCID].id(utoa(a.CID))
	for _, bl := range d.blacklists {
		e.blacklists = append(e.blacklists, x.dicts[facetBlacklist].id(bl))
	}
	if i, ok := x.byID[a.ID]; ok {
		old := &x.entries[i]
		e.status, e.notes, e.tags = old.status, old.notes, old.tags
		e.val[facetStatus] = uint32(e.status)
		x.entries[i] = e
		return
	}
	e.val[facetStatus] = uint32(e.status)
	if n := len(x.entries); n > 0 && x.entries[n-1].id > a.ID {
		// Out of order (never from the engine, whose IDs grow): keep
		// entries sorted by ID.
		x.entries = append(x.entries, entry{})
		pos := n
		for pos > 0 && x.entries[pos-1].id > a.ID {
			pos--
		}
		copy(x.entries[pos+1:], x.entries[pos:n])
		x.entries[pos] = e
		x.reindex(pos)
	} else {
		x.byID[a.ID] = int32(len(x.entries))
		x.entries = append(x.entries, e)
	}
	x.statusOf(a.ID)
	if len(x.entries) > x.max {
		x.evict()
	}
}

// reindex updates byID for the entries from position from on.
func (x *Index) reindex(from int) {
	for i := from; i < len(x.entries); i++ {
		x.byID[x.entries[i].id] = int32(i)
	}
}

// evict removes the oldest ended alerts, a tenth of the maximum, so that
// evictions are rare; open alerts stay. The caller holds x.mu.
func (x *Index) evict() {
	drop := max(x.max/10, 1)
	kept := x.entries[:0]
	for _, e := range x.entries {
		if drop > 0 && e.ended != 0 {
			drop--
			delete(x.byID, e.id)
			delete(x.acts, e.id)
			continue
		}
		kept = append(kept, e)
	}
	clear(x.entries[len(kept):])
	x.entries = kept
	x.reindex(0)
}

// setAction records the state of an action and updates its alert's
// status; the caller holds x.mu.
func (x *Index) setAction(alertID, id uint64, state action.State) {
	list := x.acts[alertID]
	found := false
	for i := range list {
		if list[i].id == id {
			list[i].state, found = state, true
		}
	}
	if !found {
		list = append(list, actState{id: id, state: state})
	}
	x.acts[alertID] = list
	x.statusOf(alertID)
}

// statusOf sets the action status of alert id from its actions: waiting
// when one waits for approval, else running when one is in progress, else
// ended when it has any, else none. The caller holds x.mu.
func (x *Index) statusOf(id uint64) {
	i, ok := x.byID[id]
	if !ok {
		return
	}
	status := statusNone
	for _, a := range x.acts[id] {
		switch {
		case a.state == action.StateWaiting:
			status = statusWaiting
		case a.state == action.StateInProgress && status != statusWaiting:
			status = statusRunning
		case status == statusNone:
			status = statusEnded
		}
	}
	x.entries[i].status = status
	x.entries[i].val[facetStatus] = uint32(status)
}

// note adds n to its alert's note count and tags; the caller holds x.mu.
func (x *Index) note(n Note) {
	i, ok := x.byID[n.Alert]
	if !ok {
		return
	}
	e := &x.entries[i]
	e.notes++
	for _, tag := range n.Tags {
		id := x.dicts[facetNote].id(tag)
		if !containsID(e.tags, id) {
			e.tags = append(e.tags, id)
		}
	}
}
