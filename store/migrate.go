package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
)

// migrations is the schema's history: migrations[i] takes the database from
// version i to version i+1, in one transaction. Append, never edit: a
// released step has run on databases in the field.
var migrations = [][]string{
	{ // 1: initial schema
		`CREATE TABLE sequences (
			name TEXT PRIMARY KEY,
			next INTEGER NOT NULL
		) STRICT`,
		`INSERT INTO sequences (name, next) VALUES
			('alert', 1), ('action', 1), ('instance', 1)`,
		`CREATE TABLE users (
			name TEXT PRIMARY KEY,
			hash BLOB NOT NULL,
			role TEXT NOT NULL CHECK (role IN ('admin', 'manager', 'viewer')),
			cids TEXT NOT NULL
		) STRICT`,
		`CREATE TABLE alerts (
			id INTEGER PRIMARY KEY,
			policy INTEGER NOT NULL,
			key TEXT NOT NULL,
			type TEXT NOT NULL,
			cid INTEGER NOT NULL,
			cid_name TEXT NOT NULL,
			severity INTEGER NOT NULL,
			earliest INTEGER NOT NULL,
			latest INTEGER NOT NULL,
			last_call INTEGER NOT NULL,
			ended INTEGER NOT NULL,
			fields TEXT NOT NULL,
			cur TEXT NOT NULL,
			avg TEXT NOT NULL,
			peak TEXT NOT NULL,
			samples INTEGER NOT NULL,
			uniq INTEGER NOT NULL
		) STRICT`,
		`CREATE INDEX alerts_open ON alerts (id) WHERE ended = 0`,
		`CREATE INDEX alerts_earliest ON alerts (earliest)`,
		`CREATE INDEX alerts_latest ON alerts (latest)`,
		`CREATE TABLE actions (
			id INTEGER PRIMARY KEY,
			alert INTEGER NOT NULL REFERENCES alerts (id),
			policy INTEGER NOT NULL,
			instance INTEGER NOT NULL,
			plugin TEXT NOT NULL,
			state TEXT NOT NULL,
			created INTEGER NOT NULL,
			updated INTEGER NOT NULL,
			token TEXT NOT NULL,
			token_until INTEGER NOT NULL
		) STRICT`,
		`CREATE INDEX actions_alert ON actions (alert)`,
		`CREATE INDEX actions_open ON actions (id)
			WHERE state IN ('waiting_approval', 'in_progress')`,
		`CREATE TABLE calls (
			seq INTEGER PRIMARY KEY,
			action INTEGER NOT NULL REFERENCES actions (id),
			op TEXT NOT NULL,
			start INTEGER NOT NULL,
			duration INTEGER NOT NULL,
			exit_code INTEGER NOT NULL,
			err TEXT NOT NULL,
			output BLOB NOT NULL CHECK (length(output) <= 65536),
			truncated INTEGER NOT NULL
		) STRICT`,
		`CREATE INDEX calls_action ON calls (action, seq)`,
		`CREATE TABLE annotations (
			seq INTEGER PRIMARY KEY,
			alert INTEGER NOT NULL REFERENCES alerts (id),
			action INTEGER NOT NULL REFERENCES actions (id),
			key TEXT NOT NULL,
			value INTEGER NOT NULL,
			time INTEGER NOT NULL
		) STRICT`,
		`CREATE INDEX annotations_alert ON annotations (alert, seq)`,
		`CREATE INDEX annotations_action ON annotations (action)`,
		`CREATE TABLE instances (
			id INTEGER PRIMARY KEY,
			cid INTEGER NOT NULL,
			plugin TEXT NOT NULL,
			name TEXT NOT NULL,
			vals TEXT NOT NULL
		) STRICT`,
		`CREATE TABLE policies (
			id INTEGER PRIMARY KEY,
			doc TEXT NOT NULL
		) STRICT`,
		`CREATE TABLE baselines (
			policy INTEGER NOT NULL,
			kind INTEGER NOT NULL,
			grp INTEGER NOT NULL,
			exporter BLOB NOT NULL,
			ifindex INTEGER NOT NULL,
			ip BLOB NOT NULL,
			proto INTEGER NOT NULL,
			port INTEGER NOT NULL,
			value REAL NOT NULL,
			samples INTEGER NOT NULL,
			updated INTEGER NOT NULL,
			PRIMARY KEY (policy, kind, grp, exporter, ifindex, ip, proto, port)
		) STRICT, WITHOUT ROWID`,
	},
	{ // 2: a sequence for policy IDs, which the policy manager used to
		// take as the highest stored ID + 1, so that a deleted policy's ID
		// came back after a restart. The new sequence starts above every
		// policy ID still referenced, by a policy, an alert or an action;
		// every sequence is raised above its table's IDs, in case a row
		// was written by hand.
		`INSERT INTO sequences (name, next)
			SELECT 'policy', coalesce(max(id), 0) + 1 FROM (
				SELECT id FROM policies
				UNION ALL SELECT policy FROM alerts
				UNION ALL SELECT policy FROM actions)`,
		`UPDATE sequences SET next = max(next, (SELECT coalesce(max(id), 0) + 1 FROM alerts)) WHERE name = 'alert'`,
		`UPDATE sequences SET next = max(next, (SELECT coalesce(max(id), 0) + 1 FROM actions)) WHERE name = 'action'`,
		`UPDATE sequences SET next = max(next, (SELECT coalesce(max(id), 0) + 1 FROM instances)) WHERE name = 'instance'`,
	},
	migrationLearnedServices, // 3: see learned.go
	migrationAuth,            // 4: see sessions.go
	migrationHistory,         // 5: see history.go
	{ // 6: where a plugin instance comes from: "config" (the configuration
		// file, read-only in the API), "api", or "" for one stored before,
		// which the next start assigns (see plugin.Instances.Load).
		`ALTER TABLE instances ADD COLUMN source TEXT NOT NULL DEFAULT ''`,
	},
	migrationNotes, // 7: see notes.go
}

