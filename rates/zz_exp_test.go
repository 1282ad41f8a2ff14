package rates

import (
	"runtime"
	"syscall"
	"testing"
	"time"
)

func threadCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(1, &ru) // RUSAGE_THREAD
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func TestZZCPU(t *testing.T) {
	runtime.LockOSThread()
	for _, n := range []int{1 << 9, 1 << 16} {
		e, _ := newTestEngine(t, DefaultConfig())
		e.Tick(at(100))
		recs := benchRecords(1 << 16)[:n]
		for i := range recs {
			e.Add(&recs[i])
		}
		const ops = 3_000_000
		w0 := time.Now()
		c0 := threadCPU()
		for i := range ops {
			e.Add(&recs[i&(n-1)])
		}
		c1 := threadCPU()
		t.Logf("n=%d cpu %.0f ns/op wall %.0f ns/op", n, float64(c1-c0)/ops, float64(time.Since(w0))/ops)
	}
}
