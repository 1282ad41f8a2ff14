// Package replaytest runs `flowsentry replay` for the tests of the
// detector families: it builds the binary once per test process, replays
// captures (the shared ones, or ones a test writes with Capture) under a
// configuration, and returns the alert events replay printed.
package replaytest

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// Event is one alert line of replay: the operation a plugin would get and
// the alert in the manual's JSON.
type Event struct {
	Op    string         `json:"op"`
	Alert map[string]any `json:"alert"`
}

// Type returns the event's alert_type.
func (e Event) Type() string { s, _ := e.Alert["alert_type"].(string); return s }

// Str returns a member of the alert as a string ("" when absent); numbers
// are printed as JSON has them.
func (e Event) Str(member string) string {
	switch v := e.Alert[member].(type) {
	case string:
		return v
	case nil:
		return ""
	default:
		b, _ := json.Marshal(v)
		return string(b)
	}
}

var (
	buildOnce sync.Once
	binary    string
	buildErr  error
)

// Binary returns the path of a flowsentry binary built from this
// repository, building it on the first call.
func Binary(tb testing.TB) string {
	tb.Helper()
	buildOnce.Do(func() {
		_, file, _, _ := runtime.Caller(0)
		root := filepath.Join(filepath.Dir(file), "..", "..")
		dir, err := os.MkdirTemp("", "replaytest")
		if err != nil {
			buildErr = err
			return
		}
		binary = filepath.Join(dir, "flowsentry")
		cmd := exec.Command("go", "build", "-o", binary, "./cmd/flowsentry")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = &buildError{err, string(out)}
		}
	})
	if buildErr != nil {
		tb.Fatalf("building flowsentry: %v", buildErr)
	}
	return binary
}

type buildError struct {
	err error
	out string
}

func (e *buildError) Error() string { return e.err.Error() + ": " + e.out }

// Run replays files under the configuration config (YAML; "" for the
// embedded default) and returns the alert events in the order replay
// printed them. The test fails when replay fails.
func Run(tb testing.TB, config string, files ...string) []Event {
	tb.Helper()
	args := []string{"replay"}
	if config != "" {
		p := filepath.Join(tb.TempDir(), "flowsentry.yaml")
		if err := os.WriteFile(p, []byte(config), 0o600); err != nil {
			tb.Fatal(err)
		}
		args = append(args, "--config", p)
	}
	cmd := exec.Command(Binary(tb), append(args, files...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		tb.Fatalf("flowsentry %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	var events []Event
	for _, line := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
		var v struct {
			Type string `json:"type"`
			Event
		}
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			tb.Fatalf("replay printed %q: %v", line, err)
		}
		if v.Type == "alert" {
			events = append(events, v.Event)
		}
	}
	return events
}

// Creates returns the CREATE events of alert type typ ("" for every
// type).
func Creates(events []Event, typ string) []Event {
	var out []Event
	for _, e := range events {
		if e.Op == "CREATE" && (typ == "" || e.Type() == typ) {
			out = append(out, e)
		}
	}
	return out
}
