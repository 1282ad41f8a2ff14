package collector

import (
	"net/netip"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flowsentry/flowsentry/collector/netflow"
	"github.com/flowsentry/flowsentry/flow"
)

// Values of the "reason" label of drops_total.
const (
	dropQueueFull = "queue_full"
	dropSocket    = "socket"
)

// Values of the "reason" label of template_evictions_total.
const (
	evictExporterLimit = "exporter_limit"
	evictTotalLimit    = "total_limit"
	evictAge           = "age"
)

// otherExporter is the exporter label of exporters beyond MaxExporters.
const otherExporter = "other"

// metrics are the collector's Prometheus metrics.
type metrics struct {
	datagrams          *prometheus.CounterVec
	records            *prometheus.CounterVec
	decodeErrors       *prometheus.CounterVec
	templatesLearned   *prometheus.CounterVec
	templatesWithdrawn *prometheus.CounterVec
	templateMisses     *prometheus.CounterVec
	held               *prometheus.CounterVec
	replayed           *prometheus.CounterVec
	noAddress          *prometheus.CounterVec
	skippedSamples     *prometheus.CounterVec
	heldDropped        prometheus.Counter
	templates          prometheus.GaugeFunc
	// The template_evictions_total series, by reason.
	evictedExporterLimit, evictedTotalLimit, evictedAge prometheus.Counter
	drops                                               *prometheus.CounterVec
	droppedRecords                                      *prometheus.CounterVec
	readErrors                                          *prometheus.CounterVec
	batchDelay                                          prometheus.Histogram
	receiveBuffer                                       *prometheus.GaugeVec
}

// newMetrics creates the metrics and registers them with reg; templates
// is the template cache whose size they report.
func newMetrics(reg prometheus.Registerer, templates *netflow.Templates) (*metrics, error) {
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: "flowsentry_collector_" + name, Help: help}, labels)
	}
	m := &metrics{
		datagrams:          counter("datagrams_total", "Datagrams received, by exporter and export version (netflow5, netflow9, ipfix, sflow5, unknown).", "exporter", "version"),
		records:            counter("records_total", "Flow records decoded into batches (those later dropped because the pipeline queue was full included), by exporter and export version.", "exporter", "version"),
		decodeErrors:       counter("decode_errors_total", "Datagrams the decoders rejected, in whole or in part, by exporter and reason.", "exporter", "reason"),
		templatesLearned:   counter("templates_learned_total", "NetFlow v9 / IPFIX templates learned or changed.", "exporter"),
		templatesWithdrawn: counter("templates_withdrawn_total", "IPFIX templates withdrawn.", "exporter"),
		templateMisses:     counter("template_misses_total", "NetFlow v9 / IPFIX data sets whose template was unknown.", "exporter"),
		held:               counter("held_datagrams_total", "Datagrams held until the template of their data arrives.", "exporter"),
		replayed:           counter("replayed_records_total", "Records decoded from held datagrams once their template arrived.", "exporter"),
		noAddress:          counter("records_without_address_total", "Data records dropped because their template has no source and destination address.", "exporter"),
		skippedSamples:     counter("skipped_samples_total", "sFlow samples that added nothing: unknown or vendor formats, non-IP packets, counter samples without generic interface counters.", "exporter"),
		heldDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "flowsentry_collector_held_dropped_datagrams_total",
			Help: "Held datagrams given up: too old, over the pending bound, or holding disabled.",
		}),
		drops:          counter("drops_total", "Datagrams lost: socket (the kernel receive buffer was full) or queue_full (a shard queue was full: the datagram was dropped before decoding unless it carried templates, or its batch was refused).", "reason"),
		droppedRecords: counter("dropped_records_total", "Decoded records lost because a shard queue was full when their batch was handed over.", "reason"),
		readErrors:     counter("read_errors_total", "Socket read errors other than stopping, by worker.", "worker"),
		batchDelay: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "flowsentry_collector_batch_delay_seconds",
			Help:    "Time from receiving the first datagram of a batch to handing the batch to the pipeline.",
			Buckets: prometheus.ExponentialBuckets(1e-5, 4, 10),
		}),
		receiveBuffer: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "flowsentry_collector_receive_buffer_bytes",
			Help: "Effective kernel receive buffer of each worker's socket (as set, without the kernel's doubling).",
		}, []string{"worker"}),
	}
	evictions := counter("template_evictions_total",
		"NetFlow v9 / IPFIX templates dropped from the cache: exporter_limit (the exporter had templates.max_templates_per_exporter), total_limit (the cache held templates.max_templates), age (not resent within templates.template_max_age).",
		"reason")
	m.evictedExporterLimit = evictions.WithLabelValues(evictExporterLimit)
	m.evictedTotalLimit = evictions.WithLabelValues(evictTotalLimit)
	m.evictedAge = evictions.WithLabelValues(evictAge)
	m.templates = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "flowsentry_collector_templates",
		Help: "NetFlow v9 / IPFIX templates in the cache, options templates included.",
	}, func() float64 { return float64(templates.Len()) })
	for _, c := range []prometheus.Collector{
		m.datagrams, m.records, m.decodeErrors, m.templatesLearned, m.templatesWithdrawn, m.templateMisses,
		m.held, m.replayed, m.noAddress, m.skippedSamples, m.heldDropped, evictions, m.templates, m.drops,
		m.droppedRecords, m.readErrors, m.batchDelay, m.receiveBuffer,
	} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	// Create the drop series at zero, so that dashboards and alerts see
	// them before the first drop.
	m.drops.WithLabelValues(dropQueueFull)
	m.drops.WithLabelValues(dropSocket)
	m.droppedRecords.WithLabelValues(dropQueueFull)
	return m, nil
}

