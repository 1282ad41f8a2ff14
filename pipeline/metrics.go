package pipeline

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	queued       *prometheus.GaugeVec
	records      *prometheus.CounterVec
	dropped      *prometheus.CounterVec
	batchSeconds *prometheus.HistogramVec
	tickSeconds  prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer, shards int) (*metrics, error) {
	m := &metrics{
		queued: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "flowsentry_pipeline_queued_batches",
			Help: "Batches waiting in a shard's queue.",
		}, []string{"shard"}),
		records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flowsentry_pipeline_records_total",
			Help: "Flow records processed by a shard (a record whose two sides belong to two shards counts in both).",
		}, []string{"shard"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flowsentry_pipeline_dropped_total",
			Help: "Flow records dropped before a shard, by reason (queue_full: the shard's queue was full; raise pipeline.queue_length or pipeline.shards).",
		}, []string{"shard", "reason"}),
		batchSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "flowsentry_pipeline_batch_duration_seconds",
			Help:    "Time a shard's stages took to process one batch.",
			Buckets: prometheus.ExponentialBuckets(1e-6, 4, 10),
		}, []string{"shard"}),
		tickSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "flowsentry_pipeline_tick_duration_seconds",
			Help:    "Time the stages of the whole (merge, detectors, alert engine) took at one tick, while the shards waited.",
			Buckets: prometheus.ExponentialBuckets(1e-5, 4, 10),
		}),
	}
	for i := range shards {
		l := strconv.Itoa(i)
		m.queued.WithLabelValues(l)
		m.records.WithLabelValues(l)
		m.dropped.WithLabelValues(l, "queue_full")
	}
	for _, c := range []prometheus.Collector{m.queued, m.records, m.dropped, m.batchSeconds, m.tickSeconds} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
