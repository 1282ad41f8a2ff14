package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/flowsentry/flowsentry/alert"
)

var _ alert.Store = (*Store)(nil)

// DefaultAlertLimit is the number of alerts Alerts returns when the query
// sets no limit.
const DefaultAlertLimit = 10000

// alertColumns are the columns of an alert, in the order scanAlert reads
// and saveAlert writes them.
const alertColumns = `id, policy, key, type, cid, cid_name, severity,
	earliest, latest, last_call, ended, fields, cur, avg, peak, samples, uniq`

// SaveAlerts saves list in one transaction, all or nothing: an alert whose
// ID is 0 first gets the next IDs of the alert sequence, in list order, in
// the same transaction, so an ID is taken only when its alert is saved and
// never handed out twice. On failure the IDs of list are as they were.
func (s *Store) SaveAlerts(ctx context.Context, list []*alert.Alert) (err error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: save alerts: %w", err)
	}
	var assigned []*alert.Alert
	defer func() {
		if err != nil {
			_ = tx.Rollback()
			for _, a := range assigned {
				a.ID = 0
			}
		}
	}()
	var fresh int64
	for _, a := range list {
		if a.ID == 0 {
			fresh++
		}
	}
	if fresh > 0 {
		var first int64
		if err = tx.QueryRowContext(ctx, `UPDATE sequences SET next = next + ? WHERE name = 'alert' RETURNING next - ?`,
			fresh, fresh).Scan(&first); err != nil {
			return fmt.Errorf("store: save alerts: new IDs: %w", err)
		}
		for _, a := range list {
			if a.ID == 0 {
				a.ID = uint64(first)
				first++
				assigned = append(assigned, a)
			}
		}
	}
	for _, a := range list {
		if err = saveAlert(ctx, tx, a); err != nil {
			return err
		}
	}
	if err = tx.Commit(); err != nil {
		return fmt.Errorf("store: save alerts: commit: %w", err)
	}
	return nil
}

// saveAlert upserts a through q (the write connection or a transaction).
func saveAlert(ctx context.Context, q querier, a *alert.Alert) error {
	fields, err := json.Marshal(a.Fields)
	if err != nil {
		return fmt.Errorf("store: save alert %d: fields: %w", a.ID, err)
	}
	var vals [3][]byte
	for i, v := range []*alert.Values{&a.Cur, &a.Avg, &a.Peak} {
		if vals[i], err = json.Marshal(v); err != nil {
			return fmt.Errorf("store: save alert %d: %s values: %w", a.ID, valueSets[i], err)
		}
	}
	_, err = q.ExecContext(ctx, saveAlertSQL,
		int64(a.ID), int64(a.Policy), a.Key, a.Type, int64(a.CID), a.CIDName, a.Severity,
		micros(a.Earliest), micros(a.Latest), micros(a.LastCall), micros(a.Ended),
		string(fields), string(vals[0]), string(vals[1]), string(vals[2]),
		int64(a.Samples), a.Uniq)
	if err != nil {
		return fmt.Errorf("store: save alert %d: %w", a.ID, err)
	}
	return nil
}

// valueSets names Cur, Avg and Peak in errors.
var valueSets = [3]string{"current", "average", "peak"}

// saveAlertSQL is an upsert of every column.
const saveAlertSQL = `INSERT INTO alerts (` + alertColumns + `)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
	ON CONFLICT (id) DO UPDATE SET
		policy = excluded.policy, key = excluded.key, type = excluded.type,
		cid = excluded.cid, cid_name = excluded.cid_name, severity = excluded.severity,
		earliest = excluded.earliest, latest = excluded.latest,
		last_call = excluded.last_call, ended = excluded.ended,
		fields = excluded.fields, cur = excluded.cur, avg = excluded.avg,
		peak = excluded.peak, samples = excluded.samples, uniq = excluded.uniq`

