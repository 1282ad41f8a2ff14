package store

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowsentry/flowsentry/action"
	"github.com/flowsentry/flowsentry/alert"
	"github.com/flowsentry/flowsentry/alertindex"
	"github.com/flowsentry/flowsentry/detect"
	"github.com/flowsentry/flowsentry/detect/newserver"
	"github.com/flowsentry/flowsentry/history"
	"github.com/flowsentry/flowsentry/plugin"
	"github.com/flowsentry/flowsentry/rates"
)

// releaseDB is a database written by the release of 2026-12-06 (schema
// version 7), one of each kind of record in it. Regenerate it — only
// while the schema is still the one of that release — with
//
//	go test ./store/ -run TestUpgradeFromRelease -update-release-db
var releaseDB = filepath.Join("testdata", "release-2026-12-06.db")

var updateReleaseDB = flag.Bool("update-release-db", false, "regenerate "+releaseDB+" (see its comment)")

// releaseSchema is the schema version of releaseDB.
const releaseSchema = 7

// fillRelease writes one record of each kind into s.
func fillRelease(t *testing.T, s *Store) {
	t.Helper()
	ctx := context.Background()
	a := &alert.Alert{ID: 41, Policy: 5, Key: "TGRP/1", Type: "threshold", Severity: 4, Earliest: t0, Latest: t0.Add(time.Minute), LastCall: t0}
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	must("reserveID", reserveID(ctx, s.w, "alert", a.ID)) // as if 40 alerts came before
	must("SaveAlerts", s.SaveAlerts(ctx, []*alert.Alert{a}))
	must("SavePolicy", s.SavePolicy(ctx, 5, []byte(`{"name":"web packets in"}`)))
	in := plugin.Instance{CID: 0, Plugin: "email", Name: "ops mail", Values: map[string]string{"EMAIL_USERNAME": "ops"}}
	must("SaveInstance", s.SaveInstance(ctx, &in))
	must("SaveAction", s.SaveAction(ctx, &action.Action{ID: 3, Alert: 41, Policy: 5, Instance: in.ID, Plugin: "email",
		State: action.StateEnded, Created: t0, Updated: t0}))
	must("AddCall", s.AddCall(ctx, &action.Call{Action: 3, Op: alert.OpCreate, Start: t0, Duration: time.Second, Output: []byte("sent")}))
	must("CreateUser", s.CreateUser(ctx, User{Name: "ann", Role: RoleViewer, CIDs: []uint32{0}}, "ann-password-1"))
	must("SaveBaselines", s.SaveBaselines(ctx, []detect.Baseline{{Policy: 5, Key: rates.Key{Kind: rates.KindGroup, Group: 1}, Value: 12.5, Samples: 3, Updated: t0}}))
	must("AddLearnedServices", s.AddLearnedServices(ctx, newserver.State{
		Entries: []newserver.Entry{{Policy: 6, Server: netip.MustParseAddr("10.0.0.1"), Proto: 6, Port: 443, Learned: t0}}}))
	must("WriteHistory", s.WriteHistory(ctx, history.Batch{Time: t0, Entries: []history.Entry{{Key: rates.Key{Kind: rates.KindGroup, Group: 1}}}}))
	must("AddNote", s.AddNote(ctx, &alertindex.Note{Alert: 41, User: "ann", Time: t0, Text: "seen @ddos"}))
	_, err := s.CreateToken(ctx, Token{Hash: []byte("token-hash"), User: "ann", Name: "ci", Created: t0})
	must("CreateToken", err)
	must("AddAudit", s.AddAudit(ctx, AuditEntry{Time: t0, User: "ann", Method: "POST", Path: "/api/v1/alerts/41/notes", Status: 201}))
}

