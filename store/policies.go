package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/flowsentry/flowsentry/policy"
)

var _ policy.Store = (*Store)(nil)

// NextPolicyID hands out a new policy ID. It is committed before it is
// returned: no ID is ever handed out twice, even after the policy is
// deleted or the process crashes.
func (s *Store) NextPolicyID(ctx context.Context) (uint64, error) {
	return nextID(ctx, s.w, "policy")
}

// SavePolicy inserts or replaces the policy id: the JSON document the
// policy package made of it. The store does not look inside the document
// beyond checking that it is JSON. An ID the caller chose (a policy of the
// configuration file) is never handed out by NextPolicyID later.
func (s *Store) SavePolicy(ctx context.Context, id uint64, doc []byte) error {
	if id == 0 {
		return errors.New("store: save policy: ID 0 is not an ID: take one from NextPolicyID first")
	}
	if !json.Valid(doc) {
		return fmt.Errorf("store: save policy %d: the document is not valid JSON", id)
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: save policy %d: %w", id, err)
	}
	defer tx.Rollback()
	if err := reserveID(ctx, tx, "policy", id); err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO policies (id, doc) VALUES (?, ?)
		ON CONFLICT (id) DO UPDATE SET doc = excluded.doc`, int64(id), string(doc))
	if err != nil {
		return fmt.Errorf("store: save policy %d: %w", id, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: save policy %d: %w", id, err)
	}
	return nil
}

// DeletePolicy removes a policy; removing a missing one is not an error.
func (s *Store) DeletePolicy(ctx context.Context, id uint64) error {
	if _, err := s.w.ExecContext(ctx, `DELETE FROM policies WHERE id = ?`, int64(id)); err != nil {
		return fmt.Errorf("store: delete policy %d: %w", id, err)
	}
	return nil
}

// Policies returns every stored policy document by ID.
func (s *Store) Policies(ctx context.Context) (map[uint64][]byte, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id, doc FROM policies`)
	if err != nil {
		return nil, fmt.Errorf("store: policies: %w", err)
	}
	defer rows.Close()
	out := make(map[uint64][]byte)
	for rows.Next() {
		var id int64
		var doc []byte
		if err := rows.Scan(&id, &doc); err != nil {
			return nil, fmt.Errorf("store: policies: %w", err)
		}
		out[uint64(id)] = doc
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: policies: %w", err)
	}
	return out, nil
}
