package store

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/flowsentry/flowsentry/action"
	"github.com/flowsentry/flowsentry/alert"
)

var _ action.Store = (*Store)(nil)

// MaxCallOutput is the most output kept per plugin call; AddCall keeps
// the first MaxCallOutput bytes of longer output and marks it truncated.
const MaxCallOutput = 64 << 10

// actionColumns are the columns of an action, in the order scanAction
// reads and SaveAction writes them.
const actionColumns = `id, alert, policy, instance, plugin, state, created, updated, token, token_until`

// NextActionID hands out a new action ID (AID). It is committed before it
// is returned: no ID is ever handed out twice, even across a crash.
func (s *Store) NextActionID(ctx context.Context) (uint64, error) {
	return nextID(ctx, s.w, "action")
}

// SaveAction inserts or replaces the whole action a.ID. Its alert must
// have been saved.
func (s *Store) SaveAction(ctx context.Context, a *action.Action) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO actions (`+actionColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET
			alert = excluded.alert, policy = excluded.policy, instance = excluded.instance,
			plugin = excluded.plugin, state = excluded.state, created = excluded.created,
			updated = excluded.updated, token = excluded.token, token_until = excluded.token_until`,
		int64(a.ID), int64(a.Alert), int64(a.Policy), int64(a.Instance), a.Plugin, string(a.State),
		micros(a.Created), micros(a.Updated), a.Token, micros(a.TokenUntil))
	if err != nil {
		return fmt.Errorf("store: save action %d of alert %d: %w", a.ID, a.Alert, err)
	}
	return nil
}

// Action returns one action; an unknown ID gives an error wrapping
// action.ErrNotFound.
func (s *Store) Action(ctx context.Context, id uint64) (action.Action, error) {
	list, err := s.queryActions(ctx, `SELECT `+actionColumns+` FROM actions WHERE id = ?`, int64(id))
	switch {
	case err != nil:
		return action.Action{}, fmt.Errorf("store: action %d: %w", id, err)
	case len(list) == 0:
		return action.Action{}, fmt.Errorf("store: action %d: %w", id, action.ErrNotFound)
	}
	return list[0], nil
}

// Actions returns the actions of an alert by ID.
func (s *Store) Actions(ctx context.Context, alertID uint64) ([]action.Action, error) {
	list, err := s.queryActions(ctx,
		`SELECT `+actionColumns+` FROM actions WHERE alert = ? ORDER BY id`, int64(alertID))
	if err != nil {
		return nil, fmt.Errorf("store: actions of alert %d: %w", alertID, err)
	}
	return list, nil
}

