package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// AuditEntry is one line of the audit log: a change made through the API,
// a login or a failed login. It never holds a password or a token.
type AuditEntry struct {
	// Seq numbers the entries in the order they were written.
	Seq uint64 `json:"seq"`
	// Time is when the request was answered.
	Time time.Time `json:"time"`
	// User is the user acting, or the name tried by a failed login.
	User string `json:"user"`
	// Addr is the client's IP address.
	Addr string `json:"addr"`
	// Method, Path and Status are those of the HTTP request.
	Method string `json:"method"`
	Path   string `json:"path"`
	Status int    `json:"status"`
	// Summary describes the object changed or the event.
	Summary string `json:"summary"`
}

// AddAudit appends an entry; its Seq is ignored.
func (s *Store) AddAudit(ctx context.Context, e AuditEntry) error {
	_, err := s.w.ExecContext(ctx,
		`INSERT INTO audit (time, user, addr, method, path, status, summary) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		micros(e.Time), e.User, e.Addr, e.Method, e.Path, e.Status, e.Summary)
	if err != nil {
		return fmt.Errorf("store: add audit entry: %w", err)
	}
	return nil
}

// AuditQuery selects audit entries, newest first.
type AuditQuery struct {
	// Before keeps the entries with a Seq below it; 0 starts at the
	// newest.
	Before uint64
	// Limit is the most entries returned; it must be positive.
	Limit int
	// Users keeps the entries of these users; nil keeps all.
	Users []string
}

// Audit returns the entries q selects, newest first.
func (s *Store) Audit(ctx context.Context, q AuditQuery) ([]AuditEntry, error) {
	where, args := `WHERE seq < ?`, []any{int64(q.Before)}
	if q.Before == 0 {
		args[0] = int64(1) << 62
	}
	if q.Users != nil {
		where += ` AND user IN (SELECT value FROM json_each(?))`
		args = append(args, jsonStrings(q.Users))
	}
	rows, err := s.r.QueryContext(ctx,
		`SELECT seq, time, user, addr, method, path, status, summary FROM audit `+where+` ORDER BY seq DESC LIMIT ?`,
		append(args, q.Limit)...)
	if err != nil {
		return nil, fmt.Errorf("store: audit: %w", err)
	}
	defer rows.Close()
	out := []AuditEntry{}
	for rows.Next() {
		var e AuditEntry
		var seq, t int64
		if err := rows.Scan(&seq, &t, &e.User, &e.Addr, &e.Method, &e.Path, &e.Status, &e.Summary); err != nil {
			return nil, fmt.Errorf("store: audit: %w", err)
		}
		e.Seq, e.Time = uint64(seq), fromMicros(t)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: audit: %w", err)
	}
	return out, nil
}

// TrimAudit removes the entries older than before and all but the newest
// keep entries, and returns how many it removed.
func (s *Store) TrimAudit(ctx context.Context, before time.Time, keep int) (int64, error) {
	res, err := s.w.ExecContext(ctx,
		`DELETE FROM audit WHERE time < ? OR seq <= (SELECT coalesce(max(seq), 0) - ? FROM audit)`,
		micros(before), keep)
	if err != nil {
		return 0, fmt.Errorf("store: trim audit log: %w", err)
	}
	return res.RowsAffected()
}

// jsonStrings encodes names as a JSON array for json_each.
func jsonStrings(names []string) string {
	b, _ := json.Marshal(names) // strings always encode
	return string(b)
}
