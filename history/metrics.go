package history

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Values of the "reason" label of batches_dropped_total.
const (
	// dropQueueFull is a minute ended while the writer was still behind
	// by queueLength batches.
	dropQueueFull = "queue_full"
	// dropRetries is a batch that failed to be written maxPending
	// minutes in a row, given up for newer ones.
	dropRetries = "retries_exhausted"
)

// metrics are the recorder's Prometheus metrics.
type metrics struct {
	written      prometheus.Counter
	writeErrors  prometheus.Counter
	droppedFull  prometheus.Counter
	droppedRetry prometheus.Counter
	refused      prometheus.Counter
	pruned       prometheus.Counter
}

// newMetrics creates the metrics and registers them with reg (nil
// registers nothing); series reports the number of series held.
func newMetrics(reg prometheus.Registerer, series func() float64) (*metrics, error) {
	dropped := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "flowsentry_history_batches_dropped_total",
		Help: "Minutes of history not stored, by reason: queue_full (the writer was behind), retries_exhausted (the store failed for too long).",
	}, []string{"reason"})
	m := &metrics{
		written: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "flowsentry_history_batches_written_total",
			Help: "Minutes of history written to the store.",
		}),
		writeErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "flowsentry_history_write_errors_total",
			Help: "Failed writes of a minute of history (retried with the next minute).",
		}),
		droppedFull:  dropped.WithLabelValues(dropQueueFull),
		droppedRetry: dropped.WithLabelValues(dropRetries),
		refused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "flowsentry_history_series_refused_total",
			Help: "Series-minutes not recorded because history.max_series series are held.",
		}),
		pruned: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "flowsentry_history_series_pruned_total",
			Help: "Series removed with their last minute older than history.retention.",
		}),
	}
	if reg == nil {
		return m, nil
	}
	held := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "flowsentry_history_series",
		Help: "Series held in the history (counted against history.max_series).",
	}, series)
	var errs []error
	for _, c := range []prometheus.Collector{dropped, m.written, m.writeErrors, m.refused, m.pruned, held} {
		errs = append(errs, reg.Register(c))
	}
	return m, errors.Join(errs...)
}
