package ui

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestVendoredAssets installs web/package-lock.json afresh with npm ci and
// checks that every file web/vendor.list copies into static/vendor is
// byte for byte what the lock file gives: the committed copies are the
// locked packages, not files edited or added by hand.
func TestVendoredAssets(t *testing.T) {
	npm, err := exec.LookPath("npm")
	if err != nil {
		t.Fatal("npm is not installed: install Debian's nodejs and npm (scripts/test.sh does)")
	}
	dir := t.TempDir()
	for _, f := range []string{"package.json", "package-lock.json"} {
		b, err := os.ReadFile(filepath.Join("..", "web", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("npm ci of web/package-lock.json: %v\n%s", err, out)
	}
	list, err := os.Open(filepath.Join("..", "web", "vendor.list"))
	if err != nil {
		t.Fatal(err)
	}
	defer list.Close()
	listed := map[string]bool{}
	sc := bufio.NewScanner(list)
	for sc.Scan() {
		from, to, ok := strings.Cut(strings.TrimSpace(sc.Text()), " ")
		if !ok {
			continue
		}
		listed[to] = true
		want, err := os.ReadFile(filepath.Join(dir, "node_modules", from))
		if err != nil {
			t.Errorf("%s: not in the locked packages: %v", from, err)
			continue
		}
		got, err := os.ReadFile(filepath.Join("static", "vendor", to))
		if err != nil {
			t.Errorf("static/vendor/%s: %v (run web/vendor.sh)", to, err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("static/vendor/%s differs from %s of the lock file: run web/vendor.sh", to, from)
		}
	}
	entries, err := os.ReadDir(filepath.Join("static", "vendor"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !listed[e.Name()] {
			t.Errorf("static/vendor/%s is not in web/vendor.list: vendored files come from the lock file only", e.Name())
		}
	}
}
