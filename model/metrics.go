package model

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics count blacklist refreshes. The "blacklist" label is the configured
// name: it comes from the configuration, not from flow data, so its
// cardinality is bounded by the operator; "result" is one of the result
// constants.
type metrics struct {
	refreshes *prometheus.CounterVec
	errors    *prometheus.CounterVec
}

// The results of a due blacklist refresh.
const (
	resultUnchanged = "unchanged" // the file holds the entries in use; nothing was parsed or rebuilt
	resultReloaded  = "reloaded"  // the file changed; its entries were swapped in
	resultFailed    = "failed"    // the file could not be read or has a bad line
)

func newMetrics(reg prometheus.Registerer) (metrics, error) {
	m := metrics{
		refreshes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flowsentry_model_blacklist_refreshes_total",
			Help: "Due blacklist refreshes by result: unchanged (not re-parsed), reloaded (re-read and swapped in) or failed (the previous list stays in use).",
		}, []string{"blacklist", "result"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flowsentry_model_blacklist_errors_total",
			Help: "Blacklist refreshes that failed; the previous list stays in use.",
		}, []string{"blacklist"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.refreshes, m.errors} {
		if err := reg.Register(c); err != nil {
			return metrics{}, fmt.Errorf("register blacklist metrics: %w", err)
		}
	}
	return m, nil
}
