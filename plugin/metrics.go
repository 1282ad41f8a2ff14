package plugin

import "github.com/prometheus/client_golang/prometheus"

// Values of the "result" label of calls_total.
const (
	resultOK       = "ok"        // exit code 0
	resultExit     = "exit_code" // a non-zero exit code
	resultSignal   = "signal"    // killed by a signal it did not get from us
	resultTimeout  = "timeout"   // over the time limit, killed
	resultCanceled = "canceled"  // the caller gave up, killed or never started
	resultError    = "error"     // not started: invalid plugin, missing executable, bad operation
)

// metrics are the runner's Prometheus metrics.
type metrics struct {
	calls     *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	timeouts  *prometheus.CounterVec
	truncated *prometheus.CounterVec
	discarded *prometheus.CounterVec
	leftovers *prometheus.CounterVec
	running   prometheus.Gauge
	waiting   prometheus.Gauge
}

// newMetrics creates the metrics and registers them with reg (if not nil).
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: "flowsentry_plugin_" + name, Help: help}, labels)
	}
	m := &metrics{
		calls:     counter("calls_total", "Plugin calls, by plugin, operation and result (ok, exit_code, signal, timeout, canceled, error).", "plugin", "op", "result"),
		timeouts:  counter("call_timeouts_total", "Plugin calls killed for running over the time limit.", "plugin"),
		truncated: counter("output_truncated_total", "Plugin calls whose output went beyond the bytes kept.", "plugin"),
		discarded: counter("output_discarded_bytes_total", "Bytes of plugin output read beyond the bytes kept and discarded.", "plugin"),
		leftovers: counter("leftover_processes_killed_total", "Processes a plugin call left behind (in its process group, or carrying its TKN), killed when it returned.", "plugin"),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "flowsentry_plugin_call_duration_seconds",
			Help:    "Time from starting a plugin's process to its exit, by plugin and operation.",
			Buckets: prometheus.ExponentialBucketsRange(0.001, 120, 12),
		}, []string{"plugin", "op"}),
		running: prometheus.NewGauge(prometheus.GaugeOpts{Name: "flowsentry_plugin_calls_running", Help: "Plugin calls running now."}),
		waiting: prometheus.NewGauge(prometheus.GaugeOpts{Name: "flowsentry_plugin_calls_waiting", Help: "Plugin calls waiting for a free slot (max_concurrent)."}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.calls, m.duration, m.timeouts, m.truncated, m.discarded, m.leftovers, m.running, m.waiting} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
