package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/flowsentry/flowsentry/alert"
	"github.com/flowsentry/flowsentry/plugin"
)

const pluginUsage = `usage: flowsentry plugin test DIR [--set KEY=VALUE ...] [--timeout D] [--url URL]

Loads the plugin in folder DIR, checks the configuration values given with
--set against its gui.json (defaults applied), and runs its executable with
the argument TEST and only the configuration values in the environment,
plus PATH (the folder of flowsentry, where ftnbi is installed, first) and
FLOWSENTRY_URL if --url is given. Prints the plugin's output and exit code;
exits 1 if the plugin or the values are invalid or the plugin fails.
`

// setFlags collects repeated --set KEY=VALUE flags.
type setFlags map[string]string

func (s setFlags) String() string { return "" }

func (s setFlags) Set(kv string) error {
	key, value, ok := strings.Cut(kv, "=")
	if !ok || key == "" {
		return fmt.Errorf("%q is not KEY=VALUE", kv)
	}
	if _, dup := s[key]; dup {
		return fmt.Errorf("%s is set twice", key)
	}
	s[key] = value
	return nil
}

func pluginCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "test" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
			fmt.Fprint(stdout, pluginUsage)
			return 0
		}
		fmt.Fprint(stderr, pluginUsage)
		return 2
	}
	fs := flag.NewFlagSet("plugin test", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, pluginUsage)
		fs.PrintDefaults()
	}
	values := setFlags{}
	fs.Var(values, "set", "configuration value `KEY=VALUE` (repeat for each key)")
	timeout := fs.Duration("timeout", plugin.DefaultRunnerConfig().Timeout, "time `limit` of the call")
	url := fs.String("url", "", "FLOWSENTRY_URL to pass, http://HOST:PORT of a running server (default: none)")
	// Flags may come before or after DIR.
	var dirs []string
	rest := args[1:]
	for {
		if err := fs.Parse(rest); err != nil {
			return 2
		}
		if fs.NArg() == 0 {
			break
		}
		dirs = append(dirs, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	if len(dirs) != 1 {
		fmt.Fprintf(stderr, "flowsentry plugin test: give one plugin folder, not %d\n\n", len(dirs))
		fs.Usage()
		return 2
	}

	p := plugin.LoadDir(dirs[0])
	for _, w := range p.Warnings {
		fmt.Fprintf(stderr, "flowsentry plugin test: warning: plugin %q: %s %s\n", p.Name, plugin.SpecFile, w)
	}
	if p.Err != nil {
		printErrors(stderr, p.Err)
		return 1
	}
	cfg, err := p.ValidateValues(values)
	if err != nil {
		printErrors(stderr, err)
		return 1
	}
	rc := plugin.DefaultRunnerConfig()
	rc.Timeout, rc.MaxConcurrent = *timeout, 1
	runner, err := plugin.NewRunner(rc, nil, nil)
	if err != nil {
		fmt.Fprintf(stderr, "flowsentry plugin test: --timeout: %v\n", err)
		return 2
	}
	extra := []string{plugin.Path(ownDir(), os.Getenv("PATH"))}
	if *url != "" {
		extra = append(extra, "FLOWSENTRY_URL="+*url)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res := runner.Call(ctx, p, alert.OpTest, plugin.Env(cfg, extra...))

	stdout.Write(res.Output)
	if len(res.Output) > 0 && res.Output[len(res.Output)-1] != '\n' {
		fmt.Fprintln(stdout)
	}
	if res.Truncated {
		fmt.Fprintf(stdout, "(output truncated: %d more bytes discarded)\n", res.Discarded)
	}
	fmt.Fprintf(stdout, "exit code %d after %v\n", res.ExitCode, res.Duration.Round(time.Millisecond))
	if res.Err != "" {
		fmt.Fprintf(stderr, "flowsentry plugin test: plugin %q: %s\n", p.Name, res.Err)
	}
	if !res.OK() {
		return 1
	}
	return 0
}

// printErrors prints each of the joined errors on its own line.
func printErrors(w io.Writer, err error) {
	for line := range strings.SplitSeq(err.Error(), "\n") {
		fmt.Fprintf(w, "flowsentry plugin test: %s\n", line)
	}
}

// ownDir is the folder of the flowsentry executable, where ftnbi is
// installed beside it; "" if unknown.
func ownDir() string {
	exe, err := os.Executable()
	if err != nil {
		return ""
	}
	if resolved, err := filepath.EvalSymlinks(exe); err == nil {
		exe = resolved
	}
	return filepath.Dir(exe)
}
