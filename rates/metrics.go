package rates

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Reasons for discarding an sFlow counter sample.
const (
	discardNoExporter = iota
	discardOutOfOrder
	discardReset
	numDiscards
)

var discardLabels = [numDiscards]string{
	discardNoExporter: "no_exporter",
	discardOutOfOrder: "out_of_order",
	discardReset:      "counter_reset",
}

type metrics struct {
	objects   *prometheus.GaugeVec
	refused   *prometheus.CounterVec
	records   prometheus.Counter
	noGroup   prometheus.Counter
	shifted   *prometheus.CounterVec
	samples   prometheus.Counter
	discarded *prometheus.CounterVec
}

// pending holds what the hot path counted since the last Tick, so that Add
// touches no atomic; Tick hands it to the Prometheus metrics.
type pending struct {
	records, noGroup, late, future uint64
	samples                        uint64
	refused                        [numKinds]uint64
	discarded                      [numDiscards]uint64
}

func newMetrics(reg prometheus.Registerer) (metrics, error) {
	m := metrics{
		objects: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "flowsentry_rates_objects",
			Help: "Live rate objects (and inventory exporters) by kind.",
		}, []string{"kind"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flowsentry_rates_objects_refused_total",
			Help: "Objects not created because their kind's cap (rates.max_*) was reached.",
		}, []string{"kind"}),
		records: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "flowsentry_rates_records_total",
			Help: "Flow records processed.",
		}),
		noGroup: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "flowsentry_rates_records_without_group_total",
			Help: "Flow records whose source and destination are in no traffic group.",
		}),
		shifted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flowsentry_rates_records_shifted_total",
			Help: "Flow records moved to end at the current second: reason late (ended before the window) or future (exporter clock ahead).",
		}, []string{"reason"}),
		samples: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "flowsentry_rates_counter_samples_total",
			Help: "sFlow interface counter samples applied to the inventory.",
		}),
		discarded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flowsentry_rates_counter_samples_discarded_total",
			Help: "sFlow interface counter samples that gave no rates, by reason.",
		}, []string{"reason"}),
	}
	// Create every series up front so that dashboards see zeros.
	for _, l := range kindLabels {
		m.objects.WithLabelValues(l)
		m.refused.WithLabelValues(l)
	}
	m.shifted.WithLabelValues("late")
	m.shifted.WithLabelValues("future")
	for _, l := range discardLabels {
		m.discarded.WithLabelValues(l)
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.objects, m.refused, m.records, m.noGroup, m.shifted, m.samples, m.discarded} {
			if err := reg.Register(c); err != nil {
				return metrics{}, fmt.Errorf("rates: register metrics: %w", err)
			}
		}
	}
	return m, nil
}

// flush moves the pending counts to the metrics and sets the gauges.
func (e *Engine) flush() {
	p := &e.pending
	m := &e.metrics
	m.records.Add(float64(p.records))
	m.noGroup.Add(float64(p.noGroup))
	m.shifted.WithLabelValues("late").Add(float64(p.late))
	m.shifted.WithLabelValues("future").Add(float64(p.future))
	m.samples.Add(float64(p.samples))
	for k, l := range kindLabels {
		if !e.part {
			m.objects.WithLabelValues(l).Set(float64(len(e.live[k])))
		}
		m.refused.WithLabelValues(l).Add(float64(p.refused[k]))
	}
	for i, l := range discardLabels {
		m.discarded.WithLabelValues(l).Add(float64(p.discarded[i]))
	}
	*p = pending{}
}