// TestUpgradeFromRelease opens the kept database of the last release with
// this binary: every record is still there. A copy whose schema version
// is raised above this binary's is refused, naming both versions and the
// fix.
func TestUpgradeFromRelease(t *testing.T) {
	ctx := context.Background()
	if *updateReleaseDB {
		if schemaVersion() != releaseSchema {
			t.Fatalf("this binary writes schema version %d, not %d: the release database cannot be regenerated any more", schemaVersion(), releaseSchema)
		}
		dir := t.TempDir()
		s := openTest(t, dir)
		fillRelease(t, s)
		s.Close()
		os.Remove(releaseDB)
		if _, err := Backup(ctx, dir, releaseDB); err != nil {
			t.Fatal(err)
		}
	}
	copyRelease := func(t *testing.T) string {
		dir := t.TempDir()
		if err := copyFile(releaseDB, filepath.Join(dir, FileName)); err != nil {
			t.Fatal(err)
		}
		return dir
	}

	t.Run("opens and keeps every record", func(t *testing.T) {
		s := openTest(t, copyRelease(t))
		if got := versions(t, s.dir); len(got) != schemaVersion() {
			t.Errorf("schema versions after opening: %v, want 1 to %d", got, schemaVersion())
		}
		check := func(what string, n int, err error) {
			t.Helper()
			if err != nil || n != 1 {
				t.Errorf("%s: %d, %v; want 1", what, n, err)
			}
		}
		alerts, err := s.Alerts(ctx, alert.Query{})
		check("alerts", len(alerts), err)
		if len(alerts) == 1 && (alerts[0].ID != 41 || alerts[0].Key != "TGRP/1" || !alerts[0].Earliest.Equal(t0)) {
			t.Errorf("alert: %+v", alerts[0])
		}
		policies, err := s.Policies(ctx)
		check("policies", len(policies), err)
		if string(policies[5]) != `{"name":"web packets in"}` {
			t.Errorf("policy 5: %q", policies[5])
		}
		instances, err := s.Instances(ctx)
		check("instances", len(instances), err)
		if len(instances) == 1 && instances[0].Values["EMAIL_USERNAME"] != "ops" {
			t.Errorf("instance: %+v", instances[0])
		}
		actions, err := s.Actions(ctx, 41)
		check("actions", len(actions), err)
		calls, err := s.Calls(ctx, 3)
		check("calls", len(calls), err)
		if len(calls) == 1 && string(calls[0].Output) != "sent" {
			t.Errorf("call: %+v", calls[0])
		}
		if _, err := s.Authenticate(ctx, "ann", "ann-password-1"); err != nil {
			t.Errorf("the stored user does not log in: %v", err)
		}
		baselines, err := s.Baselines(ctx)
		check("baselines", len(baselines), err)
		learned, err := s.LearnedServices(ctx)
		check("learned services", len(learned.Entries), err)
		series, err := s.HistorySeries(ctx)
		check("history series", len(series), err)
		notes, err := s.Notes(ctx, 41)
		check("notes", len(notes), err)
		tokens, err := s.Tokens(ctx, "ann")
		check("tokens", len(tokens), err)
		audit, err := s.Audit(ctx, AuditQuery{Limit: 10})
		check("audit entries", len(audit), err)
		// New records go on from the stored sequences.
		id, err := s.NextAlertID(ctx)
		if err != nil || id != 42 {
			t.Errorf("the next alert ID is %d (%v), want 42", id, err)
		}
	})

	t.Run("a newer release's database is refused", func(t *testing.T) {
		dir := copyRelease(t)
		db, err := sql.Open("sqlite", dsn(filepath.Join(dir, FileName), nil))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(`INSERT INTO schema_version (version, applied) VALUES (?, 0)`, schemaVersion()+1); err != nil {
			t.Fatal(err)
		}
		db.Close()
		want := fmt.Sprintf("has schema version %d, newer than version %d that this flowsentry knows: upgrade flowsentry", schemaVersion()+1, schemaVersion())
		s, err := Open(ctx, dir, nil)
		if err == nil {
			s.Close()
			t.Fatalf("Open succeeded, want an error containing %q", want)
		}
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Open error:\n%v\nwant it to contain\n%s", err, want)
		}
		if _, err := Inspect(ctx, filepath.Join(dir, FileName)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Inspect error:\n%v\nwant it to contain\n%s", err, want)
		}
	})
}
