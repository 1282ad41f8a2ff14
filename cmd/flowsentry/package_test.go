package main

import (
	"compress/gzip"
	"debug/elf"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestDebianPackage builds the .deb with packaging/build-deb.sh and checks
// it as dpkg and systemd would see it, without installing it on this
// machine: the control fields, every file with its mode and owner, the
// conffiles, the maintainer scripts run against stub commands, the
// unpacked tree (static binaries that print their stamped version, the
// unit's paths, the default configuration accepted by --check, the man
// page naming every command and flag), systemd-analyze verify on the unit
// in that tree, and the unit's systemd-analyze security exposure.
func TestDebianPackage(t *testing.T) {
	dpkgDeb := need(t, "dpkg-deb")
	const version = "9.8.7~test"
	dist := t.TempDir()
	build := exec.Command("../../packaging/build-deb.sh", version)
	build.Env = append(os.Environ(), "DIST="+dist, "SOURCE_DATE_EPOCH=1700000000")
	out, err := build.CombinedOutput()
	if err != nil {
		t.Fatalf("build-deb.sh: %v\n%s", err, out)
	}
	deb := filepath.Join(dist, "flowsentry_"+version+"_amd64.deb")
	if got := strings.TrimSpace(string(out)); got != deb {
		t.Fatalf("build-deb.sh printed %q, want the package's path %q", got, deb)
	}
	dpkg := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(dpkgDeb, args...).Output()
		if err != nil {
			t.Fatalf("dpkg-deb %s: %v", strings.Join(args, " "), err)
		}
		return string(out)
	}

	t.Run("control", func(t *testing.T) {
		want := map[string]string{"Package": "flowsentry", "Version": version, "Architecture": "amd64",
			"Depends": "adduser", "Section": "net", "Priority": "optional"}
		for field, value := range want {
			if got := strings.TrimSpace(dpkg("-f", deb, field)); got != value {
				t.Errorf("%s: %q, want %q", field, got, value)
			}
		}
		if size, err := strconv.Atoi(strings.TrimSpace(dpkg("-f", deb, "Installed-Size"))); err != nil || size < 1000 {
			t.Errorf("Installed-Size %d (%v): want the size of the binaries in KiB", size, err)
		}
	})

	t.Run("contents", func(t *testing.T) {
		got := map[string]string{}
		for _, line := range strings.Split(strings.TrimSpace(dpkg("--contents", deb)), "\n") {
			f := strings.Fields(line) // mode owner size date time path
			if len(f) != 6 {
				t.Fatalf("unexpected dpkg-deb --contents line %q", line)
			}
			got[f[5]] = f[0] + " " + f[1]
		}
		dir, file, exe := "drwxr-xr-x root/root", "-rw-r--r-- root/root", "-rwxr-xr-x root/root"
		want := map[string]string{
			"./":                               dir,
			"./etc/":                           dir,
			"./etc/flowsentry/":                dir,
			"./etc/flowsentry/flowsentry.yaml": file,
			"./etc/flowsentry/plugins/":        dir,
			"./lib/":                           dir,
			"./lib/systemd/":                   dir,
			"./lib/systemd/system/":            dir,
			"./lib/systemd/system/flowsentry.service": file,
			"./usr/":                               dir,
			"./usr/bin/":                           dir,
			"./usr/bin/flowsentry":                 exe,
			"./usr/bin/ftnbi":                      exe,
			"./usr/share/":                         dir,
			"./usr/share/doc/":                     dir,
			"./usr/share/doc/flowsentry/":          dir,
			"./usr/share/doc/flowsentry/README.md": file,
			"./usr/share/doc/flowsentry/copyright": file,
			"./usr/share/man/":                     dir,
			"./usr/share/man/man1/":                dir,
			"./usr/share/man/man1/flowsentry.1.gz": file,
			"./var/":                               dir,
			"./var/lib/":                           dir,
			"./var/lib/flowsentry/":                "drwxr-x--- root/root",
		}
		if diff := cmp.Diff(got, want); diff != "" {
			t.Errorf("package contents (-got +want):\n%s", diff)
		}
	})

	control := t.TempDir()
	dpkg("-e", deb, control)
	t.Run("conffiles", func(t *testing.T) {
		b, err := os.ReadFile(filepath.Join(control, "conffiles"))
		if err != nil {
			t.Fatal(err)
		}
		if got, want := string(b), "/etc/flowsentry/flowsentry.yaml\n"; got != want {
			t.Errorf("conffiles %q, want %q", got, want)
		}
	})
	t.Run("maintainer scripts", func(t *testing.T) {
		testMaintainerScripts(t, control)
	})

	root := t.TempDir()
	dpkg("-x", deb, root)
	t.Run("binaries", func(t *testing.T) {
		commit := "unknown"
		if out, err := exec.Command("git", "rev-parse", "HEAD").Output(); err == nil {
			commit = strings.TrimSpace(string(out))
		}
		for _, name := range []string{"flowsentry", "ftnbi"} {
			path := filepath.Join(root, "usr/bin", name)
			f, err := elf.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range f.Progs {
				if p.Type == elf.PT_INTERP {
					t.Errorf("%s has a program interpreter: not static (CGO_ENABLED=0)", name)
				}
			}
			f.Close()
			arg := map[string]string{"flowsentry": "version", "ftnbi": "-version"}[name]
			out, err := exec.Command(path, arg).Output()
			if err != nil {
				t.Fatalf("%s %s: %v", name, arg, err)
			}
			re := regexp.MustCompile(`^` + name + ` ` + regexp.QuoteMeta(version) + ` \(commit ` + regexp.QuoteMeta(commit) +
				`(-dirty)?, built 2023-11-14T22:13:20Z, go[0-9.]+ linux/amd64\)\n$`)
			if !re.Match(out) {
				t.Errorf("%s %s printed %q, want %s", name, arg, out, re)
			}
		}
	})
	t.Run("default configuration", func(t *testing.T) {
		// The packaged file names the packaged folders; --check opens none.
		b, err := os.ReadFile(filepath.Join(root, "etc/flowsentry/flowsentry.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"\ndata_dir: /var/lib/flowsentry\n", "\nplugin_dir: /etc/flowsentry/plugins\n"} {
			if !strings.Contains(string(b), want) {
				t.Errorf("flowsentry.yaml lacks %q", strings.TrimSpace(want))
			}
		}
		out, err := exec.Command(filepath.Join(root, "usr/bin/flowsentry"), "serve", "--config", filepath.Join(root, "etc/flowsentry/flowsentry.yaml"), "--check").Output()
		if err != nil || string(out) != "configuration OK\n" {
			t.Errorf("serve --check of the packaged configuration: %v, %q", err, out)
		}
	})
	t.Run("unit", func(t *testing.T) {
		unit := filepath.Join(root, "lib/systemd/system/flowsentry.service")
		b, err := os.ReadFile(unit)
		if err != nil {
			t.Fatal(err)
		}
		// Every path the unit runs or names is in the package.
		for _, want := range []string{
			"ExecStart=/usr/bin/flowsentry serve --config /etc/flowsentry/flowsentry.yaml\n",
			"Type=notify\n", "User=flowsentry\n", "StateDirectory=flowsentry\n", "ConfigurationDirectory=flowsentry\n",
		} {
			if !strings.Contains(string(b), want) {
				t.Errorf("unit lacks %q", strings.TrimSpace(want))
			}
		}
		for _, p := range []string{"usr/bin/flowsentry", "etc/flowsentry/flowsentry.yaml", "var/lib/flowsentry", "usr/share/man/man1/flowsentry.1.gz"} {
			if _, err := os.Stat(filepath.Join(root, p)); err != nil {
				t.Errorf("the unit needs /%s: %v", p, err)
			}
		}
		testUnitVerify(t, root)
	})
	t.Run("man page", func(t *testing.T) {
		testManPage(t, filepath.Join(root, "usr/share/man/man1/flowsentry.1.gz"))
	})
}

// testUnitVerify runs systemd-analyze verify on the packaged unit in the
// unpacked tree, with the units and /bin/kill it refers to copied in; any
// message fails, since verify exits 0 on unknown keys and bad values.
func testUnitVerify(t *testing.T, root string) {
	analyze := need(t, "systemd-analyze")
	for _, c := range [][]string{
		{"cp", "-r", "/lib/systemd/system", filepath.Join(root, "usr/lib/systemd/")},
		{"cp", "-L", "/bin/kill", filepath.Join(root, "bin/")},
	} {
		if err := os.MkdirAll(c[len(c)-1], 0o755); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(c[0], c[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(c, " "), err, out)
		}
	}
	out, err := exec.Command(analyze, "verify", "--man=no", "--root="+root, "/lib/systemd/system/flowsentry.service").CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	out, err = exec.Command(analyze, "security", "--offline=true", "--no-pager", filepath.Join(root, "lib/systemd/system/flowsentry.service")).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`Overall exposure level for flowsentry.service: ([0-9.]+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no exposure level in systemd-analyze security's output:\n%s", out)
	}
	score, _ := strconv.ParseFloat(string(m[1]), 64)
	t.Logf("systemd-analyze security exposure: %.1f", score)
	// The README reports 1.3; a weakened sandbox fails here.
	if score > 1.3 {
		t.Errorf("exposure level %.1f, want at most 1.3:\n%s", score, out)
	}
}

// testManPage checks that the man page names every command of the usage
// and every flag of serve -h.
func testManPage(t *testing.T, path string) {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(z)
	if err != nil {
		t.Fatal(err)
	}
	page := string(b)
	for _, m := range regexp.MustCompile(`(?m)^  (\w+) `).FindAllStringSubmatch(usage, -1) {
		if !strings.Contains(page, "\n.B "+m[1]+"\n") {
			t.Errorf("man page lacks the command %s", m[1])
		}
	}
	_, help, _ := runBinary(t, "serve", "-h")
	flags := regexp.MustCompile(`(?m)^  -([\w-]+)`).FindAllStringSubmatch(help, -1)
	if len(flags) < 5 {
		t.Fatalf("too few flags in serve -h:\n%s", help)
	}
	for _, m := range flags {
		if !strings.Contains(page, `\-\-`+strings.ReplaceAll(m[1], "-", `\-`)) {
			t.Errorf("man page lacks the serve flag --%s", m[1])
		}
	}
}

// testMaintainerScripts checks the syntax of postinst, prerm and postrm
// with sh -n, then runs them with a PATH holding only stubs that log their
// arguments, so nothing on this machine changes (a command without a stub
// is not found and fails the script).
func testMaintainerScripts(t *testing.T, control string) {
	for _, name := range []string{"postinst", "prerm", "postrm"} {
		path := filepath.Join(control, name)
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o755 {
			t.Errorf("%s mode %v, want 0755", name, fi.Mode().Perm())
		}
		if out, err := exec.Command("sh", "-n", path).CombinedOutput(); err != nil {
			t.Errorf("sh -n %s: %v\n%s", name, err, out)
		}
	}
	stubs := t.TempDir()
	stub := "#!/bin/sh\necho \"${0##*/} $*\" >>\"$LOG\"\ncase ${0##*/} in\ngetent) exit \"$GETENT_STATUS\" ;;\ndpkg-statoverride) exit 1 ;;\nesac\n"
	for _, name := range []string{"getent", "addgroup", "adduser", "mkdir", "chown", "chmod", "chgrp", "rm",
		"dpkg-statoverride", "deb-systemd-helper", "deb-systemd-invoke", "systemctl"} {
		if err := os.WriteFile(filepath.Join(stubs, name), []byte(stub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	const (
		addUser = "adduser --system --quiet --ingroup flowsentry --no-create-home --home /var/lib/flowsentry --shell /usr/sbin/nologin --gecos flowsentry server flowsentry"
		purge   = "rm -rf /var/lib/flowsentry"
	)
	for _, tc := range []struct {
		name, script string
		args         []string
		userExists   bool
		want, not    []string // calls made, calls not made
	}{
		{name: "first install", script: "postinst", args: []string{"configure", ""},
			want: []string{"addgroup --system --quiet flowsentry", addUser, "chown flowsentry:flowsentry /var/lib/flowsentry",
				"chmod 0750 /var/lib/flowsentry", "deb-systemd-helper enable flowsentry.service"}},
		{name: "upgrade", script: "postinst", args: []string{"configure", "1.0.0"}, userExists: true,
			want: []string{"chown flowsentry:flowsentry /var/lib/flowsentry", "deb-systemd-helper enable flowsentry.service"},
			not:  []string{"addgroup --system --quiet flowsentry", addUser}},
		{name: "prerm upgrade keeps running", script: "prerm", args: []string{"upgrade", "9.9.9"},
			not: []string{"deb-systemd-invoke stop flowsentry.service"}},
		{name: "remove keeps the data", script: "postrm", args: []string{"remove"},
			want: []string{"deb-systemd-helper mask flowsentry.service"}, not: []string{purge}},
		{name: "purge deletes the data", script: "postrm", args: []string{"purge"},
			want: []string{purge, "deb-systemd-helper purge flowsentry.service"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			log := filepath.Join(t.TempDir(), "calls")
			status := "2"
			if tc.userExists {
				status = "0"
			}
			cmd := exec.Command(filepath.Join(control, tc.script), tc.args...)
			cmd.Env = []string{"PATH=" + stubs, "LOG=" + log, "GETENT_STATUS=" + status}
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("%s %s: %v\n%s", tc.script, strings.Join(tc.args, " "), err, out)
			}
			b, err := os.ReadFile(log)
			if err != nil && !os.IsNotExist(err) {
				t.Fatal(err)
			}
			calls := strings.Split(strings.TrimSpace(string(b)), "\n")
			has := func(c string) bool {
				for _, got := range calls {
					if got == c {
						return true
					}
				}
				return false
			}
			for _, c := range tc.want {
				if !has(c) {
					t.Errorf("no call %q; calls:\n%s", c, b)
				}
			}
			for _, c := range tc.not {
				if has(c) {
					t.Errorf("unwanted call %q; calls:\n%s", c, b)
				}
			}
		})
	}
}
