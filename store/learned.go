package store

import (
	"context"
	"fmt"

	"github.com/flowsentry/flowsentry/detect/newserver"
)

var _ newserver.Store = (*Store)(nil)

// migrationLearnedServices adds the state of the new_server and
// new_client detectors: the services and clients each policy learned
// (client empty for a service), and when each policy began learning on
// each traffic group.
var migrationLearnedServices = []string{
	`CREATE TABLE learned_services (
		policy INTEGER NOT NULL,
		server BLOB NOT NULL,
		proto INTEGER NOT NULL,
		port INTEGER NOT NULL,
		client BLOB NOT NULL,
		learned INTEGER NOT NULL,
		PRIMARY KEY (policy, server, proto, port, client)
	) STRICT, WITHOUT ROWID`,
	`CREATE TABLE learning_starts (
		policy INTEGER NOT NULL,
		grp INTEGER NOT NULL,
		since INTEGER NOT NULL,
		PRIMARY KEY (policy, grp)
	) STRICT, WITHOUT ROWID`,
}

// AddLearnedServices adds learned services, clients and learning starts
// in one transaction; those already stored are kept as they are.
func (s *Store) AddLearnedServices(ctx context.Context, st newserver.State) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: save learned services: %w", err)
	}
	defer tx.Rollback()
	if len(st.Entries) > 0 {
		stmt, err := tx.PrepareContext(ctx, `INSERT OR IGNORE INTO learned_services
			(policy, server, proto, port, client, learned) VALUES (?, ?, ?, ?, ?, ?)`)
		if err != nil {
			return fmt.Errorf("store: save learned services: %w", err)
		}
		defer stmt.Close()
		for _, e := range st.Entries {
			server, _ := e.Server.Unmap().MarshalBinary() // never fails
			client, _ := e.Client.Unmap().MarshalBinary()
			if _, err := stmt.ExecContext(ctx, int64(e.Policy), server, int64(e.Proto), int64(e.Port), client, micros(e.Learned)); err != nil {
				return fmt.Errorf("store: save learned service of policy %d: %w", e.Policy, err)
			}
		}
	}
	for _, l := range st.Starts {
		_, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO learning_starts (policy, grp, since) VALUES (?, ?, ?)`,
			int64(l.Policy), int64(l.Group), micros(l.Since))
		if err != nil {
			return fmt.Errorf("store: save learning start of policy %d: %w", l.Policy, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: save learned services: %w", err)
	}
	return nil
}

// LearnedServices returns every learned service, client and learning
// start, by policy.
func (s *Store) LearnedServices(ctx context.Context) (newserver.State, error) {
	var st newserver.State
	rows, err := s.r.QueryContext(ctx, `SELECT policy, server, proto, port, client, learned FROM learned_services
		ORDER BY policy, server, proto, port, client`)
	if err != nil {
		return st, fmt.Errorf("store: learned services: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var policy, proto, port, learned int64
		var server, client []byte
		if err := rows.Scan(&policy, &server, &proto, &port, &client, &learned); err != nil {
			return st, fmt.Errorf("store: learned services: %w", err)
		}
		e := newserver.Entry{Policy: uint64(policy), Proto: uint8(proto), Port: uint16(port), Learned: fromMicros(learned)}
		if e.Server, err = addr(server); err == nil {
			e.Client, err = addr(client)
		}
		if err != nil || !e.Server.IsValid() {
			return st, fmt.Errorf("store: learned service of policy %d: bad address: %v", e.Policy, err)
		}
		st.Entries = append(st.Entries, e)
	}
	if err := rows.Err(); err != nil {
		return st, fmt.Errorf("store: learned services: %w", err)
	}
	rows2, err := s.r.QueryContext(ctx, `SELECT policy, grp, since FROM learning_starts ORDER BY policy, grp`)
	if err != nil {
		return st, fmt.Errorf("store: learning starts: %w", err)
	}
	defer rows2.Close()
	for rows2.Next() {
		var policy, grp, since int64
		if err := rows2.Scan(&policy, &grp, &since); err != nil {
			return st, fmt.Errorf("store: learning starts: %w", err)
		}
		st.Starts = append(st.Starts, newserver.Start{Policy: uint64(policy), Group: uint32(grp), Since: fromMicros(since)})
	}
	if err := rows2.Err(); err != nil {
		return st, fmt.Errorf("store: learning starts: %w", err)
	}
	return st, nil
}
