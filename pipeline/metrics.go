package pipeline

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	queued       prometheus.Gauge
	records      prometheus.Counter
	batchSeconds prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		queued: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "flowsentry_pipeline_queued_batches",
			Help: "Batches waiting in the pipeline queue.",
		}),
		records: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "flowsentry_pipeline_records_total",
			Help: "Flow records processed by the pipeline stages.",
		}),
		batchSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "flowsentry_pipeline_batch_duration_seconds",
			Help:    "Time the stages took to process one batch.",
			Buckets: prometheus.ExponentialBuckets(1e-6, 4, 10),
		}),
	}
	for _, c := range []prometheus.Collector{m.queued, m.records, m.batchSeconds} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
