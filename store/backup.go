package store

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Info describes a database file: what backup and restore print.
type Info struct {
	Path string
	// Size is the file's size in bytes.
	Size int64
	// Schema is the schema version the file holds.
	Schema int
	// Alerts is how many alerts it holds; MaxAlertID the highest alert ID
	// (0 when there is none).
	Alerts     int
	MaxAlertID uint64
}

// String is the line backup and restore print.
func (i Info) String() string {
	return fmt.Sprintf("%s: %d bytes, schema version %d, %d alerts (highest ID %d)",
		i.Path, i.Size, i.Schema, i.Alerts, i.MaxAlertID)
}

// Backup writes a consistent copy of the database of data folder dir to
// dst (replacing it), while a server may be writing to it, and
// returns what the copy holds (checked as Inspect does).
//
// It uses VACUUM INTO rather than SQLite's online backup API: VACUUM INTO
// reads the whole database in one read transaction, which in WAL mode
// neither blocks the server's writes nor is disturbed by them, whereas the
// backup API copying page by page from another process restarts whenever
// the server commits, and may never finish while alerts keep coming. The
// copy is also compacted and holds no write-ahead log. Nothing is
// migrated: the source is opened read-only.
func Backup(ctx context.Context, dir, dst string) (Info, error) {
	src, err := filepath.Abs(filepath.Join(dir, FileName))
	if err != nil {
		return Info{}, fmt.Errorf("store: backup %s: %w", dir, err)
	}
	exists, err := checkFile(src)
	if err != nil {
		return Info{}, err
	}
	if !exists {
		return Info{}, fmt.Errorf("store: backup: %s does not exist: check data_dir (or --data) names the server's data folder", src)
	}
	db, err := sql.Open("sqlite", dsn(src, url.Values{"mode": {"ro"}}))
	if err != nil {
		return Info{}, fmt.Errorf("store: backup %s: %w", src, err)
	}
	defer db.Close()
	// Written beside dst and renamed once checked, so that dst is either
	// the previous file or a whole backup, never a part of one.
	partial := dst + ".partial"
	if err := os.Remove(partial); err != nil && !errors.Is(err, os.ErrNotExist) {
		return Info{}, fmt.Errorf("store: backup: remove the leftover %s: %w", partial, err)
	}
	defer os.Remove(partial) // gone after the rename; left only on failure
	if _, err := db.ExecContext(ctx, `VACUUM INTO ?`, partial); err != nil {
		return Info{}, fmt.Errorf("store: backup %s to %s: %w", src, dst, err)
	}
	info, err := Inspect(ctx, partial)
	if err != nil {
		return info, err
	}
	if err := os.Rename(partial, dst); err != nil {
		return info, fmt.Errorf("store: backup: %w", err)
	}
	info.Path = dst
	return info, nil
}

