package api

import (
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/flowsentry/flowsentry/alert"
	"github.com/flowsentry/flowsentry/plugin"
)

// The limits of a TEST call from the API: it runs while the request
// waits, so the time limit stays well under the server's 60 s write
// timeout, and one call runs at a time (others wait for it).
const (
	pluginTestTimeout   = 20 * time.Second
	pluginTestKillGrace = 2 * time.Second
	pluginTestOutput    = 64 << 10
)

// PluginTest is the answer of POST /api/v1/instances/{id}/test: the
// outcome of running the instance's plugin with the argument TEST.
type PluginTest struct {
	// Instance and Plugin name what ran.
	Instance uint64 `json:"instance"`
	Plugin   string `json:"plugin"`
	// ExitCode is the plugin's exit code; -1 when it was killed or never
	// started.
	ExitCode int `json:"exit_code"`
	// Duration is the run time in seconds.
	Duration float64 `json:"duration"`
	// Output is the first 64 KiB of stdout and stderr together.
	Output string `json:"output"`
	// Truncated tells that output went beyond Output.
	Truncated bool `json:"truncated"`
	// Error is empty when the plugin ran and exited by itself; otherwise
	// "timeout", "signal: ..." or why it could not start.
	Error string `json:"error,omitempty"`
}

// pluginTester runs plugins in TEST mode for the API the way
// `flowsentry plugin test` does: the instance's values (defaults applied)
// and PATH as the whole environment, never through a shell, under a
// time limit, output capped.
type pluginTester struct {
	runner *plugin.Runner
	path   string // the PATH entry: the folder of flowsentry (and ftnbi) first
}

// newPluginTester returns the tester behind POST /api/v1/instances/{id}/test.
func newPluginTester() *pluginTester {
	runner, err := plugin.NewRunner(plugin.RunnerConfig{
		Timeout: pluginTestTimeout, KillGrace: pluginTestKillGrace, MaxConcurrent: 1, MaxOutput: pluginTestOutput,
	}, nil, nil)
	if err != nil { // the constants above are valid
		panic(err)
	}
	var dir string
	if exe, err := os.Executable(); err == nil {
		if resolved, err := filepath.EvalSymlinks(exe); err == nil {
			exe = resolved
		}
		dir = filepath.Dir(exe)
	}
	return &pluginTester{runner: runner, path: plugin.Path(dir, os.Getenv("PATH"))}
}

// test runs the {id} instance's plugin with the argument TEST; managers
// of the instance's partition and admins only.
func (t *pluginTester) test(w http.ResponseWriter, r *http.Request, a *Alerting, p Principal) {
	in, ok := visibleInstance(w, r, a, p)
	if !ok {
		return
	}
	if !p.mayChange(in.CID) {
		writeError(w, http.StatusForbidden, "user %s may not test plugin instances of partition %d; ask a manager of the partition or an admin", p.Name, in.CID)
		return
	}
	pl, found := a.Plugins.Get(in.Plugin)
	if !found {
		writeError(w, http.StatusConflict, "plugin instance %d: plugin %q is no longer in the plugin folder %s; install it there or delete the instance", in.ID, in.Plugin, a.Plugins.Dir())
		return
	}
	cfg, err := pl.ValidateValues(in.Values)
	if err != nil {
		writeError(w, http.StatusConflict, "plugin instance %d cannot be tested: %v; fix its values", in.ID, err)
		return
	}
	res := t.runner.Call(r.Context(), pl, alert.OpTest, plugin.Env(cfg, t.path))
	writeJSON(w, http.StatusOK, PluginTest{
		Instance: in.ID, Plugin: pl.Name, ExitCode: res.ExitCode, Duration: res.Duration.Seconds(),
		Output: string(res.Output), Truncated: res.Truncated, Error: res.Err,
	})
}
