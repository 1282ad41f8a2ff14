package store

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/flowsentry/flowsentry/detect"
	"github.com/flowsentry/flowsentry/rates"
)

var _ detect.BaselineStore = (*Store)(nil)

// baselineColumns are the columns of a baseline: the policy, the fields of
// its rates.Key, and the learned level.
const baselineColumns = `policy, kind, grp, exporter, ifindex, ip, proto, port, value, samples, updated`

// SaveBaselines replaces every stored baseline with list, in one
// transaction: the detector saves all it knows, so baselines of objects
// and policies that are gone go away. Of two baselines with the same
// policy and key, the later wins.
func (s *Store) SaveBaselines(ctx context.Context, list []detect.Baseline) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: save baselines: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `DELETE FROM baselines`); err != nil {
		return fmt.Errorf("store: save baselines: %w", err)
	}
	stmt, err := tx.PrepareContext(ctx, `INSERT OR REPLACE INTO baselines (`+baselineColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return fmt.Errorf("store: save baselines: %w", err)
	}
	defer stmt.Close()
	for _, b := range list {
		k := &b.Key
		exporter, _ := k.Exporter.MarshalBinary() // never fails
		ip, _ := k.IP.MarshalBinary()
		_, err := stmt.ExecContext(ctx, int64(b.Policy), int64(k.Kind), int64(k.Group), exporter, int64(k.IfIndex),
			ip, int64(k.Proto), int64(k.Port), b.Value, int64(b.Samples), micros(b.Updated))
		if err != nil {
			return fmt.Errorf("store: save baseline of policy %d: %w", b.Policy, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: save baselines: %w", err)
	}
	return nil
}

// Baselines returns every stored baseline, by policy then key.
func (s *Store) Baselines(ctx context.Context) ([]detect.Baseline, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+baselineColumns+` FROM baselines
		ORDER BY policy, kind, grp, exporter, ifindex, ip, proto, port`)
	if err != nil {
		return nil, fmt.Errorf("store: baselines: %w", err)
	}
	defer rows.Close()
	var out []detect.Baseline
	for rows.Next() {
		var b detect.Baseline
		var policy, kind, group, ifIndex, proto, port, samples, updated int64
		var exporter, ip []byte
		err := rows.Scan(&policy, &kind, &group, &exporter, &ifIndex, &ip, &proto, &port, &b.Value, &samples, &updated)
		if err != nil {
			return nil, fmt.Errorf("store: baselines: %w", err)
		}
		b.Policy, b.Samples, b.Updated = uint64(policy), uint64(samples), fromMicros(updated)
		b.Key = rates.Key{
			Kind: rates.Kind(kind), Group: uint32(group), IfIndex: uint32(ifIndex),
			Proto: uint8(proto), Port: uint16(port),
		}
		if b.Key.Exporter, err = addr(exporter); err == nil {
			b.Key.IP, err = addr(ip)
		}
		if err != nil {
			return nil, fmt.Errorf("store: baseline of policy %d: %w", b.Policy, err)
		}
		out = append(out, b)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: baselines: %w", err)
	}
	return out, nil
}

// addr reads an address stored with MarshalBinary; empty is the zero
// address.
func addr(b []byte) (netip.Addr, error) {
	var a netip.Addr
	err := a.UnmarshalBinary(b)
	return a, err
}
