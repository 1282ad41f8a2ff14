package main

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/flowsentry/flowsentry/alert"
	"github.com/flowsentry/flowsentry/internal/browsertest"
	"github.com/flowsentry/flowsentry/store"
)

// TestUIAlerts100k measures the Alerts page over a database of 100,000
// alerts of 30 types spread over 7 days: the time from ticking a type in
// the filter column to the list, counts and graph drawn again, taken in
// the page with performance.now(). The target is 300 ms; the test logs
// the time and fails only far above it, as a loaded machine (or -race)
// may be slow.
func TestUIAlerts100k(t *testing.T) {
	s := startServer(t, "")
	s.term(t)
	seedAlerts(t, filepath.Join(filepath.Dir(s.configPath), "data"), 100_000)
	s.launch(t)

	ctx := browsertest.New(t, 120*time.Second)
	browsertest.Login(t, ctx, s.base, "admin", "s3cret-pass")
	browsertest.Do(t, ctx, chromedp.Navigate(s.base+"/alerts?range=7d"))
	waitBrowser(t, ctx, `alertsPage.loads > 0`, "the first load")
	if total := browsertest.Text(t, ctx, "#al-total"); total == "" {
		t.Fatal("no total shown")
	}
	var times []float64
	for i, ty := range []string{"type_3", "type_17"} {
		loads := browsertest.Eval[int](t, ctx, "alertsPage.loads")
		browsertest.Do(t, ctx, chromedp.Click(chromedp.CSS(fmt.Sprintf(`input[data-facet="type"][value=%q]`, ty))))
		waitBrowser(t, ctx, fmt.Sprintf("alertsPage.loads > %d && alertsPage.renderMs !== null", loads), "the filtered view")
		ms := browsertest.Eval[float64](t, ctx, "alertsPage.renderMs")
		times = append(times, ms)
		if i == 0 {
			browsertest.Screenshot(t, ctx, "filtered")
		}
	}
	t.Logf("filter change with 100,000 alerts: %.0f ms, %.0f ms (target 300 ms)", times[0], times[1])
	for _, ms := range times {
		if ms > 3000 {
			t.Errorf("a filter change took %.0f ms with 100,000 alerts, far over the 300 ms target", ms)
		}
	}
}

// seedAlerts writes n ended alerts of 30 types, severities 1 to 10 and
// partition 0 over the last 7 days into the store in dataDir.
func seedAlerts(t *testing.T, dataDir string, n int) {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, dataDir, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Now()
	const batch = 5000
	for i := 0; i < n; i += batch {
		list := make([]*alert.Alert, 0, batch)
		for j := i; j < min(n, i+batch); j++ {
			start := now.Add(-time.Duration(float64(j) / float64(n) * float64(7*24*time.Hour)))
			list = append(list, &alert.Alert{
				Policy: 1, Key: "seed/" + strconv.Itoa(j), Type: "type_" + strconv.Itoa(j%30),
				CID: 0, CIDName: "default", Severity: 1 + j%10,
				Earliest: start, Latest: start.Add(time.Duration(j%600) * time.Second), LastCall: start,
				Ended:  start.Add(time.Duration(j%600+1) * time.Second),
				Fields: []alert.Field{{Name: "TARGET_IP", Value: fmt.Sprintf("10.%d.%d.%d", j>>16&255, j>>8&255, j&255)}},
			})
		}
		if err := st.SaveAlerts(ctx, list); err != nil {
			t.Fatal(err)
		}
	}
}