// exporterLabels gives exporters their metric label: the address for the
// first max exporters seen, "other" for the rest. It is shared by workers.
type exporterLabels struct {
	mu     sync.Mutex
	max    int
	labels map[netip.Addr]string
}

// label returns the exporter label of a and whether a has one of its own.
func (l *exporterLabels) label(a netip.Addr) (string, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if s, ok := l.labels[a]; ok {
		return s, true
	}
	if len(l.labels) >= l.max {
		return otherExporter, false
	}
	s := a.String()
	l.labels[a] = s
	return s, true
}

// versions are the version label values, indexed by flow.Source.
var versions = [...]string{
	flow.SourceUnknown:   "unknown",
	flow.SourceNetFlowV5: flow.SourceNetFlowV5.String(),
	flow.SourceNetFlowV9: flow.SourceNetFlowV9.String(),
	flow.SourceIPFIX:     flow.SourceIPFIX.String(),
	flow.SourceSFlow:     flow.SourceSFlow.String(),
}

// exporterMetrics are the metric series of one exporter label, resolved
// once so that counting a datagram costs no label lookup. A worker owns
// its exporterMetrics values.
type exporterMetrics struct {
	m                  *metrics
	label              string
	datagrams, records [len(versions)]prometheus.Counter
	errors             map[string]prometheus.Counter
	templatesLearned   prometheus.Counter
	templatesWithdrawn prometheus.Counter
	templateMisses     prometheus.Counter
	held, replayed     prometheus.Counter
	noAddress          prometheus.Counter
	skippedSamples     prometheus.Counter
}

func newExporterMetrics(m *metrics, label string) *exporterMetrics {
	e := &exporterMetrics{
		m:                  m,
		label:              label,
		errors:             make(map[string]prometheus.Counter),
		templatesLearned:   m.templatesLearned.WithLabelValues(label),
		templatesWithdrawn: m.templatesWithdrawn.WithLabelValues(label),
		templateMisses:     m.templateMisses.WithLabelValues(label),
		held:               m.held.WithLabelValues(label),
		replayed:           m.replayed.WithLabelValues(label),
		noAddress:          m.noAddress.WithLabelValues(label),
		skippedSamples:     m.skippedSamples.WithLabelValues(label),
	}
	return e
}

// count adds one datagram of the given version and its outcome.
func (e *exporterMetrics) count(st stats) {
	if e.datagrams[st.source] == nil {
		// Resolved on first use, so that an exporter only has series for
		// the versions it sends.
		e.datagrams[st.source] = e.m.datagrams.WithLabelValues(e.label, versions[st.source])
		e.records[st.source] = e.m.records.WithLabelValues(e.label, versions[st.source])
	}
	e.datagrams[st.source].Inc()
	add(e.records[st.source], st.records)
	add(e.templatesLearned, st.templatesLearned)
	add(e.templatesWithdrawn, st.templatesWithdrawn)
	add(e.templateMisses, st.templateMisses)
	add(e.held, st.held)
	add(e.replayed, st.replayed)
	add(e.noAddress, st.noAddress)
	add(e.skippedSamples, st.skippedSamples)
	add(e.m.heldDropped, st.heldDropped)
	add(e.m.evictedExporterLimit, st.evicted.ExporterLimit)
	add(e.m.evictedTotalLimit, st.evicted.TotalLimit)
	add(e.m.evictedAge, st.evicted.Age)
}

// decodeError counts a decode error of the given reason.
func (e *exporterMetrics) decodeError(reason string) {
	c, ok := e.errors[reason]
	if !ok {
		c = e.m.decodeErrors.WithLabelValues(e.label, reason)
		e.errors[reason] = c
	}
	c.Inc()
}

// add adds n to c unless n is zero.
func add(c prometheus.Counter, n int) {
	if n != 0 {
		c.Add(float64(n))
	}
}
