package store

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowsentry/flowsentry/alert"
)

// TestBackupInspectRestore backs up a store that is being written to,
// restores the copy into another data folder over an existing database,
// and checks what Inspect refuses.
func TestBackupInspectRestore(t *testing.T) {
	ctx := context.Background()
	src := t.TempDir()
	s := openTest(t, src)
	saveAlerts(t, s, 1, 2, 3)

	// Writes go on while the backup runs.
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for id := uint64(100); ; id++ {
			select {
			case <-stop:
				return
			default:
			}
			if err := s.SaveAlert(ctx, &alert.Alert{ID: id, Earliest: t0}); err != nil {
				t.Errorf("SaveAlert during the backup: %v", err)
				return
			}
		}
	}()
	// A relative path, as an operator types it.
	t.Chdir(t.TempDir())
	info, err := Backup(ctx, src, "backup.db")
	close(stop)
	<-done
	if err != nil {
		t.Fatal(err)
	}
	if info.Path != "backup.db" || info.Schema != schemaVersion() || info.Alerts < 3 || info.Size == 0 {
		t.Errorf("Backup info: %+v", info)
	}
	if _, err := os.Stat("backup.db.partial"); !os.IsNotExist(err) {
		t.Errorf("backup.db.partial is left behind (stat: %v)", err)
	}

	dst := t.TempDir()
	old := openTest(t, dst)
	saveAlerts(t, old, 7)
	old.Close()
	now := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	got, kept, err := Restore(ctx, dst, "backup.db", now)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dst, FileName+".before-restore-20261206T100000Z"); kept != want {
		t.Errorf("kept %q, want %q", kept, want)
	}
	if got.Alerts != info.Alerts || got.Path != filepath.Join(dst, FileName) {
		t.Errorf("Restore info %+v, want the backup's %+v", got, info)
	}
	restored := openTest(t, dst)
	list, err := restored.Alerts(ctx, alert.Query{})
	if err != nil || len(list) != info.Alerts {
		t.Errorf("%d alerts after the restore (%v), want %d", len(list), err, info.Alerts)
	}
	keptInfo, err := Inspect(ctx, kept)
	if err != nil || keptInfo.Alerts != 1 || keptInfo.MaxAlertID != 7 {
		t.Errorf("the kept database: %+v, %v; want alert 7 only", keptInfo, err)
	}

	// A page of the copy overwritten: the integrity check fails.
	corrupt, err := os.ReadFile("backup.db")
	if err != nil {
		t.Fatal(err)
	}
	copy(corrupt[len(corrupt)/2:], strings.Repeat("\xff", 3000))
	if err := os.WriteFile("corrupt.db", corrupt, 0o600); err != nil {
		t.Fatal(err)
	}
	foreignDir := t.TempDir()
	foreign, err := sql.Open("sqlite", dsn(filepath.Join(foreignDir, "foreign.db"), nil))
	if err != nil {
		t.Fatal(err)
	}
	defer foreign.Close()
	if _, err := foreign.Exec(`CREATE TABLE moz_places (id INTEGER)`); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, path, want string }{
		{"corrupt", "corrupt.db", "corrupt.db is damaged (PRAGMA integrity_check: "},
		{"foreign", filepath.Join(foreignDir, "foreign.db"), "is a SQLite database but not flowsentry's"},
		{"missing", "missing.db", "missing.db does not exist: name a file that flowsentry backup wrote"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Inspect(ctx, tc.path)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Inspect error %v, want one containing %q", err, tc.want)
			}
			if _, _, err := Restore(ctx, dst, tc.path, now); err == nil {
				t.Errorf("Restore succeeded")
			}
		})
	}
}
