package main

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowsentry/flowsentry/gen"
	"github.com/flowsentry/flowsentry/store"
)

// The lifecycle timings of TestStalledStore: short, so that the whole test
// stays under a minute, and an update interval that is a whole number of
// the pipeline's 1 s ticks.
const (
	stallUpdateInterval = 2 * time.Second
	stallQuietPeriod    = 6 * time.Second
	// stallHold is how long the first stall holds the database's write
	// lock: well under the store's 10 s busy timeout, so that the
	// committer waits rather than fails.
	stallHold = 5 * time.Second
)

// stallGroups are the traffic groups of TestStalledStore and the
// destinations of their floods.
var stallGroups = map[string]netip.Prefix{"1": netip.MustParsePrefix("10.1.0.0/16"), "2": netip.MustParsePrefix("10.2.0.0/16")}

// TestStalledStore stalls the database under a running server (another
// process holds SQLite's write lock, as the sqlite3 shell or a backup
// would) while an alert becomes due, and checks the outbox contract: the
// pipeline, the rates and the API go on, the transitions wait in the
// outbox, no plugin hears of an alert before its CREATE is committed, and
// once the lock is released the plugin hears the CREATE once, then the
// UPDATEs at the update interval. Then it stalls the store again while an
// UPDATE of that alert and the CREATE of a second alert are due, kills the
// server (SIGKILL) in the stall, and restarts it on the same data: no
// alert ID is created twice, the first alert goes on with its ID, the
// second is created with a new ID, and every alert gets its DELETE.
func TestStalledStore(t *testing.T) {
	dir := t.TempDir()
	logFile := filepath.Join(dir, "calls.log")
	s := startServer(t, stallConfig(t, dir, logFile))
	db := stallOpenStore(t, filepath.Join(filepath.Dir(s.configPath), "data", store.FileName))
	heard := func() []call { return readCalls(t, logFile) }

	// Phase 1: the store stalls while the alert of traffic group 1
	// becomes due.
	records := s.metric(t, "flowsentry_pipeline_records_total")
	lock := stallLock(t, db)
	flood1 := stallFlood(t, s.netflow, stallGroups["1"], 7)
	stallWait(t, s, lock.taken.Add(stallHold-time.Second), "the CREATE waiting in the outbox during the stall", func() bool {
		return s.metric(t, "flowsentry_alert_open") == 1 && s.metric(t, "flowsentry_alert_outbox_transitions") > 0
	})
	// Detection goes on: records keep being processed and the API
	// serves the traffic group's rates, over the threshold.
	for range 2 {
		prev := records
		stallWait(t, s, lock.taken.Add(stallHold), "records processed during the stall", func() bool {
			records = s.metric(t, "flowsentry_pipeline_records_total")
			return records > prev
		})
	}
	stallWait(t, s, lock.taken.Add(stallHold), "the current packets-in rate of traffic group 1 over the threshold in the API", func() bool {
		return stallGroupRate(t, s, 1) > 100
	})
	var listed []struct {
		ID uint64 `json:"id"`
	}
	s.authGet(t, "/api/v1/alerts", &listed)
	if len(listed) != 0 {
		t.Errorf("the API lists alerts %+v during the stall; an alert is visible only once its CREATE is committed", listed)
	}
	time.Sleep(time.Until(lock.taken.Add(stallHold)))
	if calls := heard(); len(calls) != 0 {
		t.Fatalf("the plugin heard %v while the store was stalled; plugins hear of a transition only after its commit", stallEvents(calls))
	}
	if n := s.metric(t, "flowsentry_alert_outbox_transitions"); n == 0 {
		t.Fatalf("flowsentry_alert_outbox_transitions is 0 at the end of the stall, yet the plugin heard no CREATE")
	}
	if n := s.metric(t, "flowsentry_alert_events_total", `op="CREATE"`); n != 0 {
		t.Fatalf("flowsentry_alert_events_total{op=\"CREATE\"} is %v while the store was stalled, want 0", n)
	}
	released := lock.release(t)

	// The CREATE, issued in the stall, is committed and heard; the
	// UPDATEs follow.
	var calls []call
	stallWait(t, s, released.Add(3*stallUpdateInterval+4*time.Second), "the CREATE and two UPDATEs issued after the stall", func() bool {
		calls = heard()
		n := 0
		for _, c := range calls {
			if c.op == "UPDATE" && stallUTC(t, c, "LATEST_UTC").After(released) {
				n++
			}
		}
		return n >= 2
	})
	first := calls[0]
	if first.op != "CREATE" || first.env["TGRP"] != "1" {
		t.Fatalf("after the stall the plugin first heard %v, want the CREATE of traffic group 1", stallEvents(calls))
	}
	if at := stallHeardAt(t, first); at.Before(released) {
		t.Fatalf("the plugin heard the CREATE at %v, before the lock was released at %v", at.Format(time.StampMicro), released.Format(time.StampMicro))
	}
	if at := stallUTC(t, first, "EARLIEST_UTC"); at.Before(lock.taken) || at.After(released) {
		t.Errorf("the CREATE was issued at %v (EARLIEST_UTC), not in the stall (%v to %v)",
			at.Format(time.StampMicro), lock.taken.Format(time.StampMicro), released.Format(time.StampMicro))
	}
	idA := first.env["ID"]
	prev := first
	for _, c := range calls[1:] {
		if c.op != "UPDATE" || c.env["ID"] != idA {
			t.Fatalf("after the CREATE of alert %s the plugin heard %v, want its UPDATEs", idA, stallEvents(calls))
		}
		// LATEST_UTC is the tick that issued the call (the condition is
		// seen at every tick). UPDATEs issued in the stall were heard
		// with the CREATE, a newer one replacing an older one in the
		// action's queue; those issued after it come at the first tick
		// (1 s apart) at least update_interval after the previous call,
		// and are heard at once.
		issued, last := stallUTC(t, c, "LATEST_UTC"), stallUTC(t, prev, "LATEST_UTC")
		if gap := issued.Sub(last); gap < stallUpdateInterval {
			t.Errorf("alert %s: an UPDATE issued %v after the %s before it, want at least the update interval %v", idA, gap, prev.op, stallUpdateInterval)
		} else if last.After(released) && gap > stallUpdateInterval+time.Second+500*time.Millisecond {
			t.Errorf("alert %s: an UPDATE issued %v after the UPDATE before it, want the first tick after the update interval %v", idA, gap, stallUpdateInterval)
		}
		if delay := stallHeardAt(t, c).Sub(issued); issued.After(released) && delay > 1500*time.Millisecond {
			t.Errorf("alert %s: an UPDATE issued after the stall was heard %v later", idA, delay)
		}
		prev = c
	}
	if n := s.metric(t, "flowsentry_alert_store_errors_total"); n != 0 {
		t.Errorf("flowsentry_alert_store_errors_total is %v after a %v stall; the commit must wait for the lock (busy timeout), not fail", n, stallHold)
	}
	if got := stallStoredID(t, s, idA); got != idA {
		t.Fatalf("GET /api/v1/alerts/%s returned alert %q after its CREATE was heard", idA, got)
	}

	// Phase 2: the store stalls again while an UPDATE of alert A and the
	// CREATE of an alert of traffic group 2 are due, and the server is
	// killed in the stall.
	lock = stallLock(t, db)
	flood2 := stallFlood(t, s.netflow, stallGroups["2"], 8)
	// Two open alerts, one of them not committed, and at least one more
	// transition: traffic group 2's CREATE and alert A's UPDATE wait.
	stallWait(t, s, lock.taken.Add(8*time.Second), "traffic group 2's CREATE and an UPDATE waiting in the outbox during the second stall", func() bool {
		return s.metric(t, "flowsentry_alert_open") == 2 && s.metric(t, "flowsentry_alert_outbox_transitions") >= 2
	})
	s.kill(t)
	killed := time.Now()
	lock.release(t)
	before := heard()
	for _, c := range before {
		if c.env["TGRP"] != "1" {
			t.Fatalf("the plugin heard %s of alert %s of traffic group %s before it was committed", c.op, c.env["ID"], c.env["TGRP"])
		}
		// A call whose action was saved just before the lock was taken
		// may still have started in the stall; none can start later.
		if at := stallHeardAt(t, c); at.After(lock.taken.Add(time.Second)) {
			t.Errorf("the plugin heard %s of alert %s at %v, in the stall that began at %v", c.op, c.env["ID"], at.Format(time.StampMicro), lock.taken.Format(time.StampMicro))
		}
	}
	s.launch(t)
	restarted := time.Now()

	// Traffic goes on: alert A continues with its ID (or, had the
	// restart outlasted its quiet period, is deleted), and traffic group
	// 2 gets its CREATE, with a new ID.
	stallWait(t, s, time.Now().Add(4*stallUpdateInterval+2*time.Second), "alert "+idA+" to go on and traffic group 2's CREATE after the restart", func() bool {
		calls = heard()
		var contA, createB bool
		for _, c := range calls[len(before):] {
			contA = contA || c.env["ID"] == idA
			createB = createB || c.op == "CREATE" && c.env["TGRP"] == "2"
		}
		return contA && createB
	})
	flood1()
	flood2()
	stopped := time.Now()

	// Without traffic every alert ends after the quiet period.
	stallWait(t, s, time.Now().Add(stallQuietPeriod+stallUpdateInterval+8*time.Second), "the DELETE of every alert after the traffic stopped", func() bool {
		calls = heard()
		byID := stallByID(calls)
		for _, ev := range byID {
			if ev[len(ev)-1].op != "DELETE" {
				return false
			}
		}
		return len(byID) > 0
	})

	// Nothing the plugin heard is repeated or lost: one CREATE per alert
	// ID, first, then UPDATEs, then one DELETE; every alert heard of is
	// stored.
	maxBefore := uint64(0)
	for _, c := range before {
		maxBefore = max(maxBefore, stallID(t, c))
	}
	for id, ev := range stallByID(calls) {
		ops := opsOf(ev)
		if ops[0] != "CREATE" || ops[len(ops)-1] != "DELETE" || strings.Count(strings.Join(ops, " "), "CREATE") != 1 || strings.Count(strings.Join(ops, " "), "DELETE") != 1 {
			t.Errorf("alert %s: the plugin heard %v, want CREATE, UPDATEs, DELETE, each once but the UPDATEs", id, ops)
		}
		for i := 1; i < len(ev); i++ {
			if stallHeardAt(t, ev[i]).Before(stallHeardAt(t, ev[i-1])) {
				t.Errorf("alert %s: %s heard before the %s that precedes it in the log", id, ev[i].op, ev[i-1].op)
			}
			// Each CREATE or UPDATE carries a later observation than the
			// call before it (one sent twice would carry the same);
			// a DELETE the last one.
			if cur, last := stallUTC(t, ev[i], "LATEST_UTC"), stallUTC(t, ev[i-1], "LATEST_UTC"); cur.Before(last) || cur.Equal(last) && ev[i].op != "DELETE" {
				t.Errorf("alert %s: %s with LATEST_UTC %s after %s with %s: a call repeated or out of order",
					id, ev[i].op, ev[i].env["LATEST_UTC"], ev[i-1].op, ev[i-1].env["LATEST_UTC"])
			}
			if ev[i].env["TGRP"] != ev[0].env["TGRP"] || ev[i].env["AID"] != ev[0].env["AID"] {
				t.Errorf("alert %s: %s for traffic group %s action %s, its CREATE was for %s action %s",
					id, ev[i].op, ev[i].env["TGRP"], ev[i].env["AID"], ev[0].env["TGRP"], ev[0].env["AID"])
			}
		}
		if created := stallHeardAt(t, ev[0]); created.After(killed) && stallID(t, ev[0]) <= maxBefore {
			t.Errorf("alert %s was created after the restart with an ID not above %d, the highest heard before", id, maxBefore)
		}
		if got := stallStoredID(t, s, id); got != id {
			t.Errorf("alert %s, which the plugin heard of, is not stored: GET /api/v1/alerts/%s returned alert %q", id, id, got)
		}
	}
	var contA []string
	for _, c := range calls[len(before):] {
		if c.env["ID"] == idA {
			contA = append(contA, c.op)
		}
	}
	t.Logf("alert %s after the restart: %v; events heard: %v", idA, contA, stallEvents(calls))
	t.Logf("stall 1 released %v after it began; killed %v into stall 2; restart took %v; last DELETE %v after the traffic stopped",
		stallHold, killed.Sub(lock.taken).Round(time.Millisecond), restarted.Sub(killed).Round(time.Millisecond),
		stallHeardAt(t, calls[len(calls)-1]).Sub(stopped).Round(time.Millisecond))
}

