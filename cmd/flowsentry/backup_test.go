package main

import (
	"database/sql"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowsentry/flowsentry/store"
)

// backupConfig raises an alert per internal host of traffic group 1 (50
// addresses in the flood), so that alerts are created and updated while
// the backup runs.
const backupConfig = `admin:
  user: admin
  password: s3cret-pass
rates:
  window: 2s
alerts:
  update_interval: 1s
  quiet_period: 1h
  max_age: 12h
traffic_groups:
  - id: 1
    name: alpha
    partition: 0
    cidrs: [10.1.0.0/16]
policies:
  - id: 60
    name: host packets in
    cid: 0
    family: port_threshold
    target: traffic_groups
    object_type: TGRP+IP
    threshold_type: packets_in
    threshold: 1
    severity: 4
`

// alertIDs lists the IDs of the alerts the API shows.
func alertIDs(t *testing.T, s *server) []uint64 {
	t.Helper()
	var listed []struct {
		ID uint64 `json:"id"`
	}
	s.authGet(t, "/api/v1/alerts", &listed)
	ids := make([]uint64, len(listed))
	for i, a := range listed {
		ids[i] = a.ID
	}
	return ids
}

// TestBackupRestore takes a backup while a flood drives alerts through
// a running server, checks that it holds every alert listed before it
// started, that restore refuses to run beside the server and refuses bad
// files, and that a restore followed by serve shows the alerts again.
func TestBackupRestore(t *testing.T) {
	s := startServer(t, backupConfig)
	data := filepath.Join(filepath.Dir(s.configPath), "data")
	stopFlood := stallFlood(t, s.netflow, netip.MustParsePrefix("10.1.0.0/16"), 11)
	var before []uint64
	stallWait(t, s, time.Now().Add(20*time.Second), "20 alerts", func() bool {
		before = alertIDs(t, s)
		return len(before) >= 20
	})
	file := filepath.Join(t.TempDir(), "backup.db")
	out, errOut, code := runBinary(t, "backup", file, "--config", s.configPath)
	if code != 0 || !strings.Contains(out, "schema version") || !strings.Contains(out, "backed up "+filepath.Join(data, store.FileName)) {
		t.Fatalf("backup: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	t.Logf("%s", out)

	db, err := sql.Open("sqlite", "file:"+file+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	var check string
	if err := db.QueryRow(`PRAGMA integrity_check`).Scan(&check); err != nil || check != "ok" {
		t.Errorf("PRAGMA integrity_check of the backup: %q, %v; want ok", check, err)
	}
	for _, id := range before {
		var n int
		if err := db.QueryRow(`SELECT count(*) FROM alerts WHERE id = ?`, id).Scan(&n); err != nil || n != 1 {
			t.Errorf("alert %d, listed before the backup started, is not in it (%d rows, %v)", id, n, err)
		}
	}
	db.Close()

	_, errOut, code = runBinary(t, "backup", "--config", s.configPath, file)
	if code != 1 || !strings.Contains(errOut, file+" exists") || !strings.Contains(errOut, "--force") {
		t.Errorf("backup over an existing file: exit %d, stderr %q; want 1 naming the file and --force", code, errOut)
	}
	if out, errOut, code := runBinary(t, "backup", "--force", "--config", s.configPath, file); code != 0 {
		t.Errorf("backup --force: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}

	_, errOut, code = runBinary(t, "restore", file, "--config", s.configPath)
	for _, want := range []string{filepath.Join(data, "flowsentry.lock"), "stop the server first (systemctl stop flowsentry)"} {
		if code != 1 || !strings.Contains(errOut, want) {
			t.Errorf("restore while the server runs: exit %d, stderr %q; want 1 and %q", code, errOut, want)
		}
	}

	_, errOut, code = runBinary(t, "serve", "--config", s.configPath, "--http", "127.0.0.1:0", "--netflow", "127.0.0.1:0", "--sflow", "127.0.0.1:0")
	if code != 1 || !strings.Contains(errOut, "the data folder "+data+" is in use") {
		t.Errorf("a second serve on the data folder: exit %d, stderr %q; want 1, the folder in use", code, errOut)
	}

	garbage := filepath.Join(t.TempDir(), "garbage.db")
	if err := os.WriteFile(garbage, []byte(strings.Repeat("x", 5000)), 0o600); err != nil {
		t.Fatal(err)
	}
	foreign := filepath.Join(t.TempDir(), "foreign.db")
	fdb, err := sql.Open("sqlite", "file:"+foreign)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fdb.Exec(`CREATE TABLE moz_places (id INTEGER PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	fdb.Close()
	backup, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	copy(backup[len(backup)/2:], strings.Repeat("\xff", 3000))
	corrupt := filepath.Join(t.TempDir(), "corrupt.db")
	if err := os.WriteFile(corrupt, backup, 0o600); err != nil {
		t.Fatal(err)
	}
	for file, want := range map[string]string{garbage: "is not a SQLite database", foreign: "not flowsentry's",
		corrupt: "is damaged (PRAGMA integrity_check: "} {
		_, errOut, code := runBinary(t, "restore", file, "--data", data)
		if code != 1 || !strings.Contains(errOut, want) || !strings.Contains(errOut, file) {
			t.Errorf("restore %s: exit %d, stderr %q; want 1 and %q", filepath.Base(file), code, errOut, want)
		}
	}

	stopFlood()
	s.term(t)
	out, errOut, code = runBinary(t, "restore", "--config", s.configPath, file)
	if code != 0 || !strings.Contains(out, "restored "+filepath.Join(data, store.FileName)) || !strings.Contains(out, "before-restore-") {
		t.Fatalf("restore: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	kept, _ := filepath.Glob(filepath.Join(data, store.FileName+".before-restore-*"))
	if len(kept) == 0 {
		t.Errorf("the replaced database is not kept: %s", out)
	}
	for _, stale := range []string{"-wal", "-shm"} {
		if _, err := os.Stat(filepath.Join(data, store.FileName+stale)); err == nil {
			t.Errorf("a stale %s is left beside the restored database", stale)
		}
	}
	s.launch(t)
	after := map[uint64]bool{}
	for _, id := range alertIDs(t, s) {
		after[id] = true
	}
	for _, id := range before {
		if !after[id] {
			t.Errorf("alert %d is not listed after the restore and restart", id)
		}
	}
}

// TestServeRefusesEmptyDatabase: a database file truncated to 0 bytes is
// not a new install: serve exits 1 naming the file and the fix, and
// touches nothing.
func TestServeRefusesEmptyDatabase(t *testing.T) {
	data := t.TempDir()
	db := filepath.Join(data, store.FileName)
	if err := os.WriteFile(db, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, errOut, code := runBinary(t, "serve", "--data", data, "--http", "127.0.0.1:0", "--netflow", "127.0.0.1:0", "--sflow", "127.0.0.1:0")
	for _, want := range []string{"refusing to open " + db, "it is empty (0 bytes)", "flowsentry restore FILE", "move the file away"} {
		if code != 1 || !strings.Contains(errOut, want) {
			t.Errorf("serve on an empty database: exit %d, stderr lacks %q:\n%s", code, want, errOut)
		}
	}
	if st, err := os.Stat(db); err != nil || st.Size() != 0 {
		t.Errorf("the empty database changed: %v, %v", st, err)
	}
	for _, side := range []string{"-wal", "-shm"} {
		if _, err := os.Stat(db + side); err == nil {
			t.Errorf("serve created %s", store.FileName+side)
		}
	}
}
