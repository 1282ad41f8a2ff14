package alert

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	open          *prometheus.GaugeVec
	events        *prometheus.CounterVec
	storeErrors   *prometheus.CounterVec
	outbox        prometheus.Gauge
	deferred      prometheus.Counter
	commitSeconds prometheus.Histogram
}

func newMetrics() metrics {
	m := metrics{
		open: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "flowsentry_alert_open",
			Help: "Open alerts by ALERT_TYPE and severity.",
		}, []string{"type", "severity"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flowsentry_alert_events_total",
			Help: "Alert events persisted and handed to the actions, by op (CREATE, UPDATE, DELETE).",
		}, []string{"op"}),
		storeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flowsentry_alert_store_errors_total",
			Help: "Failed store operations, by operation (commit, load, query); transitions whose commit failed wait in the outbox and are retried at the next tick.",
		}, []string{"operation"}),
		outbox: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "flowsentry_alert_outbox_transitions",
			Help: "Alert transitions applied but not yet committed to the store (and not yet heard by any plugin).",
		}),
		deferred: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "flowsentry_alert_deferred_total",
			Help: "Alert transitions put off to a later tick because the outbox was full (alerts.outbox); the store is failing or too slow.",
		}),
		commitSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "flowsentry_alert_commit_duration_seconds",
			Help:    "Time to commit one batch of alert transitions to the store.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 9),
		}),
	}
	for _, op := range []Op{OpCreate, OpUpdate, OpDelete} {
		m.events.WithLabelValues(string(op))
	}
	for _, o := range []string{"commit", "load", "query"} {
		m.storeErrors.WithLabelValues(o)
	}
	return m
}

func (m *metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.open, m.events, m.storeErrors, m.outbox, m.deferred, m.commitSeconds}
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

// openOf is the open-alerts gauge of a's type and severity.
func (m metrics) openOf(a *Alert) prometheus.Gauge {
	return m.open.WithLabelValues(a.Type, strconv.Itoa(a.Severity))
}
