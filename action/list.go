package action

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// MaxList is the most actions one List returns.
const MaxList = 1000

// Query selects the actions List returns.
type Query struct {
	// States keeps the actions in one of these states; empty keeps every
	// state.
	States []State
	// Alert keeps the actions of one alert; 0 keeps every alert's.
	Alert uint64
	// All keeps the actions of every partition (an administrator's
	// query); otherwise only those of alerts of CIDs are kept, none when
	// CIDs is empty.
	All  bool
	CIDs []uint32
	// Groups, when not empty, keeps only the actions of alerts about
	// these traffic groups (alert.Alert.Group): a user restricted to them.
	Groups []uint32
	// Limit is the most actions returned, 1 to MaxList; Offset skips the
	// first ones.
	Limit, Offset int
}

// Listed is an action of a List with what the list shows of its alert
// and its latest call.
type Listed struct {
	Action
	// AlertType is the alert's type (alert_type of the plugin contract).
	AlertType string `json:"alert_type"`
	// CID is the alert's partition.
	CID uint32 `json:"cid"`
	// LastCall is when the latest call started and LastExitCode its exit
	// status (-1 when killed or not started); both nil before the first
	// call.
	LastCall     *time.Time `json:"last_call"`
	LastExitCode *int       `json:"last_exit_code"`
}

// Page is the answer of List.
type Page struct {
	// Actions are those selected: waiting for approval first, then in
	// progress, then ended or rejected, newest first inside each.
	Actions []Listed
	// Counts are the actions per state that the query selects when its
	// States, Limit and Offset are left out: the badges of a list.
	Counts map[State]int
	// Total is how many actions the query selects without Limit and
	// Offset.
	Total int
}

// List returns a page of actions in their current state: those the
// dispatcher holds are shown as it holds them, which may be a step ahead
// of the store for the time of a save.
func (d *Dispatcher) List(ctx context.Context, q Query) (Page, error) {
	if q.Limit < 1 || q.Limit > MaxList || q.Offset < 0 {
		return Page{}, fmt.Errorf("action list: limit %d, offset %d: use a limit from 1 to %d and an offset from 0", q.Limit, q.Offset, MaxList)
	}
	page, err := d.deps.Store.ListActions(ctx, q)
	if err != nil {
		return Page{}, fmt.Errorf("action list: %w", err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for i := range page.Actions {
		if ac := d.acts[page.Actions[i].ID]; ac != nil {
			page.Actions[i].Action = ac.a
		}
	}
	return page, nil
}

// MarshalJSON writes Output as a string, the bytes that are not UTF-8
// replaced by U+FFFD: plugin output is text to read, which encoding/json
// would give as base64.
func (c Call) MarshalJSON() ([]byte, error) {
	type plain Call // without this method
	return json.Marshal(struct {
		plain
		Output string `json:"output"`
	}{plain(c), strings.ToValidUTF8(string(c.Output), "\uFFFD")})
}
