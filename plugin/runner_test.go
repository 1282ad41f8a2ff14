package plugin

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/flowsentry/flowsentry/alert"
)

// testRunner returns a runner with short limits for tests.
func testRunner(t testing.TB, concurrent int) *Runner {
	t.Helper()
	cfg := DefaultRunnerConfig()
	cfg.Timeout, cfg.KillGrace, cfg.MaxConcurrent = 300*time.Millisecond, 200*time.Millisecond, concurrent
	r, err := NewRunner(cfg, prometheus.NewRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// testPlugin loads a plugin of testdata/plugins.
func testPlugin(t testing.TB, name string) *Plugin {
	t.Helper()
	return LoadDir(filepath.Join("testdata", "plugins", name))
}

// groupAlive reports whether a process of group pgid is still running
// (zombies waiting for a parent to reap them do not count).
func groupAlive(t *testing.T, pgid int) bool {
	t.Helper()
	stats, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range stats {
		data, err := os.ReadFile(path)
		if err != nil {
			continue // gone meanwhile
		}
		// pid (comm) state ppid pgrp ...: comm may hold spaces.
		fields := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+1:]))
		if len(fields) > 2 && fields[2] == strconv.Itoa(pgid) && fields[0] != "Z" {
			return true
		}
	}
	return false
}

