// Package store keeps flowsentry's state in an embedded SQLite database
// (modernc.org/sqlite, pure Go) in the data folder: alerts, actions and
// their calls, annotations, plugin instances, policies, learned baselines,
// users and the ID sequences. It implements the Store interfaces of the
// alert, action, annotate and plugin packages.
//
// # Durability
//
// The database runs in WAL mode with synchronous=NORMAL. A committed
// transaction is in the write-ahead log, in the operating system's page
// cache, before the call returns, so it survives the process being killed
// (SIGKILL, a crash, an OOM kill): SaveAlerts returning nil means the alerts
// are there after a restart. Only a crash of the operating system or a power
// loss can lose the last transactions before the next checkpoint; the
// database stays consistent even then. synchronous=FULL would also cover
// that case at the price of an fsync per transaction, which the alert
// engine's per-tick writes do not need.
//
// # Concurrency
//
// A Store is safe for concurrent use. Writes go through a single
// connection, so they are serialised in the process and never fail with
// SQLITE_BUSY against each other; reads use a separate pool of read-only
// connections and, thanks to WAL, proceed while a write is in progress.
//
// Times are stored as Unix microseconds (the precision of EARLIEST_UTC and
// LATEST_UTC); the zero time.Time is stored as 0 and read back as zero.
// Times read back are in UTC.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// FileName is the name of the database file inside the data folder.
const FileName = "flowsentry.db"

// busyTimeoutMS is how long a connection waits for another process's lock
// (a second flowsentry, or the sqlite3 shell) before failing with
// SQLITE_BUSY.
const busyTimeoutMS = 10000

// ErrNotFound is wrapped by the errors of look-ups, updates and deletions
// of a record that does not exist.
var ErrNotFound = errors.New("not found")

// Store is the SQLite database of one data folder. New builds it, Start
// opens it, Close releases it (Open does New and Start at once); all
// methods are safe for concurrent use once Start has returned.
type Store struct {
	log  *slog.Logger
	dir  string
	path string
	// w is the single writer connection; r the read-only pool.
	w *sql.DB
	r *sql.DB
}

// New returns the store of data folder dir without touching the disk, so
// that components can be wired (and the configuration checked) before the
// database opens. A nil log discards messages.
func New(dir string, log *slog.Logger) *Store {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Store{log: log, dir: dir}
}

// Open is New followed by Start.
func Open(ctx context.Context, dir string, log *slog.Logger) (*Store, error) {
	s := New(dir, log)
	if err := s.Start(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// Start creates the data folder if needed, opens flowsentry.db in it —
// creating it only when no such file exists — and applies the schema
// migrations this binary knows. It refuses a file that is empty, not
// SQLite or another program's database, and a database whose schema is
// newer than this binary, naming the file and the fix.
func (s *Store) Start(ctx context.Context) error {
	if s.dir == "" {
		return errors.New("store: open: the data folder is empty: set data_dir to a writable folder")
	}
	abs, err := filepath.Abs(s.dir)
	if err != nil {
		return fmt.Errorf("store: open %s: %w", s.dir, err)
	}
	if err := os.MkdirAll(abs, 0o750); err != nil {
		return fmt.Errorf("store: create data folder: %w", err)
	}
	path := filepath.Join(abs, FileName)
	s.path = path
	if _, err := checkFile(path); err != nil {
		return err
	}

	s.w, err = sql.Open("sqlite", dsn(path, url.Values{
		"_journal_mode": {"WAL"},
		"_synchronous":  {"NORMAL"},
		"_txlock":       {"immediate"},
	}))
	if err != nil {
		return fmt.Errorf("store: open %s: %w", path, err)
	}
	s.w.SetMaxOpenConns(1)
	s.w.SetMaxIdleConns(1)
	s.w.SetConnMaxLifetime(0)
	s.w.SetConnMaxIdleTime(0)
	if err := s.w.PingContext(ctx); err != nil {
		s.w.Close()
		return fmt.Errorf("store: open %s: %w", path, err)
	}
	if err := s.migrate(ctx); err != nil {
		s.w.Close()
		return err
	}

	s.r, err = sql.Open("sqlite", dsn(path, url.Values{"_query_only": {"1"}}))
	if err != nil {
		s.w.Close()
		return fmt.Errorf("store: open %s for reading: %w", path, err)
	}
	readers := max(2, runtime.GOMAXPROCS(0))
	s.r.SetMaxOpenConns(readers)
	s.r.SetMaxIdleConns(readers)
	if err := s.r.PingContext(ctx); err != nil {
		s.Close()
		return fmt.Errorf("store: open %s for reading: %w", path, err)
	}
	return nil
}

// dsn builds the driver's data source name: a file: URI (so any character
// of the path is escaped) with the settings every connection shares plus
// extra.
func dsn(path string, extra url.Values) string {
	q := url.Values{
		"_busy_timeout": {strconv.Itoa(busyTimeoutMS)},
		"_foreign_keys": {"1"},
	}
	for k, v := range extra {
		q[k] = v
	}
	u := url.URL{Scheme: "file", Path: path, RawQuery: q.Encode()}
	return u.String()
}

// Close closes the database; it does nothing when Start never succeeded.
// Calls after Close fail.
func (s *Store) Close() error {
	var errs []error
	if s.r != nil {
		errs = append(errs, s.r.Close())
	}
	if s.w != nil {
		errs = append(errs, s.w.Close())
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("store: close %s: %w", s.path, err)
	}
	return nil
}

// micros is how a time is stored: Unix microseconds, 0 for the zero time.
func micros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

// fromMicros is the inverse of micros.
func fromMicros(us int64) time.Time {
	if us == 0 {
		return time.Time{}
	}
	return time.UnixMicro(us).UTC()
}

// changedOne turns a statement that touched no row into ErrNotFound.
func changedOne(res sql.Result) error {
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}

// Exists reports whether data folder dir holds a database.
func Exists(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, FileName))
	return err == nil
}

