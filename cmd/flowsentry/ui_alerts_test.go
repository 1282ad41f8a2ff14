package main

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/flowsentry/flowsentry/internal/browsertest"
)

// uiAlertsPlugin is a plugin that logs each call to $LOG_FILE, as the
// recorder does, prints a line the Alerts page must show as the call's
// output, and annotates the alert on UPDATE.
var uiAlertsPlugin = map[string]string{
	"gui.json": `{
  "label": "UI test",
  "buildDate": 1764028800000,
  "version": 1,
  "description": "Logs its calls, prints one line, annotates on UPDATE.",
  "executable": "run.sh",
  "supportedAlertTypes": ["*"],
  "configurationFields": [
    {"label": "Log file", "key": "LOG_FILE", "allowOverride": false, "fieldspec": {"type": "text", "minlength": 1, "maxlength": 4096, "required": true}}
  ],
  "containers": ["Volume (Packets)"],
  "update_fields": [{"label": "Packets seen", "key": "packets_seen", "container": "Volume (Packets)"}]
}`,
	"run.sh": `#!/bin/sh
echo "CALL $1 ID=$ID AID=$AID" >> "$LOG_FILE"
echo "uitest plugin: $1 for alert $ID"
if [ "$1" = UPDATE ]; then ftnbi -val packets_seen=42; fi
`,
}

