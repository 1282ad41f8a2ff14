package rates

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/flowsentry/flowsentry/flow"
	"github.com/flowsentry/flowsentry/model"
)

// TestCollector checks the traffic counters against records counted by a
// real engine: per traffic group both ways, per named interface, and no
// series for an unnamed interface or any address.
func TestCollector(t *testing.T) {
	e, _ := newTestEngine(t, DefaultConfig())
	// 10.1.0.5 (servers) sends 3 records of 1 packet and 60 bytes to the
	// outside through interfaces 1 (in, named) and 2 (out, unnamed);
	// 192.168.1.1 (wifi) receives one of 5 packets.
	for range 3 {
		e.Add(rec("10.1.0.5", "203.0.113.9", via(1, 2)))
	}
	e.Add(rec("203.0.113.9", "192.168.1.1", func(r *flow.Record) { r.Packets, r.Bytes = 5, 500 }))
	e.Tick(at(1))
	var h model.Holder
	h.Store(testModel())
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewCollector(e.Snapshot, &h))

	want := `
# HELP flowsentry_interface_packets_total Packets of a named exporter interface, by direction (in: its input, out: its output), since the server started.
# TYPE flowsentry_interface_packets_total counter
flowsentry_interface_packets_total{direction="in",interface="xe-0/0/1"} 3
flowsentry_interface_packets_total{direction="out",interface="xe-0/0/1"} 0
# HELP flowsentry_traffic_group_packets_total Packets of a traffic group, by direction (in: to its addresses, out: from them), since the server started.
# TYPE flowsentry_traffic_group_packets_total counter
flowsentry_traffic_group_packets_total{direction="in",id="1",partition="acme",traffic_group="servers"} 0
flowsentry_traffic_group_packets_total{direction="in",id="7",partition="guests",traffic_group="wifi"} 5
flowsentry_traffic_group_packets_total{direction="out",id="1",partition="acme",traffic_group="servers"} 3
flowsentry_traffic_group_packets_total{direction="out",id="7",partition="guests",traffic_group="wifi"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "flowsentry_interface_packets_total", "flowsentry_traffic_group_packets_total"); err != nil {
		t.Error(err)
	}
	n, err := testutil.GatherAndCount(reg)
	if err != nil {
		t.Fatal(err)
	}
	// 2 groups and 1 named interface, 3 counters, 2 directions.
	if n != 3*3*2 {
		t.Errorf("%d series, want 18 (an unnamed interface or a host leaked in?)", n)
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP flowsentry_traffic_group_bytes_total Bytes of a traffic group, by direction (in: to its addresses, out: from them), since the server started.
# TYPE flowsentry_traffic_group_bytes_total counter
flowsentry_traffic_group_bytes_total{direction="in",id="1",partition="acme",traffic_group="servers"} 0
flowsentry_traffic_group_bytes_total{direction="in",id="7",partition="guests",traffic_group="wifi"} 500
flowsentry_traffic_group_bytes_total{direction="out",id="1",partition="acme",traffic_group="servers"} 180
flowsentry_traffic_group_bytes_total{direction="out",id="7",partition="guests",traffic_group="wifi"} 0
`), "flowsentry_traffic_group_bytes_total"); err != nil {
		t.Error(err)
	}
}