// OpenActions returns the actions waiting for approval or in progress, by
// ID: what the dispatcher resumes after a restart.
func (s *Store) OpenActions(ctx context.Context) ([]action.Action, error) {
	list, err := s.queryActions(ctx, `SELECT `+actionColumns+` FROM actions
		WHERE state IN ('waiting_approval', 'in_progress') ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("store: open actions: %w", err)
	}
	return list, nil
}

// queryActions runs a SELECT of actionColumns on the read pool.
func (s *Store) queryActions(ctx context.Context, query string, args ...any) ([]action.Action, error) {
	rows, err := s.r.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var list []action.Action
	for rows.Next() {
		var a action.Action
		if err := scanAction(rows, &a); err != nil {
			return nil, err
		}
		list = append(list, a)
	}
	return list, rows.Err()
}

// scanAction reads the actionColumns of a row into a, then the columns
// after them into more.
func scanAction(rows *sql.Rows, a *action.Action, more ...any) error {
	var id, alertID, policy, instance, created, updated, until int64
	err := rows.Scan(append([]any{&id, &alertID, &policy, &instance, &a.Plugin, &a.State,
		&created, &updated, &a.Token, &until}, more...)...)
	if err != nil {
		return err
	}
	a.ID, a.Alert, a.Policy, a.Instance = uint64(id), uint64(alertID), uint64(policy), uint64(instance)
	a.Created, a.Updated, a.TokenUntil = fromMicros(created), fromMicros(updated), fromMicros(until)
	return nil
}

// ListActions returns the page of actions q selects, with their alert's
// type and partition and their latest call, waiting for approval first,
// then in progress, then ended or rejected, newest first inside each; and
// the counts per state. q is valid (action.Dispatcher.List checks it).
func (s *Store) ListActions(ctx context.Context, q action.Query) (action.Page, error) {
	// The filters of the counts: every one but the states.
	var where []string
	var args []any
	if q.Alert != 0 {
		where, args = append(where, "a.alert = ?"), append(args, int64(q.Alert))
	}
	if !q.All {
		where = append(where, "al.cid IN ("+placeholders(len(q.CIDs))+")")
		for _, cid := range q.CIDs {
			args = append(args, int64(cid))
		}
		if len(q.Groups) > 0 {
			where = append(where, alertGroupSQL("al")+" IN ("+placeholders(len(q.Groups))+")")
			for _, g := range q.Groups {
				args = append(args, int64(g))
			}
		}
	}
	from := ` FROM actions a JOIN alerts al ON al.id = a.alert`
	filter := func(w []string) string {
		if len(w) == 0 {
			return ""
		}
		return " WHERE " + strings.Join(w, " AND ")
	}
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true}) // counts and page of one snapshot
	if err != nil {
		return action.Page{}, fmt.Errorf("store: list actions: %w", err)
	}
	defer tx.Rollback()
	page := action.Page{Counts: map[action.State]int{}}
	rows, err := tx.QueryContext(ctx, `SELECT a.state, count(*)`+from+filter(where)+` GROUP BY a.state`, args...)
	if err != nil {
		return action.Page{}, fmt.Errorf("store: list actions: count: %w", err)
	}
	for rows.Next() {
		var st action.State
		var n int
		if err := rows.Scan(&st, &n); err != nil {
			rows.Close()
			return action.Page{}, fmt.Errorf("store: list actions: count: %w", err)
		}
		page.Counts[st] = n
		if len(q.States) == 0 || slices.Contains(q.States, st) {
			page.Total += n
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return action.Page{}, fmt.Errorf("store: list actions: count: %w", err)
	}
	if len(q.States) > 0 {
		where = append(where, "a.state IN ("+placeholders(len(q.States))+")")
		for _, st := range q.States {
			args = append(args, string(st))
		}
	}
	const lastCall = `(SELECT c.%s FROM calls c WHERE c.action = a.id ORDER BY c.seq DESC LIMIT 1)`
	query := `SELECT a.` + strings.ReplaceAll(actionColumns, ", ", ", a.") + `, al.type, al.cid, ` +
		fmt.Sprintf(lastCall, "start") + `, ` + fmt.Sprintf(lastCall, "exit_code") + from + filter(where) +
		` ORDER BY CASE a.state WHEN 'waiting_approval' THEN 0 WHEN 'in_progress' THEN 1 ELSE 2 END, a.id DESC
		LIMIT ? OFFSET ?`
	rows, err = tx.QueryContext(ctx, query, append(args, q.Limit, q.Offset)...)
	if err != nil {
		return action.Page{}, fmt.Errorf("store: list actions: %w", err)
	}
	defer rows.Close()
	page.Actions = []action.Listed{}
	for rows.Next() {
		var l action.Listed
		var cid int64
		var start, exit sql.NullInt64
		if err := scanAction(rows, &l.Action, &l.AlertType, &cid, &start, &exit); err != nil {
			return action.Page{}, fmt.Errorf("store: list actions: %w", err)
		}
		l.CID = uint32(cid)
		if start.Valid {
			t, code := fromMicros(start.Int64), int(exit.Int64)
			l.LastCall, l.LastExitCode = &t, &code
		}
		page.Actions = append(page.Actions, l)
	}
	if err := rows.Err(); err != nil {
		return action.Page{}, fmt.Errorf("store: list actions: %w", err)
	}
	return page, nil
}

// placeholders returns n comma-separated "?"; for n = 0 a NULL, which
// matches nothing in IN (...).
func placeholders(n int) string {
	if n == 0 {
		return "NULL"
	}
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

// AddCall appends a plugin call to its action's calls. Output beyond
// MaxCallOutput bytes is dropped and the stored call marked truncated; c
// is not modified.
func (s *Store) AddCall(ctx context.Context, c *action.Call) error {
	out, truncated := c.Output, c.Truncated
	if len(out) > MaxCallOutput {
		out, truncated = out[:MaxCallOutput], true
	}
	if out == nil {
		out = []byte{} // NOT NULL
	}
	_, err := s.w.ExecContext(ctx, `INSERT INTO calls
		(action, op, start, duration, exit_code, err, output, truncated) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		int64(c.Action), string(c.Op), micros(c.Start), int64(c.Duration), c.ExitCode, c.Err, out, truncated)
	if err != nil {
		return fmt.Errorf("store: add %s call of action %d: %w", c.Op, c.Action, err)
	}
	return nil
}

// Calls returns the calls of an action in the order they were added.
func (s *Store) Calls(ctx context.Context, actionID uint64) ([]action.Call, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT op, start, duration, exit_code, err, output, truncated
		FROM calls WHERE action = ? ORDER BY seq`, int64(actionID))
	if err != nil {
		return nil, fmt.Errorf("store: calls of action %d: %w", actionID, err)
	}
	defer rows.Close()
	var list []action.Call
	for rows.Next() {
		c := action.Call{Action: actionID}
		var op string
		var start, duration int64
		if err := rows.Scan(&op, &start, &duration, &c.ExitCode, &c.Err, &c.Output, &c.Truncated); err != nil {
			return nil, fmt.Errorf("store: calls of action %d: %w", actionID, err)
		}
		c.Op, c.Start, c.Duration = alert.Op(op), fromMicros(start), time.Duration(duration)
		list = append(list, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: calls of action %d: %w", actionID, err)
	}
	return list, nil
}
