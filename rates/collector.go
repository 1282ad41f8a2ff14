package rates

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flowsentry/flowsentry/model"
)

// Collector exports the traffic of the latest snapshot to Prometheus, so
// that a Grafana dashboard can show the network: for every traffic group
// and every named exporter interface, the packets, bytes and new
// connections in and out since the engine started, as counters (take their
// rate()). Its labels are only what the operator configured: partition and
// traffic group names and IDs, interface names; never an address. The
// interfaces of one name (on several exporters) are summed into one series.
type Collector struct {
	snap  func() *Snapshot
	model *model.Holder
	descs [2][numTrafficCounters]*prometheus.Desc // [group or interface][counter]
}

// The counters a Collector exports, in the order of trafficCounters.
const (
	trafficPackets = iota
	trafficBytes
	trafficNewConn
	numTrafficCounters
)

// NewCollector returns a collector of the snapshots snap returns, naming
// partitions from the model m holds.
func NewCollector(snap func() *Snapshot, m *model.Holder) *Collector {
	c := &Collector{snap: snap, model: m}
	names := [numTrafficCounters]string{"packets_total", "bytes_total", "new_connections_total"}
	helps := [numTrafficCounters]string{"Packets", "Bytes", "New connections"}
	for i, n := range names {
		c.descs[0][i] = prometheus.NewDesc("flowsentry_traffic_group_"+n,
			helps[i]+" of a traffic group, by direction (in: to its addresses, out: from them), since the server started.",
			[]string{"partition", "traffic_group", "id", "direction"}, nil)
		c.descs[1][i] = prometheus.NewDesc("flowsentry_interface_"+n,
			helps[i]+" of a named exporter interface, by direction (in: its input, out: its output), since the server started.",
			[]string{"interface", "direction"}, nil)
	}
	return c
}

// Describe sends the descriptions of every metric.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, ds := range c.descs {
		for _, d := range ds {
			ch <- d
		}
	}
}

// Collect sends the counters of the latest snapshot.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	s := c.snap()
	if s == nil {
		return
	}
	var m *model.Model
	if c.model != nil {
		m = c.model.Load()
	}
	for i := range s.Groups {
		g := &s.Groups[i].Key
		part := ""
		if m != nil {
			part = m.PartitionName(s.Groups[i].CID)
		}
		c.send(ch, 0, s.GroupTotals(g.Group), part, s.Groups[i].Name, strconv.FormatUint(uint64(g.Group), 10))
	}
	byName := map[string]Totals{}
	for _, x := range s.Exporters {
		for _, ifc := range x.Interfaces {
			if ifc.Name != "" {
				byName[ifc.Name] = byName[ifc.Name].plus(ifc.Totals)
			}
		}
	}
	for name, t := range byName {
		c.send(ch, 1, t, name)
	}
}

// send sends the counters of t, of kind k (0 traffic group, 1 interface),
// with labels before the direction.
func (c *Collector) send(ch chan<- prometheus.Metric, k int, t Totals, labels ...string) {
	in := [numTrafficCounters]uint64{t.PacketsIn, t.BytesIn, t.NewConn}
	out := [numTrafficCounters]uint64{t.PacketsOut, t.BytesOut, t.NewConnOut}
	for i := range numTrafficCounters {
		ch <- prometheus.MustNewConstMetric(c.descs[k][i], prometheus.CounterValue, float64(in[i]), append(labels, "in")...)
		ch <- prometheus.MustNewConstMetric(c.descs[k][i], prometheus.CounterValue, float64(out[i]), append(labels, "out")...)
	}
}
