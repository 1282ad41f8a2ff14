package store

import (
	"context"
	"fmt"

	"github.com/flowsentry/flowsentry/annotate"
)

var _ annotate.Store = (*Store)(nil)

// AddValues stores annotation values in one transaction: all or none. The
// alert and action of each must exist.
func (s *Store) AddValues(ctx context.Context, vals []annotate.Value) error {
	if len(vals) == 0 {
		return nil
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: add annotations: %w", err)
	}
	defer tx.Rollback()
	stmt, err := tx.PrepareContext(ctx,
		`INSERT INTO annotations (alert, action, key, value, time) VALUES (?, ?, ?, ?, ?)`)
	if err != nil {
		return fmt.Errorf("store: add annotations: %w", err)
	}
	defer stmt.Close()
	for _, v := range vals {
		// Values above math.MaxInt64 wrap to negative integers and back.
		_, err := stmt.ExecContext(ctx, int64(v.Alert), int64(v.Action), v.Key, int64(v.Value), micros(v.Time))
		if err != nil {
			return fmt.Errorf("store: add annotation %q of alert %d action %d: %w", v.Key, v.Alert, v.Action, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: add annotations: %w", err)
	}
	return nil
}

// Values returns the annotation values of an alert in the order they were
// added.
func (s *Store) Values(ctx context.Context, alertID uint64) ([]annotate.Value, error) {
	rows, err := s.r.QueryContext(ctx,
		`SELECT action, key, value, time FROM annotations WHERE alert = ? ORDER BY seq`, int64(alertID))
	if err != nil {
		return nil, fmt.Errorf("store: annotations of alert %d: %w", alertID, err)
	}
	defer rows.Close()
	var out []annotate.Value
	for rows.Next() {
		v := annotate.Value{Alert: alertID}
		var action, value, t int64
		if err := rows.Scan(&action, &v.Key, &value, &t); err != nil {
			return nil, fmt.Errorf("store: annotations of alert %d: %w", alertID, err)
		}
		v.Action, v.Value, v.Time = uint64(action), uint64(value), fromMicros(t)
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: annotations of alert %d: %w", alertID, err)
	}
	return out, nil
}
