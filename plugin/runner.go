package plugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flowsentry/flowsentry/alert"
)

// outputDrain is how long a call waits, once the plugin has exited, for
// the end of its output: processes it left behind may hold the pipe open.
const outputDrain = time.Second

// Result is the outcome of one plugin call.
type Result struct {
	Op alert.Op `json:"op"`
	// Start is when the process started (when the call was given up, if
	// it never started).
	Start time.Time `json:"start"`
	// Duration is from the start to the exit.
	Duration time.Duration `json:"duration_ns"`
	// ExitCode is the process's exit code; -1 when it was killed or never
	// started.
	ExitCode int `json:"exit_code"`
	// Err is empty when the process ran and exited by itself; otherwise
	// "timeout", "canceled", "signal: ..." or why it could not start, e.g.
	// "executable missing: ...". A non-zero exit code alone sets no Err.
	Err string `json:"error,omitempty"`
	// Output is the first MaxOutput bytes of stdout and stderr together.
	Output []byte `json:"output"`
	// Truncated tells that output went beyond Output; Discarded counts the
	// bytes thrown away.
	Truncated bool  `json:"truncated"`
	Discarded int64 `json:"discarded_bytes,omitempty"`
}

// OK reports whether the plugin ran and exited with code 0.
func (r *Result) OK() bool { return r.Err == "" && r.ExitCode == 0 }

// Runner calls plugins as child processes. Call is safe for concurrent
// use; at most MaxConcurrent calls run at once.
type Runner struct {
	cfg     RunnerConfig
	log     *slog.Logger
	metrics *metrics
	slots   chan struct{}
}

