package store

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/crypto/bcrypt"

	"github.com/flowsentry/flowsentry/action"
	"github.com/flowsentry/flowsentry/alert"
	"github.com/flowsentry/flowsentry/plugin"
)

// versions reads the schema_version table of the database in dir.
func versions(t *testing.T, dir string) []int {
	t.Helper()
	db, err := sql.Open("sqlite", dsn(filepath.Join(dir, FileName), nil))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT version FROM schema_version ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []int
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	return out
}

func TestOpenMigrates(t *testing.T) {
	ctx := context.Background()
	// Characters that mean something in a URI are taken literally.
	dir := filepath.Join(t.TempDir(), "not yet", "there?#%20&")
	s := openTest(t, dir)
	if _, err := os.Stat(filepath.Join(dir, FileName)); err != nil {
		t.Fatalf("the database is not where expected: %v", err)
	}
	var mode string
	var sync int
	if err := s.w.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if err := s.w.QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&sync); err != nil {
		t.Fatal(err)
	}
	if mode != "wal" || sync != 1 {
		t.Errorf("journal_mode = %q, synchronous = %d; want wal, 1 (NORMAL)", mode, sync)
	}
	for _, pool := range []*sql.DB{s.w, s.r} {
		var fk int
		if err := pool.QueryRowContext(ctx, `PRAGMA foreign_keys`).Scan(&fk); err != nil {
			t.Fatal(err)
		}
		if fk != 1 {
			t.Errorf("foreign_keys = %d, want 1", fk)
		}
	}
	if _, err := s.r.ExecContext(ctx, `DELETE FROM policies`); err == nil {
		t.Errorf("the read pool accepted a write")
	}
	var want []int
	for v := range schemaVersion() {
		want = append(want, v+1)
	}
	if diff := cmp.Diff(versions(t, dir), want); diff != "" {
		t.Errorf("schema versions after the first open (-got +want):\n%s", diff)
	}
	if err := s.SavePolicy(ctx, 7, []byte(`{"name":"kept"}`)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Re-opening applies nothing again and keeps the data.
	s = openTest(t, dir)
	if diff := cmp.Diff(versions(t, dir), want); diff != "" {
		t.Errorf("schema versions after re-opening (-got +want):\n%s", diff)
	}
	got, err := s.Policies(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(got, map[uint64][]byte{7: []byte(`{"name":"kept"}`)}); diff != "" {
		t.Errorf("Policies after re-opening (-got +want):\n%s", diff)
	}
}

func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	garbage := t.TempDir()
	if err := os.WriteFile(filepath.Join(garbage, FileName), []byte(strings.Repeat("not a database ", 100)), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := t.TempDir()
	if err := os.WriteFile(filepath.Join(empty, FileName), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	foreign := t.TempDir()
	db, err := sql.Open("sqlite", dsn(filepath.Join(foreign, FileName), nil))
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`CREATE TABLE moz_places (id INTEGER PRIMARY KEY)`, `CREATE TABLE moz_bookmarks (id INTEGER)`} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	newer := t.TempDir()
	s := openTest(t, newer)
	if _, err := s.w.ExecContext(ctx, `INSERT INTO schema_version (version, applied) VALUES (?, 0)`, schemaVersion()+1); err != nil {
		t.Fatal(err)
	}
	s.Close()

	for _, tc := range []struct {
		name, dir, want string
	}{
		{"empty folder name", "", "store: open: the data folder is empty: set data_dir to a writable folder"},
		{"folder is a file", file, "store: create data folder: mkdir " + file + ": not a directory"},
		{"empty file", empty, "store: refusing to open " + filepath.Join(empty, FileName) + ": it is empty (0 bytes), so it holds no data; " + refuseFix},
		{"not a database", garbage, "store: refusing to open " + filepath.Join(garbage, FileName) +
			`: it is not a SQLite database (it starts with "not a database n"); ` + refuseFix},
		{"another program's database", foreign, "store: refusing to open " + filepath.Join(foreign, FileName) +
			": it is a SQLite database but not flowsentry's (it has the tables moz_bookmarks, moz_places and no schema_version table); " + refuseFix},
		{"newer schema", newer, fmt.Sprintf("store: %s has schema version %d, newer than version %d that this flowsentry knows: "+
			"upgrade flowsentry to a release at least as new as the one that wrote it, or use another data folder",
			filepath.Join(newer, FileName), schemaVersion()+1, schemaVersion())},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Open(ctx, tc.dir, nil)
			if err == nil {
				s.Close()
				t.Fatalf("Open succeeded, want %q", tc.want)
			}
			if !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("Open error:\n%v\nwant it to start with\n%s", err, tc.want)
			}
			if tc.dir != empty && tc.dir != garbage {
				return
			}
			// Read-only opening (serve --check) refuses the file too, and
			// neither touches it.
			if ro, err := OpenReadOnly(ctx, tc.dir, nil); err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("OpenReadOnly error:\n%v\nwant it to start with\n%s", err, tc.want)
				if err == nil {
					ro.Close()
				}
			}
			entries, _ := os.ReadDir(tc.dir)
			if st, err := os.Stat(filepath.Join(tc.dir, FileName)); err != nil || len(entries) != 1 ||
				(tc.dir == empty && st.Size() != 0) {
				t.Errorf("after the refusal the folder holds %d files, the database %v (%v); want it untouched", len(entries), st, err)
			}
		})
	}
}

