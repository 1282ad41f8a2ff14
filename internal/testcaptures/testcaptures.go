// Package testcaptures finds the shared packet captures the tests replay:
// the folder shared/captures beside the repository (CI clones the
// repository to X/main with the captures at X/shared/captures).
package testcaptures

import (
	"os"
	"path/filepath"
	"testing"
)

// Dir returns the captures folder, walking up from the working directory;
// the test fails when there is none.
func Dir(tb testing.TB) string {
	tb.Helper()
	dir, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	for {
		p := filepath.Join(dir, "shared", "captures")
		if fi, err := os.Stat(p); err == nil && fi.IsDir() {
			return p
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			tb.Fatal("shared/captures not found in any parent of the working directory: clone the repository next to the shared folder (X/main and X/shared)")
		}
		dir = parent
	}
}

// Path returns the path of a capture given relative to the folder, e.g.
// "attacks/ddos/pkt.TCP.synflood.spoofed.pcap".
func Path(tb testing.TB, rel string) string {
	tb.Helper()
	return filepath.Join(Dir(tb), rel)
}
