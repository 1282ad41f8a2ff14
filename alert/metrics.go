package alert

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	open        *prometheus.GaugeVec
	events      *prometheus.CounterVec
	storeErrors *prometheus.CounterVec
}

func newMetrics() metrics {
	m := metrics{
		open: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "flowsentry_alert_open",
			Help: "Open alerts by ALERT_TYPE.",
		}, []string{"type"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flowsentry_alert_events_total",
			Help: "Alert events persisted and handed to the actions, by op (CREATE, UPDATE, DELETE).",
		}, []string{"op"}),
		storeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flowsentry_alert_store_errors_total",
			Help: "Failed store operations, by operation (next_id, save, load, query); a failed transition is retried at the next tick.",
		}, []string{"operation"}),
	}
	for _, op := range []Op{OpCreate, OpUpdate, OpDelete} {
		m.events.WithLabelValues(string(op))
	}
	for _, o := range []string{"next_id", "save", "load", "query"} {
		m.storeErrors.WithLabelValues(o)
	}
	return m
}

func (m *metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.open, m.events, m.storeErrors}
}

// Describe implements prometheus.Collector: register the engine with the
// server's registry to export its metrics.
func (e *Engine) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range e.metrics.collectors() {
		c.Describe(ch)
	}
}

// Collect implements prometheus.Collector.
func (e *Engine) Collect(ch chan<- prometheus.Metric) {
	for _, c := range e.metrics.collectors() {
		c.Collect(ch)
	}
}
