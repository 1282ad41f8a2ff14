package samples

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Values of the "reason" label of dropped_total.
const (
	// dropTooManyTargets is a Watch of a new address while MaxTargets
	// addresses are watched.
	dropTooManyTargets = "too_many_targets"
	// dropBufferFull is a header offered for an address that already has
	// PerTarget headers.
	dropBufferFull = "buffer_full"
)

// metrics are the store's Prometheus metrics.
type metrics struct {
	kept              prometheus.Counter
	droppedTargets    prometheus.Counter
	droppedBufferFull prometheus.Counter
}

// newMetrics creates the metrics and registers them with reg (nil
// registers nothing); targets reports the number of watched addresses.
func newMetrics(reg prometheus.Registerer, targets func() float64) (*metrics, error) {
	dropped := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "flowsentry_samples_dropped_total",
		Help: "Sampled packet headers and watches not kept, by reason: too_many_targets (a Watch beyond max_targets), buffer_full (a header for an address that has per_target headers already).",
	}, []string{"reason"})
	kept := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "flowsentry_samples_kept_total",
		Help: "Sampled packet headers kept for attacked addresses.",
	})
	watched := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "flowsentry_samples_targets",
		Help: "Attacked addresses whose sampled packet headers are held (watched, or expired and not yet swept).",
	}, targets)
	m := &metrics{
		kept:              kept,
		droppedTargets:    dropped.WithLabelValues(dropTooManyTargets),
		droppedBufferFull: dropped.WithLabelValues(dropBufferFull),
	}
	if reg == nil {
		return m, nil
	}
	var errs []error
	for _, c := range []prometheus.Collector{dropped, kept, watched} {
		errs = append(errs, reg.Register(c))
	}
	return m, errors.Join(errs...)
}
