package detect_test

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/flowsentry/flowsentry/detect"
)

// TestMetricsDropped counts drops by detector and reason, and a nil
// Metrics hands out counters that count nowhere.
func TestMetricsDropped(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := detect.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	m.Dropped("exfil", "max_sessions").Add(3)
	m.Dropped("scan", "max_scanners").Inc()
	if got := testutil.ToFloat64(m.Dropped("exfil", "max_sessions")); got != 3 {
		t.Errorf("exfil max_sessions = %v, want 3", got)
	}
	if n, err := testutil.GatherAndCount(reg, "flowsentry_detect_dropped_total"); err != nil || n != 2 {
		t.Errorf("series = %d (%v), want 2", n, err)
	}
	var none *detect.Metrics
	none.Dropped("exfil", "max_sessions").Inc() // must not panic
	if _, err := detect.NewMetrics(reg); err == nil {
		t.Error("registering twice: no error")
	}
}