// NewRunner validates cfg and creates a runner; it starts nothing. reg
// and log may be nil.
func NewRunner(cfg RunnerConfig, reg prometheus.Registerer, log *slog.Logger) (*Runner, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("plugin runner metrics: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Runner{cfg: cfg, log: log, metrics: m, slots: make(chan struct{}, cfg.MaxConcurrent)}, nil
}

// Call runs p's executable with op as its only argument, in p's folder,
// with exactly env as its environment (nil is an empty environment), and
// waits for it. It waits for a free slot first. The call ends at the
// time limit or when ctx is done: the plugin's process group gets SIGTERM,
// then SIGKILL after the grace period. Failures are in the Result, never
// a panic; Call never returns before the process has exited.
func (r *Runner) Call(ctx context.Context, p *Plugin, op alert.Op, env []string) Result {
	res := Result{Op: op, Start: time.Now(), ExitCode: -1}
	name, label := "", opLabel(op)
	if p != nil {
		name = p.Name
	}
	switch {
	case p == nil:
		res.Err = "no plugin given"
	case label == opInvalid:
		res.Err = fmt.Sprintf("operation %q is not one of CREATE, UPDATE, DELETE, TEST", op)
	case p.Err != nil:
		res.Err = p.Err.Error()
	}
	if res.Err != "" {
		r.metrics.calls.WithLabelValues(name, label, resultError).Inc()
		return res
	}

	r.metrics.waiting.Inc()
	select {
	case r.slots <- struct{}{}:
		r.metrics.waiting.Dec()
	case <-ctx.Done():
		r.metrics.waiting.Dec()
		res.Err = "canceled before start: " + ctx.Err().Error()
		r.metrics.calls.WithLabelValues(name, label, resultCanceled).Inc()
		return res
	}
	r.metrics.running.Inc()
	result := r.run(ctx, p, op, env, &res)
	r.metrics.running.Dec()
	<-r.slots

	r.metrics.calls.WithLabelValues(name, label, result).Inc()
	if result != resultError {
		r.metrics.duration.WithLabelValues(name, label).Observe(res.Duration.Seconds())
	}
	if result == resultTimeout {
		r.metrics.timeouts.WithLabelValues(name).Inc()
	}
	if res.Truncated {
		r.metrics.truncated.WithLabelValues(name).Inc()
		r.metrics.discarded.WithLabelValues(name).Add(float64(res.Discarded))
	}
	return res
}

// CallNamed calls the plugin of reg named name as Call does; a name that
// is not in the plugin folder gives a Result with Err set.
func (r *Runner) CallNamed(ctx context.Context, reg *Registry, name string, op alert.Op, env []string) Result {
	p, ok := reg.Get(name)
	if !ok {
		r.metrics.calls.WithLabelValues(name, opLabel(op), resultError).Inc()
		return Result{Op: op, Start: time.Now(), ExitCode: -1,
			Err: fmt.Sprintf("plugin %q is not in the plugin folder %s; install it there or rescan", name, reg.Dir())}
	}
	return r.Call(ctx, p, op, env)
}

// opInvalid is the "op" label of calls with an unknown operation.
const opInvalid = "invalid"

// opLabel is the "op" label of a call.
func opLabel(op alert.Op) string {
	switch op {
	case alert.OpCreate, alert.OpUpdate, alert.OpDelete, alert.OpTest:
		return string(op)
	}
	return opInvalid
}

// run starts the process and waits for it; it returns the result label.
func (r *Runner) run(ctx context.Context, p *Plugin, op alert.Op, env []string, res *Result) string {
	if env == nil {
		env = []string{} // a nil Env would inherit the server's environment
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		res.Err = "cannot create the output pipe: " + err.Error()
		return resultError
	}
	defer pr.Close()
	cmd := &exec.Cmd{
		Path:        p.Executable,
		Args:        []string{p.Executable, string(op)},
		Dir:         p.Dir,
		Env:         env,
		Stdout:      pw,
		Stderr:      pw,
		SysProcAttr: &syscall.SysProcAttr{Setpgid: true},
	}
	res.Start = time.Now()
	err = cmd.Start()
	pw.Close()
	if err != nil {
		res.Err = startError(p, err)
		return resultError
	}

	out := &capture{max: r.cfg.MaxOutput}
	read := make(chan struct{})
	go func() {
		io.Copy(out, pr) //nolint:errcheck // ends at EOF, or with an error once pr is closed below
		close(read)
	}()
	// exited is closed when the plugin has exited, before it is reaped
	// (cmd.Wait below), so that its group ID is not reused meanwhile.
	exited := make(chan struct{})
	go func() {
		if err := waitExit(cmd.Process.Pid); err != nil {
			r.log.Warn("waiting for a plugin's exit failed; its leftover processes may survive", "plugin", p.Name, "err", err)
			cmd.Wait() //nolint:errcheck // the state is in cmd.ProcessState
		}
		close(exited)
	}()

	limit := time.NewTimer(r.cfg.Timeout)
	defer limit.Stop()
	stopped := ""
	select {
	case <-exited:
	case <-limit.C:
		stopped = resultTimeout
	case <-ctx.Done():
		stopped = resultCanceled
	}
	if stopped != "" {
		r.kill(p, cmd.Process.Pid, exited)
	}
	res.Duration = time.Since(res.Start)
	if n := endLeftovers(cmd.Process.Pid, tokenEntry(env)); n > 0 {
		r.metrics.leftovers.WithLabelValues(p.Name).Add(float64(n))
		r.log.Warn("plugin left processes behind; killed them", "plugin", p.Name, "op", string(op), "processes", n)
	}

	drain := time.NewTimer(outputDrain)
	select {
	case <-read:
	case <-drain.C:
		r.log.Warn("plugin left processes holding its output open; closing it", "plugin", p.Name, "op", string(op))
		pr.Close()
		<-read
	}
	drain.Stop()
	res.Output, res.Truncated, res.Discarded = out.buf, out.discarded > 0, out.discarded
	cmd.Wait() //nolint:errcheck // reaps the plugin (a no-op after a failed waitExit); the state is in cmd.ProcessState

	if stopped != "" {
		res.Err = stopped
		return stopped
	}
	ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
	res.ExitCode = cmd.ProcessState.ExitCode()
	switch {
	case ws.Signaled():
		res.Err = "signal: " + ws.Signal().String()
		return resultSignal
	case res.ExitCode != 0:
		return resultExit
	}
	return resultOK
}

// kill sends SIGTERM to the process group of the plugin, then SIGKILL when
// it has not exited after the grace period, and waits for the exit.
func (r *Runner) kill(p *Plugin, pid int, exited <-chan struct{}) {
	syscall.Kill(-pid, syscall.SIGTERM) //nolint:errcheck // the group may be gone already
	grace := time.NewTimer(r.cfg.KillGrace)
	defer grace.Stop()
	select {
	case <-exited:
	case <-grace.C:
		r.log.Warn("plugin did not exit on SIGTERM; sending SIGKILL", "plugin", p.Name, "grace", r.cfg.KillGrace)
		syscall.Kill(-pid, syscall.SIGKILL) //nolint:errcheck // as above
		<-exited
	}
}

// tokenEntry returns the TKN entry of env, "" when there is none.
func tokenEntry(env []string) string {
	for _, kv := range env {
		if strings.HasPrefix(kv, "TKN=") {
			return kv
		}
	}
	return ""
}

// startError says why the executable could not be started.
func startError(p *Plugin, err error) string {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Sprintf("executable missing: %s (or the interpreter its #! line names)", p.Executable)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Sprintf("executable %s may not be run: check that it has the x bit (chmod +x) and that the server may read its folder", p.Executable)
	case errors.Is(err, syscall.ENOEXEC):
		return fmt.Sprintf("executable %s is not a program this system runs; a script needs a #! line", p.Executable)
	}
	return fmt.Sprintf("cannot start %s: %v", p.Executable, err)
}

// capture keeps the first max bytes written to it and counts the rest.
type capture struct {
	max       int
	buf       []byte
	discarded int64
}

// Write never fails, so that the pipe is always drained.
func (c *capture) Write(b []byte) (int, error) {
	keep := min(len(b), c.max-len(c.buf))
	c.buf = append(c.buf, b[:keep]...)
	c.discarded += int64(len(b) - keep)
	return len(b), nil
}
