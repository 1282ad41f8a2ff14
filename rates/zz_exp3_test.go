package rates

import (
	"fmt"
	"runtime"
	"testing"
)

func TestZZMem(t *testing.T) {
	for _, kind := range []string{"port", "host-recv", "host-send"} {
		e, _ := newTestEngine(t, DefaultConfig())
		var m0, m1 runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m0)
		const n = 50000
		r := rec("203.0.113.5", "10.1.0.1")
		for i := range n {
			switch kind {
			case "port":
				r.SrcPort = uint16(i)
				r.Src = netipFrom4(203, 0, 113, 5)
				r.Dst = netipFrom4(198, 51, 100, 1)
				r.Exporter, r.InIf = exporterA, 1
				r.DstPort = uint16(i)
			case "host-recv":
				r.Dst = netipFrom4(10, 1, byte(i>>8), byte(i))
			case "host-send":
				r.Src = netipFrom4(10, 1, byte(i>>8), byte(i))
				r.Dst = netipFrom4(203, 0, 113, 5)
			}
			e.Add(r)
		}
		runtime.GC()
		runtime.ReadMemStats(&m1)
		fmt.Printf("%s: %d bytes per record-created object set (hosts %d ports %d ifports %d)\n", kind, (m1.HeapAlloc-m0.HeapAlloc)/n, len(e.live[KindHost]), len(e.live[KindGroupPort]), len(e.live[KindInterfacePort]))
		runtime.KeepAlive(e)
	}
}