// stallConfig is TestStalledStore's configuration: two traffic groups,
// a 2 s rates window (so a condition ends soon after its traffic), a
// packets-in template over both, attached to a plugin that records the
// time of each call.
func stallConfig(t *testing.T, dir, logFile string) string {
	t.Helper()
	plugins := filepath.Join(dir, "plugins")
	pdir := filepath.Join(plugins, "stallrec")
	if err := os.MkdirAll(pdir, 0o755); err != nil {
		t.Fatal(err)
	}
	const spec = `{
  "label": "Stall recorder",
  "buildDate": 1764028800000,
  "version": 1,
  "description": "Records the operation, alert, action, traffic group and time of each call.",
  "executable": "run.sh",
  "supportedAlertTypes": ["*"],
  "configurationFields": [
    {"label": "Log file", "key": "LOG_FILE", "allowOverride": false, "fieldspec": {"type": "text", "minlength": 1, "maxlength": 4096, "required": true}}
  ]
}
`
	// One printf, one write(2) in O_APPEND mode: calls of two actions
	// running at once do not interleave their records.
	const script = `#!/bin/sh
printf 'CALL %s\nID=%s\nAID=%s\nTGRP=%s\nEARLIEST_UTC=%s\nLATEST_UTC=%s\nHEARD_NS=%s\nEND\n' \
	"$1" "$ID" "$AID" "$TGRP" "$EARLIEST_UTC" "$LATEST_UTC" "$(date +%s%N)" >> "$LOG_FILE"
`
	if err := os.WriteFile(filepath.Join(pdir, "gui.json"), []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(pdir, "run.sh"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf(`plugin_dir: %s
admin:
  user: admin
  password: s3cret-pass
rates:
  window: 2s
traffic_groups:
  - id: 1
    name: alpha
    partition: 0
    cidrs: [%s]
  - id: 2
    name: beta
    partition: 0
    cidrs: [%s]
alerts:
  update_interval: %s
  quiet_period: %s
  max_age: 1h
instances:
  - id: 1
    cid: 0
    plugin: stallrec
    name: record calls
    values:
      LOG_FILE: %s
policies:
  - id: 50
    name: TG packets in
    cid: 0
    family: threshold
    target: traffic_groups
    object_type: TGRP
    threshold_type: packets_in
    threshold: 100
    severity: 4
    actions:
      - instance: 1
`, plugins, stallGroups["1"], stallGroups["2"], stallUpdateInterval, stallQuietPeriod, logFile)
}

// stallOpenStore opens the server's database from the test process, as
// another program would.
func stallOpenStore(t *testing.T, path string) *sql.DB {
	t.Helper()
	u := url.URL{Scheme: "file", Path: path, RawQuery: "_busy_timeout=10000"}
	db, err := sql.Open("sqlite", u.String())
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	return db
}

// storeLock is SQLite's write lock held by the test.
type storeLock struct {
	conn  *sql.Conn
	taken time.Time
	once  sync.Once
}

// stallLock takes the database's write lock: BEGIN IMMEDIATE on a
// dedicated connection (in WAL mode a writer excludes every other writer,
// readers go on). It waits for a write of the server in progress.
func stallLock(t *testing.T, db *sql.DB) *storeLock {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		conn.Close()
		t.Fatalf("taking the database's write lock: %v", err)
	}
	l := &storeLock{conn: conn, taken: time.Now()}
	// A failing test still releases the lock before the server's cleanup
	// stops it (cleanups run last in, first out).
	t.Cleanup(func() { l.release(t) })
	return l
}

// release rolls the lock's transaction back and returns the time just
// before it did.
func (l *storeLock) release(t *testing.T) time.Time {
	t.Helper()
	var at time.Time
	l.once.Do(func() {
		at = time.Now()
		if _, err := l.conn.ExecContext(context.Background(), "ROLLBACK"); err != nil {
			t.Errorf("releasing the database's write lock: %v", err)
		}
		if err := l.conn.Close(); err != nil {
			t.Errorf("closing the locking connection: %v", err)
		}
	})
	return at
}

// stallFlood sends NetFlow v9 toward dst, about 200 datagrams a second,
// until the returned function is called; that function waits for the
// sender to stop and may be called more than once.
func stallFlood(t *testing.T, addr string, dst netip.Prefix, seed uint64) func() {
	t.Helper()
	g, err := gen.New(gen.Config{Protocol: gen.NetFlowV9, SrcPrefix: netip.MustParsePrefix("198.18.0.0/15"),
		DstPrefix: dst, DstAddrs: 50, Seed: seed, Domain: uint32(seed)})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		defer conn.Close()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		var buf []byte
		for {
			for range 20 {
				buf = g.Append(buf[:0], time.Now().UnixNano())
				_, _ = conn.Write(buf) // refused while the server restarts
			}
			select {
			case <-quit:
				return
			case <-tick.C:
			}
		}
	}()
	var once sync.Once
	stop := func() { once.Do(func() { close(quit); <-done }) }
	t.Cleanup(stop)
	return stop
}