// schemaVersion is the schema version this binary writes.
func schemaVersion() int { return len(migrations) }

// migrate brings the database to schemaVersion(), one migration per
// transaction, so that a failure leaves it at the last version reached.
// The version is re-read inside each (immediate, so exclusive for writes)
// transaction, which makes two processes opening a new database at once
// safe.
func (s *Store) migrate(ctx context.Context) error {
	for {
		done, err := s.migrateOne(ctx)
		if err != nil || done {
			return err
		}
	}
}

// migrateOne applies the next migration, or reports done when there is
// none.
func (s *Store) migrateOne(ctx context.Context) (done bool, err error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("store: migrate %s: %w", s.path, err)
	}
	defer tx.Rollback()
	if err := s.ours(ctx, tx); err != nil {
		return false, err
	}
	const create = `CREATE TABLE IF NOT EXISTS schema_version (
		version INTEGER PRIMARY KEY,
		applied INTEGER NOT NULL
	) STRICT`
	if _, err := tx.ExecContext(ctx, create); err != nil {
		return false, fmt.Errorf("store: migrate %s: create schema_version: %w", s.path, err)
	}
	var cur int
	err = tx.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM schema_version`).Scan(&cur)
	if err != nil {
		return false, fmt.Errorf("store: migrate %s: read schema version: %w", s.path, err)
	}
	known := schemaVersion()
	switch {
	case cur > known:
		return false, fmt.Errorf("store: %s has schema version %d, newer than version %d that this flowsentry knows: "+
			"upgrade flowsentry to a release at least as new as the one that wrote it, or use another data folder", s.path, cur, known)
	case cur == known:
		return true, tx.Commit()
	}
	next := cur + 1
	for i, step := range migrations[cur] {
		if _, err := tx.ExecContext(ctx, step); err != nil {
			return false, fmt.Errorf("store: migrate %s to version %d, step %d: %w", s.path, next, i+1, err)
		}
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO schema_version (version, applied) VALUES (?, ?)`,
		next, time.Now().UnixMicro())
	if err != nil {
		return false, fmt.Errorf("store: migrate %s to version %d: %w", s.path, next, err)
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("store: migrate %s to version %d: commit: %w", s.path, next, err)
	}
	s.log.Info("store schema migrated", "path", s.path, "from", cur, "to", next)
	return false, nil
}

// ours refuses a SQLite database that has tables but no schema_version
// table: another program's database, which migrating would mix with ours.
// A database without tables is a new one.
func (s *Store) ours(ctx context.Context, tx *sql.Tx) error {
	rows, err := tx.QueryContext(ctx, `SELECT name FROM sqlite_schema
		WHERE type = 'table' AND name NOT LIKE 'sqlite\_%' ESCAPE '\' ORDER BY name`)
	if err != nil {
		return fmt.Errorf("store: migrate %s: list tables: %w", s.path, err)
	}
	defer rows.Close()
	var tables []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return fmt.Errorf("store: migrate %s: list tables: %w", s.path, err)
		}
		if name == "schema_version" {
			return nil
		}
		tables = append(tables, name)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store: migrate %s: list tables: %w", s.path, err)
	}
	if len(tables) > 0 {
		return fmt.Errorf("store: refusing to open %s: it is a SQLite database but not flowsentry's "+
			"(it has the tables %s and no schema_version table); %s", s.path, strings.Join(tables, ", "), refuseFix)
	}
	return nil
}

// querier is what *sql.DB and *sql.Tx share, so helpers run either in a
// transaction or on their own.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// nextID takes the next value of the named sequence. Run on s.w outside a
// transaction it commits at once, so an ID handed out is never handed out
// again, even if the process dies before using it.
func nextID(ctx context.Context, q querier, name string) (uint64, error) {
	var id int64
	err := q.QueryRowContext(ctx,
		`UPDATE sequences SET next = next + 1 WHERE name = ? RETURNING next - 1`, name).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("store: next %s ID: %w", name, err)
	}
	return uint64(id), nil
}

// reserveID makes sure the named sequence never hands out id, which the
// caller chose itself (an instance ID written in the configuration).
func reserveID(ctx context.Context, q querier, name string, id uint64) error {
	_, err := q.ExecContext(ctx,
		`UPDATE sequences SET next = max(next, ? + 1) WHERE name = ?`, int64(id), name)
	if err != nil {
		return fmt.Errorf("store: reserve %s ID %d: %w", name, id, err)
	}
	return nil
}