func TestCall(t *testing.T) {
	okDir, err := filepath.EvalSymlinks(testPlugin(t, "ok").Dir)
	if err != nil {
		t.Fatal(err)
	}
	pidDir := t.TempDir()
	cases := []struct {
		name   string
		plugin string
		op     alert.Op
		env    []string
		want   Result // Start, Duration and Discarded are checked apart
		result string // the "result" label counted
		// minDur and maxDur bound the duration.
		minDur, maxDur time.Duration
		// pidfile names the file the plugin writes its process group to.
		pidfile string
	}{
		{
			name: "ok, exact environment", plugin: "ok", op: alert.OpCreate,
			env:    Env(map[string]string{"EMAIL_TO": "ops"}, "ID=1004", "TKN=abc", Path("/usr/bin", "/bin")),
			want:   Result{Op: alert.OpCreate, ExitCode: 0, Output: []byte("ok 1 CREATE\n" + okDir + "\nEMAIL_TO=ops\nID=1004\nPATH=/usr/bin:/bin\nTKN=abc\n")},
			result: resultOK, maxDur: 5 * time.Second,
		},
		{
			// tr is found without PATH: sh falls back to its default path.
			name: "nil environment inherits nothing", plugin: "ok", op: alert.OpTest,
			want:   Result{Op: alert.OpTest, ExitCode: 0, Output: []byte("ok 1 TEST\n" + okDir + "\n")},
			result: resultOK, maxDur: 5 * time.Second,
		},
		{
			name: "exits 1", plugin: "fail", op: alert.OpUpdate,
			want:   Result{Op: alert.OpUpdate, ExitCode: 1, Output: []byte("cannot reach the mitigation device\n")},
			result: resultExit, maxDur: 5 * time.Second,
		},
		{
			name: "crashes", plugin: "crash", op: alert.OpDelete,
			want:   Result{Op: alert.OpDelete, ExitCode: -1, Err: "signal: segmentation fault", Output: []byte("about to crash\n")},
			result: resultSignal, maxDur: 5 * time.Second,
		},
		{
			name: "hangs: SIGTERM", plugin: "hang", op: alert.OpCreate, pidfile: "hang",
			env:    []string{"PIDFILE=" + filepath.Join(pidDir, "hang")},
			want:   Result{Op: alert.OpCreate, ExitCode: -1, Err: "timeout", Output: []byte("hanging\n")},
			result: resultTimeout, minDur: 300 * time.Millisecond, maxDur: 5 * time.Second,
		},
		{
			name: "ignores SIGTERM: SIGKILL after the grace", plugin: "stubborn", op: alert.OpCreate, pidfile: "stubborn",
			env:    []string{"PIDFILE=" + filepath.Join(pidDir, "stubborn")},
			want:   Result{Op: alert.OpCreate, ExitCode: -1, Err: "timeout", Output: []byte("ignoring SIGTERM\n")},
			result: resultTimeout, minDur: 500 * time.Millisecond, maxDur: 5 * time.Second,
		},
		{
			name: "prints 100 MB", plugin: "flood", op: alert.OpCreate,
			want:   Result{Op: alert.OpCreate, ExitCode: 0, Output: make([]byte, 64<<10), Truncated: true, Discarded: 100_000_000 - 64<<10},
			result: resultOK, maxDur: 5 * time.Second,
		},
		{
			name: "leaves a process holding its output", plugin: "orphan", op: alert.OpCreate,
			want:   Result{Op: alert.OpCreate, ExitCode: 0, Output: []byte("done, but not quite\n")},
			result: resultOK, maxDur: 2 * time.Second,
		},
		{
			name: "missing executable", plugin: "missing", op: alert.OpCreate,
			want: Result{Op: alert.OpCreate, ExitCode: -1,
				Err: `plugin "missing": executable missing: ` + testPlugin(t, "missing").Executable + `; put the program there or correct "executable" in gui.json`},
			result: resultError,
		},
		{
			name: "not executable", plugin: "noexec", op: alert.OpCreate,
			want: Result{Op: alert.OpCreate, ExitCode: -1,
				Err: `plugin "noexec": executable ` + testPlugin(t, "noexec").Executable + ` is not executable; run chmod +x on it`},
			result: resultError,
		},
		{
			name: "unknown operation", plugin: "ok", op: "START",
			want:   Result{Op: "START", ExitCode: -1, Err: `operation "START" is not one of CREATE, UPDATE, DELETE, TEST`},
			result: resultError,
		},
	}
	r := testRunner(t, 8)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := testPlugin(t, c.plugin)
			before := time.Now()
			got := r.Call(context.Background(), p, c.op, c.env)
			if got.Start.Before(before) || got.Start.After(time.Now()) {
				t.Errorf("Start %v is not within the call", got.Start)
			}
			if got.Duration < c.minDur || (c.maxDur > 0 && got.Duration > c.maxDur) {
				t.Errorf("Duration %v, want within [%v, %v]", got.Duration, c.minDur, c.maxDur)
			}
			got.Start, got.Duration = time.Time{}, 0
			if diff := cmp.Diff(got, c.want); diff != "" {
				t.Errorf("result (-got +want):\n%s", diff)
			}
			op := string(c.op)
			if c.op == "START" {
				op = "invalid"
			}
			if n := testutil.ToFloat64(r.metrics.calls.WithLabelValues(c.plugin, op, c.result)); n < 1 {
				t.Errorf("calls_total{plugin=%q,op=%q,result=%q} = %v, want at least 1", c.plugin, op, c.result, n)
			}
			if c.pidfile == "" {
				return
			}
			data, err := os.ReadFile(filepath.Join(pidDir, c.pidfile))
			if err != nil {
				t.Fatal(err)
			}
			pgid, err := strconv.Atoi(strings.TrimSpace(string(data)))
			if err != nil {
				t.Fatal(err)
			}
			for deadline := time.Now().Add(2 * time.Second); groupAlive(t, pgid); {
				if time.Now().After(deadline) {
					t.Fatalf("processes of group %d outlived the call", pgid)
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
	if got := testutil.ToFloat64(r.metrics.timeouts.WithLabelValues("stubborn")); got != 1 {
		t.Errorf("call_timeouts_total{plugin=stubborn} = %v, want 1", got)
	}
	if got := testutil.ToFloat64(r.metrics.truncated.WithLabelValues("flood")); got != 1 {
		t.Errorf("output_truncated_total{plugin=flood} = %v, want 1", got)
	}
	if got := testutil.ToFloat64(r.metrics.discarded.WithLabelValues("flood")); got != 100_000_000-64<<10 {
		t.Errorf("output_discarded_bytes_total{plugin=flood} = %v", got)
	}
	if got := testutil.CollectAndCount(r.metrics.duration); got == 0 {
		t.Error("no call duration observed")
	}
}

// TestCallEndsLeftovers checks that the processes a plugin leaves behind,
// in its process group or out of it (setsid), are gone when the call
// returns, and that none is left a zombie of the server.
func TestCallEndsLeftovers(t *testing.T) {
	cases := []struct {
		name   string
		op     alert.Op
		result string
	}{
		{name: "plugin exits", op: alert.OpCreate, result: resultOK},
		{name: "plugin times out", op: alert.OpUpdate, result: resultTimeout},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := testRunner(t, 1)
			r.cfg.Timeout = 500 * time.Millisecond
			token := "TKN=leftovers-" + strconv.FormatInt(time.Now().UnixNano(), 16)
			res := r.Call(context.Background(), testPlugin(t, "leftovers"), c.op, []string{token, "PATH=/usr/bin:/bin"})
			if want := map[string]string{resultOK: "", resultTimeout: "timeout"}[c.result]; res.Err != want || res.Duration > 5*time.Second {
				t.Fatalf("call: %+v (%s), want Err %q", res, res.Output, want)
			}
			var pids []int
			for _, f := range strings.Fields(string(res.Output)) {
				pid, err := strconv.Atoi(f)
				if err != nil {
					t.Fatalf("output %q: %v", res.Output, err)
				}
				pids = append(pids, pid)
			}
			if len(pids) != 3 {
				t.Fatalf("output %q, want 3 PIDs", res.Output)
			}
			// Killed processes may take a moment to be reaped by their parent.
			for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(20 * time.Millisecond) {
				alive := running(t, pids, token)
				if len(alive) == 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("processes outlived the call: %v", alive)
				}
			}
			if n := testutil.ToFloat64(r.metrics.leftovers.WithLabelValues("leftovers")); n < 3 {
				t.Errorf("leftover_processes_killed_total = %v, want at least 3", n)
			}
		})
	}
}

