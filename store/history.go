package store

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/flowsentry/flowsentry/history"
	"github.com/flowsentry/flowsentry/rates"
)

var _ history.Store = (*Store)(nil)

// migrationHistory adds the rate history: a row per series (its rates.Key
// fields and its last minute, Unix seconds) and a row per series and hour
// (Unix hours) whose data appends a record per minute: the minute of the
// hour (one byte), then the averages and the peaks of the counters
// (history.Counters order) as little-endian float32.
var migrationHistory = []string{
	`CREATE TABLE history_series (
		id INTEGER PRIMARY KEY,
		kind INTEGER NOT NULL,
		grp INTEGER NOT NULL,
		exporter BLOB NOT NULL,
		ifindex INTEGER NOT NULL,
		proto INTEGER NOT NULL,
		port INTEGER NOT NULL,
		last INTEGER NOT NULL,
		UNIQUE (kind, grp, exporter, ifindex, proto, port)
	) STRICT`,
	`CREATE TABLE history_hours (
		series INTEGER NOT NULL,
		hour INTEGER NOT NULL,
		data BLOB NOT NULL,
		PRIMARY KEY (series, hour)
	) STRICT`,
}

// historyRecord is the size of one minute's record in history_hours.data.
const historyRecord = 1 + 2*history.NumCounters*4

// WriteHistory appends one minute of every series of b, in one
// transaction.
func (s *Store) WriteHistory(ctx context.Context, b history.Batch) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: write history of %s: %w", b.Time, err)
	}
	defer tx.Rollback()
	series, err := tx.PrepareContext(ctx, `INSERT INTO history_series (kind, grp, exporter, ifindex, proto, port, last)
		VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (kind, grp, exporter, ifindex, proto, port) DO UPDATE SET last = max(last, excluded.last)
		RETURNING id`)
	if err != nil {
		return fmt.Errorf("store: write history of %s: %w", b.Time, err)
	}
	defer series.Close()
	hours, err := tx.PrepareContext(ctx, `INSERT INTO history_hours (series, hour, data) VALUES (?, ?, ?)
		ON CONFLICT (series, hour) DO UPDATE SET data = CAST(data || excluded.data AS BLOB)`)
	if err != nil {
		return fmt.Errorf("store: write history of %s: %w", b.Time, err)
	}
	defer hours.Close()
	sec := b.Time.Unix()
	hour, minute := floorDivInt(sec, 3600), floorDivInt(sec, 60)%60
	rec := make([]byte, historyRecord)
	for _, e := range b.Entries {
		k := &e.Key
		exporter, _ := k.Exporter.MarshalBinary() // never fails
		var id int64
		err := series.QueryRowContext(ctx, int64(k.Kind), int64(k.Group), exporter, int64(k.IfIndex), int64(k.Proto), int64(k.Port), sec).Scan(&id)
		if err != nil {
			return fmt.Errorf("store: write history series %v: %w", k, err)
		}
		rec[0] = byte(minute)
		for c := range history.NumCounters {
			binary.LittleEndian.PutUint32(rec[1+4*c:], math.Float32bits(e.Avg[c]))
			binary.LittleEndian.PutUint32(rec[1+4*(history.NumCounters+c):], math.Float32bits(e.Peak[c]))
		}
		if _, err := hours.ExecContext(ctx, id, hour, rec); err != nil {
			return fmt.Errorf("store: write history series %v: %w", k, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: write history of %s: %w", b.Time, err)
	}
	return nil
}

// ReadHistory returns the minutes of series k from from up to (not
// including) to, by time; none when the series is unknown. Two records of
// one minute (the partial minutes before and after a restart) are merged:
// the mean of the averages, the highest peak.
func (s *Store) ReadHistory(ctx context.Context, k rates.Key, from, to time.Time) ([]history.Point, error) {
	exporter, _ := k.Exporter.MarshalBinary()
	var id int64
	err := s.r.QueryRowContext(ctx, `SELECT id FROM history_series
		WHERE kind = ? AND grp = ? AND exporter = ? AND ifindex = ? AND proto = ? AND port = ?`,
		int64(k.Kind), int64(k.Group), exporter, int64(k.IfIndex), int64(k.Proto), int64(k.Port)).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("store: read history: %w", err)
	}
	rows, err := s.r.QueryContext(ctx, `SELECT hour, data FROM history_hours
		WHERE series = ? AND hour >= ? AND hour <= ? ORDER BY hour`,
		id, floorDivInt(from.Unix(), 3600), floorDivInt(to.Unix(), 3600))
	if err != nil {
		return nil, fmt.Errorf("store: read history: %w", err)
	}
	defer rows.Close()
	var out []history.Point
	for rows.Next() {
		var hour int64
		var data []byte
		if err := rows.Scan(&hour, &data); err != nil {
			return nil, fmt.Errorf("store: read history: %w", err)
		}
		out = appendHour(out, hour, data, from, to)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: read history: %w", err)
	}
	return out, nil
}

