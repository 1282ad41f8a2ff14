package store

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/flowsentry/flowsentry/plugin"
)

var _ plugin.InstanceStore = (*Store)(nil)

// SaveInstance inserts or replaces a plugin instance. ID 0 inserts a new
// one with the next instance ID, which is set in in.ID; an ID chosen by
// the caller (e.g. in the configuration file) is kept and never handed
// out later.
func (s *Store) SaveInstance(ctx context.Context, in *plugin.Instance) error {
	vals, err := json.Marshal(in.Values)
	if err != nil {
		return fmt.Errorf("store: save plugin instance %d: %w", in.ID, err)
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: save plugin instance %d: %w", in.ID, err)
	}
	defer tx.Rollback()
	id := in.ID
	if id == 0 {
		id, err = nextID(ctx, tx, "instance")
	} else {
		err = reserveID(ctx, tx, "instance", id)
	}
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO instances (id, cid, plugin, name, vals, source) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET
			cid = excluded.cid, plugin = excluded.plugin, name = excluded.name, vals = excluded.vals, source = excluded.source`,
		int64(id), int64(in.CID), in.Plugin, in.Name, string(vals), in.Source)
	if err != nil {
		return fmt.Errorf("store: save plugin instance %d: %w", id, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: save plugin instance %d: %w", id, err)
	}
	in.ID = id
	return nil
}

// DeleteInstance removes a plugin instance; an unknown ID gives an error
// wrapping ErrNotFound.
func (s *Store) DeleteInstance(ctx context.Context, id uint64) error {
	res, err := s.w.ExecContext(ctx, `DELETE FROM instances WHERE id = ?`, int64(id))
	if err == nil {
		err = changedOne(res)
	}
	if err != nil {
		return fmt.Errorf("store: delete plugin instance %d: %w", id, err)
	}
	return nil
}

// Instances returns every plugin instance by ID.
func (s *Store) Instances(ctx context.Context) ([]plugin.Instance, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id, cid, plugin, name, vals, source FROM instances ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("store: plugin instances: %w", err)
	}
	defer rows.Close()
	var out []plugin.Instance
	for rows.Next() {
		var in plugin.Instance
		var id, cid int64
		var vals string
		if err := rows.Scan(&id, &cid, &in.Plugin, &in.Name, &vals, &in.Source); err != nil {
			return nil, fmt.Errorf("store: plugin instances: %w", err)
		}
		in.ID, in.CID = uint64(id), uint32(cid)
		if err := json.Unmarshal([]byte(vals), &in.Values); err != nil {
			return nil, fmt.Errorf("store: plugin instance %d: values: %w", in.ID, err)
		}
		out = append(out, in)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: plugin instances: %w", err)
	}
	return out, nil
}