// running returns the processes that still run (not zombies) or are
// zombies of this process, among pids and those whose environment holds
// the entry token.
func running(t *testing.T, pids []int, token string) []string {
	t.Helper()
	var out []string
	stats, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range stats {
		data, err := os.ReadFile(path)
		if err != nil {
			continue // gone meanwhile
		}
		pid, _ := strconv.Atoi(strings.Split(path, "/")[2])
		// pid (comm) state ppid ...: comm may hold spaces.
		fields := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+1:]))
		if len(fields) < 2 {
			continue
		}
		zombie := fields[0] == "Z"
		if zombie && fields[1] != strconv.Itoa(os.Getpid()) {
			continue // its parent reaps it
		}
		env, _ := os.ReadFile(filepath.Join(filepath.Dir(path), "environ"))
		if slices.Contains(pids, pid) || slices.Contains(strings.Split(string(env), "\x00"), token) {
			cmdline, _ := os.ReadFile(filepath.Join(filepath.Dir(path), "cmdline"))
			out = append(out, fmt.Sprintf("%d %q (state %s, parent %s, %s)", pid, cmdline, fields[0], fields[1], strings.Join(fields[2:4], " ")))
		}
	}
	return out
}

func TestCallExecutableGone(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "gone")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "gui.json"), []byte(guiJSON(``, ``)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "run.sh"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	p := LoadDir(dir)
	if p.Err != nil {
		t.Fatal(p.Err)
	}
	if err := os.Remove(p.Executable); err != nil {
		t.Fatal(err)
	}
	got := testRunner(t, 1).Call(context.Background(), p, alert.OpCreate, nil)
	want := "executable missing: " + p.Executable + " (or the interpreter its #! line names)"
	if got.Err != want || got.ExitCode != -1 {
		t.Errorf("got %q, exit code %d; want %q, -1", got.Err, got.ExitCode, want)
	}
}

