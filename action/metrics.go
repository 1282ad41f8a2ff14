package action

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	actions     *prometheus.Desc
	queued      *prometheus.Desc
	calls       *prometheus.CounterVec
	storeErrors prometheus.Counter
}

func newMetrics() metrics {
	m := metrics{
		actions: prometheus.NewDesc("flowsentry_action_actions",
			"Open actions by state (waiting_approval, in_progress).", []string{"state"}, nil),
		queued: prometheus.NewDesc("flowsentry_action_calls_queued",
			"Alert events not routed yet plus plugin calls waiting behind the running call of their action.", nil, nil),
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flowsentry_action_calls_total",
			Help: "Plugin calls by op and result (ok: exit code 0; failed: any other exit, time limit, crash, missing executable).",
		}, []string{"op", "result"}),
		storeErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "flowsentry_action_store_errors_total",
			Help: "Failed store operations of the action dispatcher, every attempt of a retried write included (the first failure and the recovery are logged).",
		}),
	}
	for _, op := range []string{"CREATE", "UPDATE", "DELETE"} {
		for _, r := range []string{"ok", "failed"} {
			m.calls.WithLabelValues(op, r)
		}
	}
	return m
}

// Describe implements prometheus.Collector: register the dispatcher with
// the server's registry to export its metrics.
func (d *Dispatcher) Describe(ch chan<- *prometheus.Desc) {
	ch <- d.metrics.actions
	ch <- d.metrics.queued
	d.metrics.calls.Describe(ch)
	d.metrics.storeErrors.Describe(ch)
}

// Collect implements prometheus.Collector.
func (d *Dispatcher) Collect(ch chan<- prometheus.Metric) {
	d.mu.Lock()
	var waiting, inProgress int
	queued := d.pending
	for _, ac := range d.acts {
		switch ac.a.State {
		case StateWaiting:
			waiting++
		case StateInProgress:
			inProgress++
		}
		for _, j := range ac.jobs {
			if j.op != "" {
				queued++
			}
		}
	}
	d.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(d.metrics.actions, prometheus.GaugeValue, float64(waiting), string(StateWaiting))
	ch <- prometheus.MustNewConstMetric(d.metrics.actions, prometheus.GaugeValue, float64(inProgress), string(StateInProgress))
	ch <- prometheus.MustNewConstMetric(d.metrics.queued, prometheus.GaugeValue, float64(queued))
	d.metrics.calls.Collect(ch)
	d.metrics.storeErrors.Collect(ch)
}