// stallWait polls cond every 50 ms until it holds, failing the test with
// what it waited for once deadline passes.
func stallWait(t *testing.T, s *server, deadline time.Time, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; server logs:\n%s", what, s.logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stallGroupRate is the current packets-in rate of traffic group id in
// the API.
func stallGroupRate(t *testing.T, s *server, id uint32) float64 {
	t.Helper()
	var groups []struct {
		ID  uint32 `json:"id"`
		Cur struct {
			PacketsIn float64 `json:"packets_in"`
		} `json:"cur"`
	}
	s.getJSON(t, "/api/v1/trafficgroups", &groups)
	for _, g := range groups {
		if g.ID == id {
			return g.Cur.PacketsIn
		}
	}
	return 0
}

// stallStoredID is the ID of the alert GET /api/v1/alerts/{id} returns;
// "0" when it has none.
func stallStoredID(t *testing.T, s *server, id string) string {
	t.Helper()
	var detail struct {
		Alert struct {
			ID uint64 `json:"id"`
		} `json:"alert"`
	}
	s.authGet(t, "/api/v1/alerts/"+id, &detail)
	return strconv.FormatUint(detail.Alert.ID, 10)
}

// stallHeardAt is when the plugin heard a call, by its own clock.
func stallHeardAt(t *testing.T, c call) time.Time {
	t.Helper()
	ns, err := strconv.ParseInt(c.env["HEARD_NS"], 10, 64)
	if err != nil {
		t.Fatalf("the plugin logged %s without its time: %v", c.op, err)
	}
	return time.Unix(0, ns)
}

// stallUTC reads a time the plugin got as SECONDS.MICROSECONDS.
func stallUTC(t *testing.T, c call, name string) time.Time {
	t.Helper()
	sec, us, ok := strings.Cut(c.env[name], ".")
	secs, err1 := strconv.ParseInt(sec, 10, 64)
	micros, err2 := strconv.ParseInt(us, 10, 64)
	if !ok || err1 != nil || err2 != nil || len(us) != 6 {
		t.Fatalf("the plugin got %s=%q in %s, want SECONDS.MICROSECONDS", name, c.env[name], c.op)
	}
	return time.Unix(secs, micros*1000)
}

// stallID is the alert ID of a call.
func stallID(t *testing.T, c call) uint64 {
	t.Helper()
	id, err := strconv.ParseUint(c.env["ID"], 10, 64)
	if err != nil || id == 0 {
		t.Fatalf("the plugin logged %s with ID %q", c.op, c.env["ID"])
	}
	return id
}

// stallByID groups calls by alert ID, in the order heard.
func stallByID(calls []call) map[string][]call {
	out := map[string][]call{}
	for _, c := range calls {
		out[c.env["ID"]] = append(out[c.env["ID"]], c)
	}
	return out
}

// stallEvents prints calls as OP(ID, TGRP) for failure messages.
func stallEvents(calls []call) []string {
	out := make([]string, 0, len(calls))
	for _, c := range calls {
		out = append(out, fmt.Sprintf("%s(alert %s, tgrp %s)", c.op, c.env["ID"], c.env["TGRP"]))
	}
	return slices.Clip(out)
}