func TestCallNamed(t *testing.T) {
	reg, _ := Load("testdata/plugins")
	r := testRunner(t, 1)
	if got := r.CallNamed(context.Background(), reg, "fail", alert.OpCreate, nil); got.ExitCode != 1 {
		t.Errorf("fail: %+v", got)
	}
	got := r.CallNamed(context.Background(), reg, "sms", alert.OpCreate, nil)
	want := `plugin "sms" is not in the plugin folder testdata/plugins; install it there or rescan`
	if got.Err != want || got.ExitCode != -1 || got.Op != alert.OpCreate {
		t.Errorf("got %+v, want Err %q", got, want)
	}
	if n := testutil.ToFloat64(r.metrics.calls.WithLabelValues("sms", "CREATE", resultError)); n != 1 {
		t.Errorf("calls_total of sms: %v, want 1", n)
	}
}

func TestCallNilPlugin(t *testing.T) {
	got := testRunner(t, 1).Call(context.Background(), nil, alert.OpCreate, nil)
	if got.Err != "no plugin given" || got.ExitCode != -1 {
		t.Errorf("got %+v", got)
	}
}

// TestConcurrencyBound runs six calls of 300 ms through two slots.
func TestConcurrencyBound(t *testing.T) {
	r := testRunner(t, 2)
	r.cfg.Timeout = 10 * time.Second
	p := testPlugin(t, "slow")
	slots := t.TempDir()
	start := time.Now()
	var wg sync.WaitGroup
	for range 6 {
		wg.Go(func() {
			if res := r.Call(context.Background(), p, alert.OpUpdate, []string{"SLOTS=" + slots, "PATH=/usr/bin:/bin"}); !res.OK() {
				t.Errorf("call failed: %+v", res)
			}
		})
	}
	wg.Wait()
	if elapsed := time.Since(start); elapsed < 900*time.Millisecond {
		t.Errorf("6 calls of 300 ms through 2 slots took %v, want at least 900ms", elapsed)
	}
	seen, err := filepath.Glob(filepath.Join(slots, "seen.*"))
	if err != nil || len(seen) != 6 {
		t.Fatalf("%d calls noted what they saw (%v), want 6", len(seen), err)
	}
	most := 0
	for _, path := range seen {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		n, err := strconv.Atoi(strings.TrimSpace(string(data)))
		if err != nil {
			t.Fatal(err)
		}
		most = max(most, n)
	}
	if most < 1 || most > 2 {
		t.Errorf("at most %d calls ran at once, want 1 or 2", most)
	}
}

// TestFaultsContained calls every faulty plugin at once: a good plugin
// called meanwhile answers long before the hanging ones are stopped.
func TestFaultsContained(t *testing.T) {
	r := testRunner(t, 8)
	r.cfg.Timeout = 3 * time.Second
	type done struct {
		name string
		res  Result
		at   time.Duration
	}
	results := make(chan done, 8)
	start := time.Now()
	for _, name := range []string{"hang", "stubborn", "flood", "crash", "fail", "missing", "noexec"} {
		go func() {
			results <- done{name, r.Call(context.Background(), testPlugin(t, name), alert.OpCreate, nil), time.Since(start)}
		}()
	}
	time.Sleep(100 * time.Millisecond) // let the faulty calls start first
	good := r.Call(context.Background(), testPlugin(t, "ok"), alert.OpCreate, nil)
	goodAt := time.Since(start)
	if !good.OK() || goodAt > 2*time.Second {
		t.Errorf("the good plugin answered %+v after %v, want success before the hanging calls time out", good, goodAt)
	}
	got := map[string]string{}
	for range 7 {
		d := <-results
		got[d.name] = d.res.Err
		if d.name == "hang" && d.at < goodAt {
			t.Errorf("the hanging call ended (%v) before the good one (%v)", d.at, goodAt)
		}
	}
	for name, want := range map[string]string{"hang": "timeout", "stubborn": "timeout", "flood": "", "crash": "signal: segmentation fault", "fail": ""} {
		if got[name] != want {
			t.Errorf("%s: Err %q, want %q", name, got[name], want)
		}
	}
	for _, name := range []string{"missing", "noexec"} {
		if !strings.HasPrefix(got[name], `plugin "`+name+`": executable`) {
			t.Errorf("%s: Err %q, want the executable's problem", name, got[name])
		}
	}
}