// uiAlertsConfig writes the plugin under dir and returns the server's
// configuration: a threshold policy whose action waits for approval and
// a ddos_flood policy, both on the default traffic group.
func uiAlertsConfig(t *testing.T, dir, logFile string) string {
	t.Helper()
	plug := filepath.Join(dir, "plugins", "uitest")
	if err := os.MkdirAll(plug, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range uiAlertsPlugin {
		if err := os.WriteFile(filepath.Join(plug, name), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return fmt.Sprintf(`plugin_dir: %s
admin:
  user: admin
  password: s3cret-pass
alerts:
  update_interval: 2s
  quiet_period: 5s
  max_age: 1h
instances:
  - {id: 1, cid: 0, plugin: uitest, name: ui test, values: {LOG_FILE: %s}}
policies:
  - id: 70
    name: TG packets in
    cid: 0
    family: threshold
    target: traffic_groups
    object_type: TGRP
    threshold_type: packets_in
    threshold: 100
    severity: 4
    actions:
      - {instance: 1, approval: true}
  - {id: 71, name: flood, cid: 0, family: ddos_flood, target: traffic_groups, object_type: TGRP, threshold: 10, severity: 7, actions: []}
`, filepath.Join(dir, "plugins"), logFile)
}

// TestUIAlerts drives the Alerts page in headless Chromium against a real
// server fed a NetFlow v9 flood that opens alerts of two types, one with
// an action waiting for approval: the list shows them, a type filter
// narrows the list and the other facets' counts (and is kept in the URL),
// a note with an @tag becomes a filter, a drag across the graph zooms the
// time range, approving the action calls the plugin, and the detail shows
// the call's output.
func TestUIAlerts(t *testing.T) {
	dir := t.TempDir()
	logFile := filepath.Join(dir, "calls.log")
	s := startServer(t, uiAlertsConfig(t, dir, logFile))
	stop := stallFlood(t, s.netflow, netip.MustParsePrefix("10.9.0.0/16"), 11)
	defer stop()

	// The API first: two types of alert open.
	var listed []struct {
		ID   uint64 `json:"id"`
		Type string `json:"alert_type"`
	}
	types := map[string]uint64{}
	waitFor(t, func() bool {
		s.authGet(t, "/api/v1/alerts", &listed)
		clear(types)
		for _, a := range listed {
			types[a.Type] = a.ID
		}
		_, ok := types["threshold_exceeded"]
		return ok && len(types) >= 2
	}, "a threshold_exceeded alert and one of another type", s)
	thresholdID := types["threshold_exceeded"]
	otherType := "ddos_flood"
	if _, ok := types[otherType]; !ok {
		for ty := range types {
			if ty != "threshold_exceeded" {
				otherType = ty
			}
		}
	}
	t.Logf("alert types: %v", types)

	ctx := browsertest.New(t, 90*time.Second)
	browsertest.Login(t, ctx, s.base, "admin", "s3cret-pass")
	if p := browsertest.Eval[string](t, ctx, "location.pathname"); p != "/alerts" {
		t.Errorf("a fresh login leads to %s, want /alerts", p)
	}
	browsertest.WaitText(t, ctx, "#al-list tbody", "threshold_exceeded")
	browsertest.WaitText(t, ctx, "#al-list tbody", otherType)
	browsertest.WaitText(t, ctx, "#al-waiting", "1 action waiting for approval")
	rowTypes := func() []string {
		return browsertest.Eval[[]string](t, ctx, `[...document.querySelectorAll("#al-list tr.al-row")].map(r => r.dataset.type)`)
	}
	if got := rowTypes(); len(got) < 2 {
		t.Errorf("list rows %v, want the alerts of both types", got)
	}
	facetCount := func(facet, value string) string {
		return browsertest.Eval[string](t, ctx, fmt.Sprintf(
			`(() => { const i = document.querySelector('input[data-facet=%q][value=%q]'); return i ? i.closest("label").querySelector(".al-count").textContent : "absent"; })()`, facet, value))
	}
	if n := facetCount("status", "waiting"); n != "1" {
		t.Errorf("status facet: %s alerts waiting for approval, want 1", n)
	}
	browsertest.Screenshot(t, ctx, "list")

	// Filter by the other type: only its alerts, in the URL, and the
	// status facet now counts none waiting (only the threshold policy
	// has an action).
	loads := browsertest.Eval[int](t, ctx, "alertsPage.loads")
	browsertest.Do(t, ctx, chromedp.Click(chromedp.CSS(fmt.Sprintf(`input[data-facet="type"][value=%q]`, otherType))))
	waitBrowser(t, ctx, fmt.Sprintf("alertsPage.loads > %d && alertsPage.renderMs !== null", loads), "the filtered list")
	for _, ty := range rowTypes() {
		if ty != otherType {
			t.Errorf("type filter %s: the list shows a %s alert", otherType, ty)
		}
	}
	if q := browsertest.Eval[string](t, ctx, "location.search"); !strings.Contains(q, "type="+otherType) {
		t.Errorf("URL %q lacks the type filter", q)
	}
	if n := facetCount("status", "waiting"); n != "absent" && n != "0" {
		t.Errorf("status facet under the type filter: %s waiting, want none", n)
	}
	t.Logf("filter change re-rendered in %.1f ms (performance.now in the page)", browsertest.Eval[float64](t, ctx, "alertsPage.renderMs"))
	browsertest.Screenshot(t, ctx, "type-filter")

	// Reloading the bookmarked URL restores the filter.
	browsertest.Do(t, ctx, chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS("#al-list tr.al-row")))
	if !browsertest.Eval[bool](t, ctx, fmt.Sprintf(`document.querySelector('input[data-facet="type"][value=%q]').checked`, otherType)) {
		t.Error("the type filter is not restored from the URL")
	}
	browsertest.Do(t, ctx, chromedp.Click(chromedp.CSS(`button[data-clear="type"]`)))
	browsertest.WaitText(t, ctx, "#al-list tbody", "threshold_exceeded")

	// Open the threshold alert, add a note with an @tag, filter by it.
	browsertest.Do(t, ctx, chromedp.Click(chromedp.CSS(fmt.Sprintf(`#al-list tr[data-id="%d"]`, thresholdID))))
	browsertest.WaitText(t, ctx, "#al-detail", "waiting for approval")
	browsertest.Do(t, ctx,
		chromedp.SendKeys(chromedp.ID("al-note-text"), "checked with the upstream @uitest"),
		chromedp.Click(chromedp.CSS("#al-note-form button")),
	)
	browsertest.WaitText(t, ctx, "#al-notes", "checked with the upstream @uitest")
	waitBrowser(t, ctx, `!!document.querySelector('input[data-facet="note"][value="@uitest"]')`, "the @uitest entry of the notes facet")
	browsertest.Do(t, ctx, chromedp.Click(chromedp.CSS(`input[data-facet="note"][value="@uitest"]`)))
	waitBrowser(t, ctx, fmt.Sprintf(`(() => { const r = [...document.querySelectorAll("#al-list tr.al-row")]; return r.length === 1 && r[0].dataset.id === "%d"; })()`, thresholdID), "only the noted alert")
	if q := browsertest.Eval[string](t, ctx, "location.search"); !strings.Contains(q, "note=%40uitest") {
		t.Errorf("URL %q lacks the note filter", q)
	}
	browsertest.Screenshot(t, ctx, "note-filter")

	// Approve the waiting action: its state changes, the plugin is
	// called, and the call's output shows in the detail.
	browsertest.Do(t, ctx, chromedp.Click(chromedp.CSS(`#al-detail button[data-op="approve"]`)))
	browsertest.WaitText(t, ctx, "#al-detail .al-action", "in progress")
	waitFor(t, func() bool {
		b, _ := os.ReadFile(logFile)
		return strings.Contains(string(b), fmt.Sprintf("CALL CREATE ID=%d", thresholdID))
	}, "the plugin's CREATE after the approval", s)
	browsertest.WaitText(t, ctx, "#al-detail .al-calls", fmt.Sprintf("uitest plugin: CREATE for alert %d", thresholdID))
	waitBrowser(t, ctx, `document.getElementById("al-waiting").hidden`, "the waiting badge to go")
	// The plugin's UPDATE annotates the alert: the open detail, kept
	// current by the alert's events, graphs the value.
	browsertest.WaitText(t, ctx, "#al-detail .al-calls", "uitest plugin: UPDATE")
	browsertest.WaitText(t, ctx, "#al-detail .al-ann", "Packets seen")
	if n := browsertest.Eval[int](t, ctx, `document.querySelectorAll("#al-detail .al-ann .uplot").length`); n != 1 {
		t.Errorf("%d annotation graphs, want 1 (the Volume (Packets) container)", n)
	}
	browsertest.Eval[any](t, ctx, `(() => { const p = document.getElementById("al-detail"); p.scrollTop = p.querySelector(".al-action").offsetTop - 60; })()`)
	browsertest.Screenshot(t, ctx, "approved")

	// Zoom: a mouse drag across the last tenth of the graph, where the
	// alerts are, to its right edge sets an absolute range of about 90 s
	// ending now that still holds the noted alert. First a fresh
	// 15-minute view, so that the graph ends after every alert began.
	loads = browsertest.Eval[int](t, ctx, `window.alertsPage.loads`)
	browsertest.Do(t, ctx, chromedp.Click(chromedp.CSS(`#al-presets button[data-range="15m"]`)))
	waitBrowser(t, ctx, fmt.Sprintf(`window.alertsPage.loads > %d`, loads), "the 15-minute view")
	box := browsertest.Eval[[]float64](t, ctx, `(() => { const r = document.querySelector("#al-graph .u-over").getBoundingClientRect(); return [r.left, r.top, r.width, r.height]; })()`)
	y := box[1] + box[3]/2
	browsertest.Do(t, ctx, chromedp.DragAndDropXY(box[0]+box[2]*0.9, y, box[0]+box[2]-1, y, 10))
	waitBrowser(t, ctx, `location.search.includes("from=") && !location.search.includes("range=")`, "the zoomed range in the URL")
	from := browsertest.Eval[float64](t, ctx, `Date.parse(new URLSearchParams(location.search).get("from")) / 1000`)
	to := browsertest.Eval[float64](t, ctx, `Date.parse(new URLSearchParams(location.search).get("to")) / 1000`)
	if span := to - from; span < 900*0.05 || span > 900*0.15 {
		t.Errorf("zoomed to %.0f s, want about a tenth of the 15 minutes", span)
	}
	waitBrowser(t, ctx, fmt.Sprintf(`(() => { const r = [...document.querySelectorAll("#al-list tr.al-row")]; return r.length === 1 && r[0].dataset.id === "%d"; })()`, thresholdID), "the noted alert in the zoomed range")
	browsertest.Screenshot(t, ctx, "zoomed")
}

// waitBrowser polls the JavaScript expression cond in the page until it
// is true, failing the test naming what it waited for.
func waitBrowser(t *testing.T, ctx context.Context, cond, what string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !browsertest.Eval[bool](t, ctx, cond) {
		if time.Now().After(deadline) {
			t.Fatalf("browser: timed out waiting for %s (%s)", what, cond)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
