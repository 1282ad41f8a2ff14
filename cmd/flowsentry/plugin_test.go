package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// copyPlugin copies the plugin folder src into a temporary folder, so that
// what the plugin writes stays out of the repository.
func copyPlugin(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), filepath.Base(src))
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	return dst
}

func TestPluginCmd(t *testing.T) {
	email := copyPlugin(t, "../../examples/email")
	warnings := `flowsentry plugin test: warning: plugin "email": gui.json line 30, column 5: missing ',' between '}' and '{'; assumed one
flowsentry plugin test: warning: plugin "email": gui.json line 47, column 208: trailing ',' before '}'; ignored
`
	testdata := "../../plugin/testdata/plugins/"
	abs, err := filepath.Abs(testdata)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name       string
		args       []string
		code       int
		stdout     string // a regular expression matching all of it
		stderr     string // the exact text, or a prefix when ending in "..."
		calledWith []string
	}{
		{
			name:       "example plugin, defaults applied",
			args:       []string{"test", email, "--set", "EMAIL_USERNAME=ops", "--set", "EMAIL_BODY=alert: x=1"},
			stdout:     `^email plugin: configuration received, mail port 587\nexit code 0 after \d+ms\n$`,
			stderr:     warnings,
			calledWith: []string{"EMAIL_BODY=alert: x=1", "EMAIL_MAILPORT=587", "EMAIL_USERNAME=ops", "PATH=", "PWD=" + email},
		},
		{
			name:       "flags before the folder, and a URL",
			args:       []string{"test", "--set", "EMAIL_PASSWORD=pw", "--url", "http://127.0.0.1:8080", email},
			stdout:     `^email plugin: configuration received, mail port 587\nexit code 0 after \d+ms\n$`,
			stderr:     warnings,
			calledWith: []string{"EMAIL_MAILPORT=587", "EMAIL_PASSWORD=(hidden)", "FLOWSENTRY_URL=http://127.0.0.1:8080", "PATH=", "PWD=" + email},
		},
		{
			name:   "invalid values",
			args:   []string{"test", email, "--set", "EMAIL_MAILPORT=70000", "--set", "EMAIL_CC=x"},
			code:   1,
			stdout: `^$`,
			stderr: warnings + `flowsentry plugin test: plugin "email": "EMAIL_CC": is not a configuration key of this plugin; its keys are EMAIL_USERNAME, EMAIL_PASSWORD, EMAIL_MAILPORT, EMAIL_BODY, EMAIL_FOOTER
flowsentry plugin test: plugin "email": EMAIL_MAILPORT ("Mailport"): value "70000" is greater than the maximum 65000
`,
		},
		{
			name:   "plugin fails",
			args:   []string{"test", testdata + "fail"},
			code:   1,
			stdout: `^cannot reach the mitigation device\nexit code 1 after \d+ms\n$`,
		},
		{
			name:   "plugin crashes",
			args:   []string{"test", testdata + "crash"},
			code:   1,
			stdout: `^about to crash\nexit code -1 after \d+ms\n$`,
			stderr: "flowsentry plugin test: plugin \"crash\": signal: segmentation fault\n",
		},
		{
			name:   "plugin hangs",
			args:   []string{"test", testdata + "hang", "--timeout", "200ms"},
			code:   1,
			stdout: `^hanging\nexit code -1 after \d+ms\n$`,
			stderr: "flowsentry plugin test: plugin \"hang\": timeout\n",
		},
		{
			name:   "invalid plugin",
			args:   []string{"test", testdata + "missing"},
			code:   1,
			stdout: `^$`,
			stderr: `flowsentry plugin test: plugin "missing": executable missing: ` + abs + `/missing/plugin.sh; put the program there or correct "executable" in gui.json` + "\n",
		},
		{name: "no command", args: nil, code: 2, stdout: `^$`, stderr: "usage: flowsentry plugin test DIR..."},
		{name: "help", args: []string{"-h"}, stdout: `^usage: flowsentry plugin test DIR`},
		{name: "no folder", args: []string{"test"}, code: 2, stdout: `^$`, stderr: "flowsentry plugin test: give one plugin folder, not 0\n..."},
		{name: "two folders", args: []string{"test", email, email}, code: 2, stdout: `^$`, stderr: "flowsentry plugin test: give one plugin folder, not 2\n..."},
		{name: "bad --set", args: []string{"test", email, "--set", "EMAIL_USERNAME"}, code: 2, stdout: `^$`, stderr: `invalid value "EMAIL_USERNAME" for flag -set: "EMAIL_USERNAME" is not KEY=VALUE` + "\n..."},
		{name: "twice --set", args: []string{"test", email, "--set", "A=1", "--set", "A=2"}, code: 2, stdout: `^$`, stderr: `invalid value "A=2" for flag -set: A is set twice` + "\n..."},
		{name: "bad --timeout", args: []string{"test", email, "--timeout", "0s"}, code: 2, stdout: `^$`, stderr: warnings + "flowsentry plugin test: --timeout: timeout: is 0s; give a positive duration such as 60s\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			os.Remove(filepath.Join(email, "calls.log"))
			var stdout, stderr bytes.Buffer
			code := pluginCmd(c.args, &stdout, &stderr)
			if code != c.code {
				t.Errorf("exit code %d, want %d", code, c.code)
			}
			if !regexp.MustCompile(c.stdout).MatchString(stdout.String()) {
				t.Errorf("stdout %q does not match %q", stdout.String(), c.stdout)
			}
			if prefix, ok := strings.CutSuffix(c.stderr, "..."); ok {
				if !strings.HasPrefix(stderr.String(), prefix) {
					t.Errorf("stderr %q does not start with %q", stderr.String(), prefix)
				}
			} else if stderr.String() != c.stderr {
				t.Errorf("stderr:\n%s\nwant:\n%s", stderr.String(), c.stderr)
			}
			if c.calledWith == nil {
				return
			}
			log, err := os.ReadFile(filepath.Join(email, "calls.log"))
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSpace(string(log)), "\n")
			if !regexp.MustCompile(`^=== \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ TEST$`).MatchString(lines[0]) {
				t.Errorf("first line of the log: %q", lines[0])
			}
			var got []string
			for _, l := range lines[1:] {
				if strings.HasPrefix(l, "PATH=") {
					l = "PATH=" // the folder of the test binary, then the test's PATH
				}
				got = append(got, l)
			}
			if diff := cmp.Diff(got, c.calledWith); diff != "" {
				t.Errorf("environment of the call (-got +want):\n%s", diff)
			}
		})
	}
}