func TestCallCanceled(t *testing.T) {
	r := testRunner(t, 1)
	r.cfg.Timeout = 10 * time.Second
	ctx, cancel := context.WithCancel(context.Background())
	running := make(chan Result)
	go func() { running <- r.Call(ctx, testPlugin(t, "hang"), alert.OpCreate, nil) }()
	// The only slot is taken: a second call gives up waiting.
	for testutil.ToFloat64(r.metrics.running) != 1 {
		time.Sleep(5 * time.Millisecond)
	}
	waitCtx, waitCancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer waitCancel()
	queued := r.Call(waitCtx, testPlugin(t, "ok"), alert.OpCreate, nil)
	if want := "canceled before start: context deadline exceeded"; queued.Err != want || queued.ExitCode != -1 {
		t.Errorf("queued call: got %q, %d; want %q, -1", queued.Err, queued.ExitCode, want)
	}
	cancel()
	got := <-running
	if got.Err != "canceled" || got.ExitCode != -1 || got.Duration > 5*time.Second {
		t.Errorf("canceled call: %+v", got)
	}
	if n := testutil.ToFloat64(r.metrics.calls.WithLabelValues("ok", "CREATE", resultCanceled)); n != 1 {
		t.Errorf("canceled calls of ok: %v, want 1", n)
	}
}

func TestRunnerConfig(t *testing.T) {
	cfg := RunnerConfig{Timeout: 0, KillGrace: -time.Second, MaxConcurrent: 0, MaxOutput: -1}
	_, err := NewRunner(cfg, nil, nil)
	want := []string{
		"timeout: is 0s; give a positive duration such as 60s",
		"kill_grace: is -1s; give a duration of 0 or more, such as 5s",
		"max_concurrent: is 0; give 1 or more, such as 8",
		"max_output: is -1; give a number of bytes of 0 or more, such as 65536",
	}
	if diff := cmp.Diff(errorLines(err), want); diff != "" {
		t.Errorf("errors (-got +want):\n%s", diff)
	}
	def := DefaultRunnerConfig()
	if err := def.Validate(); err != nil {
		t.Errorf("the defaults are invalid: %v", err)
	}
}

// BenchmarkCall measures the dispatch overhead of a call: spawning
// /bin/true through the runner and collecting its result.
//
//	go test ./plugin -run '^$' -bench Call -benchmem -count=6 -cpu 1,2 | tee new.txt; benchstat old.txt new.txt
func BenchmarkCall(b *testing.B) {
	dir := filepath.Join(b.TempDir(), "true")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "gui.json"), []byte(strings.Replace(guiJSON(``, ``), "run.sh", "true", 1)), 0o644); err != nil {
		b.Fatal(err)
	}
	if err := os.Symlink("/bin/true", filepath.Join(dir, "true")); err != nil {
		b.Fatal(err)
	}
	p := LoadDir(dir)
	if p.Err != nil {
		b.Fatal(p.Err)
	}
	r := testRunner(b, 8)
	r.cfg.Timeout = time.Minute
	env := Env(map[string]string{"EMAIL_TO": "ops"}, "ID=1", "AID=2", "TKN=0123456789abcdef0123456789abcdef", Path("/usr/bin"))
	ctx := context.Background()
	for b.Loop() {
		if res := r.Call(ctx, p, alert.OpUpdate, env); !res.OK() {
			b.Fatalf("call failed: %+v", res)
		}
	}
}