func TestSequencesPersist(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	type ids struct{ Alert, Action, Instance uint64 }
	next := func(s *Store) ids {
		t.Helper()
		var got ids
		var err error
		if got.Alert, err = s.NextAlertID(ctx); err != nil {
			t.Fatal(err)
		}
		if got.Action, err = s.NextActionID(ctx); err != nil {
			t.Fatal(err)
		}
		in := plugin.Instance{Plugin: "p"}
		if err = s.SaveInstance(ctx, &in); err != nil {
			t.Fatal(err)
		}
		got.Instance = in.ID
		return got
	}
	s := openTest(t, dir)
	if diff := cmp.Diff([]ids{next(s), next(s)}, []ids{{1, 1, 1}, {2, 2, 2}}); diff != "" {
		t.Errorf("first IDs (-got +want):\n%s", diff)
	}
	// An instance ID chosen in the configuration is never handed out.
	if err := s.SaveInstance(ctx, &plugin.Instance{ID: 10, Plugin: "p"}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = openTest(t, dir)
	if diff := cmp.Diff(next(s), ids{3, 3, 11}); diff != "" {
		t.Errorf("IDs after re-opening (-got +want):\n%s", diff)
	}
	// Saving a lower ID does not move the sequence back.
	if err := s.SaveInstance(ctx, &plugin.Instance{ID: 5, Plugin: "p"}); err != nil {
		t.Fatal(err)
	}
	if got := next(s); got.Instance != 12 {
		t.Errorf("instance ID after saving instance 5 = %d, want 12", got.Instance)
	}
}

// TestIDsNeverReused creates a record of each kind, deletes it, re-opens
// the database and creates another: its ID must be higher, so that
// nothing that pointed at the deleted one (an alert's actions, a call)
// points at the new one.
func TestIDsNeverReused(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		create func(s *Store) (uint64, error)
		// del deletes id; alerts and actions have no deletion in the
		// store, so theirs is what a retention job or an operator with
		// the sqlite3 shell would do.
		del func(s *Store, id uint64) error
	}{
		{
			name: "policy",
			create: func(s *Store) (uint64, error) {
				id, err := s.NextPolicyID(ctx)
				if err != nil {
					return 0, err
				}
				return id, s.SavePolicy(ctx, id, []byte(`{}`))
			},
			del: func(s *Store, id uint64) error { return s.DeletePolicy(ctx, id) },
		},
		{
			name: "plugin instance",
			create: func(s *Store) (uint64, error) {
				in := plugin.Instance{Plugin: "p"}
				err := s.SaveInstance(ctx, &in)
				return in.ID, err
			},
			del: func(s *Store, id uint64) error { return s.DeleteInstance(ctx, id) },
		},
		{
			name: "alert",
			create: func(s *Store) (uint64, error) {
				id, err := s.NextAlertID(ctx)
				if err != nil {
					return 0, err
				}
				return id, s.SaveAlert(ctx, &alert.Alert{ID: id, Earliest: t0})
			},
			del: func(s *Store, id uint64) error {
				_, err := s.w.ExecContext(ctx, `DELETE FROM alerts WHERE id = ?`, int64(id))
				return err
			},
		},
		{
			name: "action",
			create: func(s *Store) (uint64, error) {
				id, err := s.NextActionID(ctx)
				if err != nil {
					return 0, err
				}
				saveAlerts(t, s, 1)
				return id, s.SaveAction(ctx, &action.Action{ID: id, Alert: 1, State: action.StateEnded})
			},
			del: func(s *Store, id uint64) error {
				_, err := s.w.ExecContext(ctx, `DELETE FROM actions WHERE id = ?`, int64(id))
				return err
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s := openTest(t, dir)
			first, err := tc.create(s)
			if err != nil {
				t.Fatal(err)
			}
			if err := tc.del(s, first); err != nil {
				t.Fatal(err)
			}
			s.Close()
			s = openTest(t, dir)
			second, err := tc.create(s)
			if err != nil {
				t.Fatal(err)
			}
			if second <= first {
				t.Errorf("%s ID after deleting %d and re-opening = %d, want a higher one", tc.name, first, second)
			}
		})
	}
}