// sqliteHeader is how every SQLite 3 database file starts.
const sqliteHeader = "SQLite format 3\x00"

// refuseFix is what to do about a database file that is there but cannot
// be flowsentry's.
const refuseFix = `restore a backup with "flowsentry restore FILE", or move the file away to start afresh`

// checkFile reports whether the database file path exists, and refuses
// one that exists but is empty or does not start with the SQLite header:
// flowsentry creates a database only where no file exists, so that a
// truncated or foreign file is never silently replaced by an empty
// database (a new admin, alert IDs from 1 again). Whether a SQLite
// database is flowsentry's is checked by migrate.
func checkFile(path string) (exists bool, err error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("store: open %s: %w", path, err)
	}
	defer f.Close()
	head := make([]byte, len(sqliteHeader))
	n, err := io.ReadFull(f, head)
	switch {
	case n == 0 && (err == nil || errors.Is(err, io.EOF)):
		return true, fmt.Errorf("store: refusing to open %s: it is empty (0 bytes), so it holds no data; %s", path, refuseFix)
	case err != nil && !errors.Is(err, io.ErrUnexpectedEOF):
		return true, fmt.Errorf("store: read %s: %w", path, err)
	case string(head[:n]) != sqliteHeader:
		return true, fmt.Errorf("store: refusing to open %s: it is not a SQLite database (it starts with %q); %s", path, head[:n], refuseFix)
	}
	return true, nil
}

// OpenReadOnly opens the existing database of data folder dir for reading
// only: it creates, migrates and writes nothing, so that `serve --check`
// can validate the configuration against the stored policies and
// instances. Only the reading methods work on the result.
func OpenReadOnly(ctx context.Context, dir string, log *slog.Logger) (*Store, error) {
	s := New(dir, log)
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", dir, err)
	}
	s.path = filepath.Join(abs, FileName)
	exists, err := checkFile(s.path)
	if err != nil {
		return nil, err
	}
	if !exists {
		return nil, fmt.Errorf("store: open %s: %w", s.path, os.ErrNotExist)
	}
	s.r, err = sql.Open("sqlite", dsn(s.path, url.Values{"mode": {"ro"}, "_query_only": {"1"}}))
	if err != nil {
		return nil, fmt.Errorf("store: open %s for reading: %w", s.path, err)
	}
	if err := s.r.PingContext(ctx); err != nil {
		s.r.Close()
		return nil, fmt.Errorf("store: open %s for reading: %w", s.path, err)
	}
	return s, nil
}