// appendHour appends the minutes of one hour's data within [from, to) to
// out, sorted, merging two records of a minute.
func appendHour(out []history.Point, hour int64, data []byte, from, to time.Time) []history.Point {
	start := len(out)
	for ; len(data) >= historyRecord; data = data[historyRecord:] {
		t := time.Unix(hour*3600+int64(data[0])*60, 0).UTC()
		if t.Before(from) || !t.Before(to) {
			continue
		}
		p := history.Point{Time: t}
		for c := range history.NumCounters {
			p.Avg[c] = math.Float32frombits(binary.LittleEndian.Uint32(data[1+4*c:]))
			p.Peak[c] = math.Float32frombits(binary.LittleEndian.Uint32(data[1+4*(history.NumCounters+c):]))
		}
		out = append(out, p)
	}
	hourPoints := out[start:]
	slices.SortStableFunc(hourPoints, func(a, b history.Point) int { return a.Time.Compare(b.Time) })
	merged := out[:start]
	for _, p := range hourPoints {
		if n := len(merged); n > start && merged[n-1].Time.Equal(p.Time) {
			last := &merged[n-1]
			for c := range history.NumCounters {
				last.Avg[c] = (last.Avg[c] + p.Avg[c]) / 2
				last.Peak[c] = max(last.Peak[c], p.Peak[c])
			}
			continue
		}
		merged = append(merged, p)
	}
	return merged
}

// PruneHistory deletes the hours that end before before and the series
// with no minute since; it returns the deleted series' keys.
func (s *Store) PruneHistory(ctx context.Context, before time.Time) ([]rates.Key, error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("store: prune history: %w", err)
	}
	defer tx.Rollback()
	sec := before.Unix()
	if _, err := tx.ExecContext(ctx, `DELETE FROM history_hours WHERE hour < ?`, floorDivInt(sec, 3600)); err != nil {
		return nil, fmt.Errorf("store: prune history: %w", err)
	}
	rows, err := tx.QueryContext(ctx, `DELETE FROM history_series WHERE last < ?
		RETURNING kind, grp, exporter, ifindex, proto, port`, sec)
	if err != nil {
		return nil, fmt.Errorf("store: prune history: %w", err)
	}
	gone, err := scanSeries(rows)
	if err != nil {
		return nil, fmt.Errorf("store: prune history: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM history_hours WHERE series NOT IN (SELECT id FROM history_series)`); err != nil {
		return nil, fmt.Errorf("store: prune history: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("store: prune history: %w", err)
	}
	return gone, nil
}

// HistorySeries returns the key of every stored series, by kind and key.
func (s *Store) HistorySeries(ctx context.Context) ([]rates.Key, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT kind, grp, exporter, ifindex, proto, port FROM history_series`)
	if err != nil {
		return nil, fmt.Errorf("store: history series: %w", err)
	}
	keys, err := scanSeries(rows)
	if err != nil {
		return nil, fmt.Errorf("store: history series: %w", err)
	}
	slices.SortFunc(keys, func(a, b rates.Key) int {
		return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Group, b.Group), a.Exporter.Compare(b.Exporter),
			cmp.Compare(a.IfIndex, b.IfIndex), cmp.Compare(a.Proto, b.Proto), cmp.Compare(a.Port, b.Port))
	})
	return keys, nil
}

// scanSeries reads and closes rows of kind, grp, exporter, ifindex,
// proto, port.
func scanSeries(rows *sql.Rows) ([]rates.Key, error) {
	defer rows.Close()
	var keys []rates.Key
	for rows.Next() {
		var kind, group, ifIndex, proto, port int64
		var exporter []byte
		if err := rows.Scan(&kind, &group, &exporter, &ifIndex, &proto, &port); err != nil {
			return nil, err
		}
		k := rates.Key{Kind: rates.Kind(kind), Group: uint32(group), IfIndex: uint32(ifIndex), Proto: uint8(proto), Port: uint16(port)}
		var err error
		if k.Exporter, err = addr(exporter); err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return keys, rows.Err()
}

// floorDivInt divides rounding toward minus infinity.
func floorDivInt(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}