// TestMigratePolicySequence opens a database of schema version 1, whose
// policy IDs came from the highest stored one, and checks that the new
// policy sequence starts above every policy ID still referenced, including
// a deleted policy's that alerts and actions point at.
func TestMigratePolicySequence(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := sql.Open("sqlite", dsn(filepath.Join(dir, FileName), nil))
	if err != nil {
		t.Fatal(err)
	}
	v1 := append(slices.Clone(migrations[0]),
		`CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied INTEGER NOT NULL) STRICT`,
		`INSERT INTO schema_version VALUES (1, 0)`,
		`INSERT INTO policies (id, doc) VALUES (104, '{}')`,
		// Policy 105 was deleted; its alert and action remain.
		`INSERT INTO alerts (id, policy, key, type, cid, cid_name, severity, earliest, latest, last_call,
			ended, fields, cur, avg, peak, samples, uniq) VALUES (9, 105, 'k', 't', 0, '', 0, 1, 1, 1, 0, '[]', '{}', '{}', '{}', 1, 0)`,
		`INSERT INTO actions (id, alert, policy, instance, plugin, state, created, updated, token, token_until)
			VALUES (3, 9, 105, 1, 'p', 'ended', 1, 1, '', 0)`,
		// Rows written without the sequence.
		`INSERT INTO instances (id, cid, plugin, name, vals) VALUES (40, 0, 'p', 'n', '{}')`,
	)
	for _, q := range v1 {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	db.Close()

	s := openTest(t, dir)
	type ids struct{ Policy, Alert, Action, Instance uint64 }
	var got ids
	if got.Policy, err = s.NextPolicyID(ctx); err != nil {
		t.Fatal(err)
	}
	if got.Alert, err = s.NextAlertID(ctx); err != nil {
		t.Fatal(err)
	}
	if got.Action, err = s.NextActionID(ctx); err != nil {
		t.Fatal(err)
	}
	in := plugin.Instance{Plugin: "p"}
	if err := s.SaveInstance(ctx, &in); err != nil {
		t.Fatal(err)
	}
	got.Instance = in.ID
	if diff := cmp.Diff(got, ids{Policy: 106, Alert: 10, Action: 4, Instance: 41}); diff != "" {
		t.Errorf("IDs after migrating (-got +want):\n%s", diff)
	}
}

// killHelperEnv names the folder in which the child process of
// TestSurvivesKill saves alerts.
const killHelperEnv = "FLOWSENTRY_STORE_KILL_DIR"

// TestSurvivesKill saves alerts in a child process (this test binary run
// again), kills it with SIGKILL while it saves, and checks that every
// alert whose SaveAlert returned is there, open, and that its ID is never
// handed out again.
func TestSurvivesKill(t *testing.T) {
	if dir := os.Getenv(killHelperEnv); dir != "" {
		saveUntilKilled(t, dir)
		return
	}
	ctx := context.Background()
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestSurvivesKill$", "-test.count=1")
	cmd.Env = append(os.Environ(), killHelperEnv+"="+dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Kill after the child reported 50 saved alerts, while it is still
	// saving.
	var saved []uint64
	lines := bufio.NewScanner(out)
	for len(saved) < 50 && lines.Scan() {
		id, ok := strings.CutPrefix(lines.Text(), "saved ")
		if !ok {
			continue
		}
		n, err := strconv.ParseUint(id, 10, 64)
		if err != nil {
			t.Fatalf("child printed %q", lines.Text())
		}
		saved = append(saved, n)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	if len(saved) < 50 {
		t.Fatalf("the child saved %d alerts before it stopped, want 50 (its stderr is above)", len(saved))
	}

	s := openTest(t, dir)
	open, err := s.OpenAlerts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := make(map[uint64]alert.Alert, len(open))
	var highest uint64
	for _, a := range open {
		found[a.ID] = a
		highest = max(highest, a.ID)
	}
	for _, id := range saved {
		a, ok := found[id]
		if !ok {
			t.Errorf("alert %d, saved before the kill, is missing", id)
			continue
		}
		if diff := cmp.Diff(a, killAlert(id)); diff != "" {
			t.Errorf("alert %d after the kill (-got +want):\n%s", id, diff)
		}
	}
	next, err := s.NextAlertID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if next <= highest {
		t.Errorf("NextAlertID after the kill = %d, want above %d, the highest ID saved", next, highest)
	}
}

// killAlert is the alert the child of TestSurvivesKill saves under id.
func killAlert(id uint64) alert.Alert {
	return alert.Alert{
		ID: id, Policy: 1, Key: fmt.Sprintf("TGRP/%d", id), Type: "threshold_exceeded",
		CID: 1, CIDName: "default", Severity: 5,
		Fields:   []alert.Field{{Name: "OBJECT_TYPE", Value: "TGRP"}},
		Earliest: t0, Latest: t0, LastCall: t0,
		Cur: alert.Values{PacketsIn: float64(id)}, Samples: 1,
	}
}

// saveUntilKilled is the child of TestSurvivesKill: it saves alerts and
// prints the ID of each once SaveAlert returned, until it is killed (or,
// should the parent fail to kill it, for a minute).
func saveUntilKilled(t *testing.T, dir string) {
	ctx := context.Background()
	s, err := Open(ctx, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	stop := time.Now().Add(time.Minute)
	for time.Now().Before(stop) {
		id, err := s.NextAlertID(ctx)
		if err != nil {
			t.Fatal(err)
		}
		a := killAlert(id)
		if err := s.SaveAlert(ctx, &a); err != nil {
			t.Fatal(err)
		}
		fmt.Printf("saved %d\n", id)
	}
	t.Fatal("not killed within a minute")
}

// TestConcurrentReadsDuringWrites reads alerts from several goroutines
// while one writes them: readers never fail and never see fewer alerts
// than before. Run with -race.
func TestConcurrentReadsDuringWrites(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, "")
	const writes = 200
	var wg sync.WaitGroup
	done := make(chan struct{})
	wg.Go(func() {
		defer close(done)
		for range writes {
			id, err := s.NextAlertID(ctx)
			if err != nil {
				t.Error(err)
				return
			}
			a := killAlert(id)
			if err := s.SaveAlert(ctx, &a); err != nil {
				t.Error(err)
				return
			}
		}
	})
	for range 4 {
		wg.Go(func() {
			seen := 0
			for {
				select {
				case <-done:
					return
				default:
				}
				list, err := s.Alerts(ctx, alert.Query{})
				if err != nil {
					t.Error(err)
					return
				}
				if len(list) < seen {
					t.Errorf("read %d alerts after %d", len(list), seen)
				}
				seen = len(list)
			}
		})
	}
	wg.Wait()
	list, err := s.OpenAlerts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != writes {
		t.Errorf("OpenAlerts returned %d alerts, want %d", len(list), writes)
	}
}

func TestDummyHash(t *testing.T) {
	// An unknown user costs a full bcrypt comparison at the default cost.
	cost, err := bcrypt.Cost(dummyHash)
	if err != nil || cost != bcrypt.DefaultCost {
		t.Errorf("dummy hash cost = %d, %v; want %d", cost, err, bcrypt.DefaultCost)
	}
}