// OpenAlerts returns the alerts not ended, oldest first: what the engine
// resumes after a restart.
func (s *Store) OpenAlerts(ctx context.Context) ([]alert.Alert, error) {
	list, err := s.queryAlerts(ctx, `SELECT `+alertColumns+` FROM alerts WHERE ended = 0 ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("store: open alerts: %w", err)
	}
	return list, nil
}

// Alerts returns the alerts that match q, newest (latest Earliest) first.
// An empty but non-nil q.CIDs or q.IDs matches nothing.
func (s *Store) Alerts(ctx context.Context, q alert.Query) ([]alert.Alert, error) {
	limit := q.Limit
	switch {
	case limit < 0:
		return nil, fmt.Errorf("store: alerts: the limit %d is negative: use 0 for the default of %d", limit, DefaultAlertLimit)
	case limit == 0:
		limit = DefaultAlertLimit
	}
	var where []string
	var args []any
	if !q.CreatedSince.IsZero() {
		where = append(where, `earliest >= ?`)
		args = append(args, q.CreatedSince.UnixMicro())
	}
	if !q.ActiveSince.IsZero() {
		where = append(where, `(ended = 0 OR latest >= ?)`)
		args = append(args, q.ActiveSince.UnixMicro())
	}
	if q.CIDs != nil {
		cids, err := json.Marshal(q.CIDs)
		if err != nil {
			return nil, fmt.Errorf("store: alerts: %w", err)
		}
		where = append(where, `cid IN (SELECT value FROM json_each(?))`)
		args = append(args, string(cids))
	}
	if q.IDs != nil {
		ids := make([]int64, len(q.IDs))
		for i, id := range q.IDs {
			ids[i] = int64(id) // as stored
		}
		js, err := json.Marshal(ids)
		if err != nil {
			return nil, fmt.Errorf("store: alerts: %w", err)
		}
		where = append(where, `id IN (SELECT value FROM json_each(?))`)
		args = append(args, string(js))
	}
	query := `SELECT ` + alertColumns + ` FROM alerts`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, ` AND `)
	}
	query += ` ORDER BY earliest DESC, id DESC LIMIT ?`
	args = append(args, limit)
	list, err := s.queryAlerts(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("store: alerts: %w", err)
	}
	return list, nil
}

// queryAlerts runs a SELECT of alertColumns on the read pool.
func (s *Store) queryAlerts(ctx context.Context, query string, args ...any) ([]alert.Alert, error) {
	rows, err := s.r.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var list []alert.Alert
	for rows.Next() {
		a, err := scanAlert(rows)
		if err != nil {
			return nil, err
		}
		list = append(list, a)
	}
	return list, rows.Err()
}

// scanAlert reads one row of alertColumns.
func scanAlert(rows *sql.Rows) (alert.Alert, error) {
	var a alert.Alert
	var id, policy, cid, samples, earliest, latest, lastCall, ended int64
	var fields, cur, avg, peak string
	err := rows.Scan(&id, &policy, &a.Key, &a.Type, &cid, &a.CIDName, &a.Severity,
		&earliest, &latest, &lastCall, &ended, &fields, &cur, &avg, &peak, &samples, &a.Uniq)
	if err != nil {
		return a, err
	}
	a.ID, a.Policy, a.CID, a.Samples = uint64(id), uint64(policy), uint32(cid), uint64(samples)
	a.Earliest, a.Latest, a.LastCall, a.Ended = fromMicros(earliest), fromMicros(latest), fromMicros(lastCall), fromMicros(ended)
	for _, c := range []struct {
		name string
		js   string
		dst  any
	}{
		{"fields", fields, &a.Fields},
		{valueSets[0] + " values", cur, &a.Cur},
		{valueSets[1] + " values", avg, &a.Avg},
		{valueSets[2] + " values", peak, &a.Peak},
	} {
		if err := json.Unmarshal([]byte(c.js), c.dst); err != nil {
			return a, fmt.Errorf("alert %d: %s: %w", a.ID, c.name, err)
		}
	}
	return a, nil
}

// EachAlert calls fn with every stored alert, in ID order, stopping at
// fn's first error: the bulk read of the alert index, which holds one
// alert at a time rather than the whole table.
func (s *Store) EachAlert(ctx context.Context, fn func(alert.Alert) error) error {
	rows, err := s.r.QueryContext(ctx, `SELECT `+alertColumns+` FROM alerts ORDER BY id`)
	if err != nil {
		return fmt.Errorf("store: read alerts: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		a, err := scanAlert(rows)
		if err != nil {
			return fmt.Errorf("store: read alerts: %w", err)
		}
		if err := fn(a); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store: read alerts: %w", err)
	}
	return nil
}

// EachActionState calls fn with the alert, ID and state of every stored
// action, stopping at fn's first error: the alert index's action status.
func (s *Store) EachActionState(ctx context.Context, fn func(alertID, actionID uint64, state string) error) error {
	rows, err := s.r.QueryContext(ctx, `SELECT alert, id, state FROM actions ORDER BY id`)
	if err != nil {
		return fmt.Errorf("store: read action states: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var alertID, id int64
		var state string
		if err := rows.Scan(&alertID, &id, &state); err != nil {
			return fmt.Errorf("store: read action states: %w", err)
		}
		if err := fn(uint64(alertID), uint64(id), state); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store: read action states: %w", err)
	}
	return nil
}