// Inspect checks that the file at path is a flowsentry database this
// binary can open — SQLite, PRAGMA integrity_check ok, flowsentry's
// schema no newer than this binary's — and returns what it holds. It
// writes nothing.
func Inspect(ctx context.Context, path string) (Info, error) {
	info := Info{Path: path}
	exists, err := checkFile(path)
	if err != nil {
		return info, err
	}
	if !exists {
		return info, fmt.Errorf("store: %s does not exist: name a file that flowsentry backup wrote", path)
	}
	st, err := os.Stat(path)
	if err != nil {
		return info, fmt.Errorf("store: inspect %s: %w", path, err)
	}
	info.Size = st.Size()
	abs, err := filepath.Abs(path) // a relative path is no file: URI
	if err != nil {
		return info, fmt.Errorf("store: inspect %s: %w", path, err)
	}
	db, err := sql.Open("sqlite", dsn(abs, url.Values{"mode": {"ro"}}))
	if err != nil {
		return info, fmt.Errorf("store: inspect %s: %w", path, err)
	}
	defer db.Close()
	// A damaged file fails the check either with its findings or, when
	// the damage is in the pages the check reads first, with an error.
	var problems []string
	rows, err := db.QueryContext(ctx, `PRAGMA integrity_check`)
	for err == nil && rows.Next() {
		var p string
		if err = rows.Scan(&p); err == nil {
			problems = append(problems, p)
		}
	}
	if rows != nil {
		rows.Close()
		err = cmp.Or(err, rows.Err())
	}
	if err != nil {
		problems = append(problems, err.Error())
	}
	if len(problems) != 1 || problems[0] != "ok" {
		return info, fmt.Errorf("store: %s is damaged (PRAGMA integrity_check: %s): use another backup",
			path, strings.Join(problems, "; "))
	}
	var hasVersion int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'schema_version'`).Scan(&hasVersion); err != nil {
		return info, fmt.Errorf("store: inspect %s: %w", path, err)
	}
	if hasVersion == 0 {
		return info, fmt.Errorf("store: %s is a SQLite database but not flowsentry's (it has no schema_version table): "+
			"use a file that flowsentry backup wrote", path)
	}
	if err := db.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM schema_version`).Scan(&info.Schema); err != nil {
		return info, fmt.Errorf("store: inspect %s: read schema version: %w", path, err)
	}
	if known := schemaVersion(); info.Schema > known {
		return info, fmt.Errorf("store: %s has schema version %d, newer than version %d that this flowsentry knows: "+
			"upgrade flowsentry to a release at least as new as the one that wrote it", path, info.Schema, known)
	}
	var maxID int64
	if err := db.QueryRowContext(ctx, `SELECT count(*), coalesce(max(id), 0) FROM alerts`).Scan(&info.Alerts, &maxID); err != nil {
		return info, fmt.Errorf("store: inspect %s: count alerts: %w", path, err)
	}
	info.MaxAlertID = uint64(maxID)
	return info, nil
}

// Restore replaces the database of data folder dir with a copy of the
// file src, once Inspect has accepted src. The database replaced is kept
// beside it as flowsentry.db.before-restore-TIMESTAMP (its write-ahead
// log, if any, moved along as …-wal so that the kept copy is whole); the
// stale -shm is removed. It returns what was restored and the path of the
// kept database ("" when there was none). No server may run on dir: the
// caller holds the data folder's lock.
func Restore(ctx context.Context, dir, src string, now time.Time) (info Info, kept string, err error) {
	info, err = Inspect(ctx, src)
	if err != nil {
		return info, "", err
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return info, "", fmt.Errorf("store: restore into %s: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o750); err != nil {
		return info, "", fmt.Errorf("store: restore: create data folder: %w", err)
	}
	dst := filepath.Join(abs, FileName)
	tmp := dst + ".restoring"
	if err := copyFile(src, tmp); err != nil {
		return info, "", fmt.Errorf("store: restore %s into %s: %w", src, abs, err)
	}
	defer os.Remove(tmp) // gone after the rename; left only on failure
	if _, err := os.Stat(dst); err == nil {
		kept = dst + ".before-restore-" + now.UTC().Format("20060102T150405Z")
		if err := os.Rename(dst, kept); err != nil {
			return info, "", fmt.Errorf("store: restore: keep the replaced database: %w", err)
		}
	}
	for _, suffix := range []string{"-wal", "-shm"} {
		side := dst + suffix
		if kept != "" && suffix == "-wal" {
			err = os.Rename(side, kept+suffix)
		} else {
			err = os.Remove(side)
		}
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return info, kept, fmt.Errorf("store: restore: move away %s: %w", side, err)
		}
	}
	if err := os.Rename(tmp, dst); err != nil {
		return info, kept, fmt.Errorf("store: restore: %w", err)
	}
	info.Path = dst
	return info, kept, nil
}

// copyFile copies src to a new file dst, synced to disk.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return err
	}
	if _, err := out.ReadFrom(in); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
