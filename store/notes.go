package store

import (
	"context"
	"fmt"
	"strings"

	"github.com/flowsentry/flowsentry/alertindex"
)

var _ alertindex.Store = (*Store)(nil)

// migrationNotes adds the notes users write on alerts, and the sequence of
// their IDs.
var migrationNotes = []string{
	`CREATE TABLE notes (
		id INTEGER PRIMARY KEY,
		alert INTEGER NOT NULL REFERENCES alerts (id),
		user TEXT NOT NULL,
		time INTEGER NOT NULL,
		text TEXT NOT NULL
	) STRICT`,
	`CREATE INDEX notes_alert ON notes (alert)`,
	`INSERT INTO sequences (name, next) VALUES ('note', 1)`,
}

// AddNote stores n with a new ID, which it sets; the alert must exist.
func (s *Store) AddNote(ctx context.Context, n *alertindex.Note) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: add note to alert %d: %w", n.Alert, err)
	}
	defer tx.Rollback()
	var exists bool
	if err := tx.QueryRowContext(ctx, `SELECT count(*) > 0 FROM alerts WHERE id = ?`, int64(n.Alert)).Scan(&exists); err != nil {
		return fmt.Errorf("store: add note to alert %d: %w", n.Alert, err)
	}
	if !exists {
		return fmt.Errorf("store: add note to alert %d: %w", n.Alert, alertindex.ErrNotFound)
	}
	id, err := nextID(ctx, tx, "note")
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO notes (id, alert, user, time, text) VALUES (?, ?, ?, ?, ?)`,
		int64(id), int64(n.Alert), n.User, micros(n.Time), n.Text)
	if err != nil {
		return fmt.Errorf("store: add note to alert %d: %w", n.Alert, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: add note to alert %d: commit: %w", n.Alert, err)
	}
	n.ID = id
	return nil
}

// Notes returns the notes of an alert, oldest first, with their tags.
func (s *Store) Notes(ctx context.Context, alertID uint64) ([]alertindex.Note, error) {
	list := []alertindex.Note{}
	err := s.eachNote(ctx, `WHERE alert = ?`, []any{int64(alertID)}, func(n alertindex.Note) error {
		list = append(list, n)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: notes of alert %d: %w", alertID, err)
	}
	return list, nil
}

// EachNote calls fn with every note, with its tags, in ID order, stopping
// at fn's first error.
func (s *Store) EachNote(ctx context.Context, fn func(alertindex.Note) error) error {
	if err := s.eachNote(ctx, "", nil, fn); err != nil {
		return fmt.Errorf("store: read notes: %w", err)
	}
	return nil
}

// eachNote calls fn with the notes the WHERE clause where selects.
func (s *Store) eachNote(ctx context.Context, where string, args []any, fn func(alertindex.Note) error) error {
	query := `SELECT id, alert, user, time, text FROM notes ` + where + ` ORDER BY id`
	rows, err := s.r.QueryContext(ctx, strings.TrimSpace(query), args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var n alertindex.Note
		var id, alertID, at int64
		if err := rows.Scan(&id, &alertID, &n.User, &at, &n.Text); err != nil {
			return err
		}
		n.ID, n.Alert, n.Time, n.Tags = uint64(id), uint64(alertID), fromMicros(at), alertindex.Tags(n.Text)
		if err := fn(n); err != nil {
			return err
		}
	}
	return rows.Err()
}
