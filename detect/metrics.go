package detect

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/flowsentry/flowsentry/policy"
)

// Metrics are the counters the families share: what a family could not
// track because one of its bounds was reached (address pairs, sessions,
// scanners, attacked targets), by detector and reason. A nil *Metrics
// hands out counters that count nowhere, for tests.
type Metrics struct {
	dropped *prometheus.CounterVec
}

// NewMetrics registers the families' counters with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "flowsentry_detect_dropped_total",
		Help: "Records (or objects) a detector family did not track because one of its bounds was reached, by detector and reason.",
	}, []string{"detector", "reason"})}
	if err := reg.Register(m.dropped); err != nil {
		return nil, err
	}
	return m, nil
}

// Dropped returns the counter of family f for reason (a short snake_case
// word such as "max_pairs"); safe for concurrent use.
func (m *Metrics) Dropped(f policy.Family, reason string) prometheus.Counter {
	if m == nil {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: "unregistered"})
	}
	return m.dropped.WithLabelValues(string(f), reason)
}
