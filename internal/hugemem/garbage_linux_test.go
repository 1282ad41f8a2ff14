//go:build linux

package hugemem

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestGarbage drops 8 GiB of tables: once garbage, they are unmapped.
func TestGarbage(t *testing.T) {
	before := vmSize(t)
	for range 8 {
		x := Make[uint64](1 << 27) // 1 GiB of address space, one page touched
		x.S[0] = 1
	}
	if vmSize(t) < before+8<<30 {
		t.Fatal("the tables were not mapped")
	}
	for range 200 {
		runtime.GC()
		if vmSize(t) < before+1<<30 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("address space %d bytes after the tables became garbage, %d before", vmSize(t), before)
}

// vmSize returns the process's address space in bytes.
func vmSize(t *testing.T) int {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) == 3 && f[0] == "VmSize:" {
			kb, err := strconv.Atoi(f[1])
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmSize in /proc/self/status")
	return 0
}
