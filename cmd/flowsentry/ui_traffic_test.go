package main

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/flowsentry/flowsentry/internal/browsertest"
)

// TestUITraffic drives the Traffic page while a NetFlow v9 flood goes
// into traffic group 1: the three charts get the live per-second points,
// the top-hosts table lists flooded hosts, which the API lists too, a
// click on a header sorts by that counter (kept in the URL), and the
// "7 days" toggle reloads the history. An exporter interface gets the live
// points too, and its top ports, those the API lists for it.
func TestUITraffic(t *testing.T) {
	s := startServer(t, `rates:
  window: 2s
traffic_groups:
  - {id: 1, name: lab, partition: 0, cidrs: [10.9.0.0/16]}
  - {id: 2, name: quiet, partition: 0, cidrs: [10.10.0.0/16]}
`)
	stop := stallFlood(t, s.netflow, netip.MustParsePrefix("10.9.0.0/16"), 5)
	defer stop()
	ctx := browsertest.New(t, 60*time.Second)
	browsertest.Login(t, ctx, s.base, "admin", "s3cret-pass")
	browsertest.Do(t, ctx, chromedp.Navigate(s.base+"/traffic?obj=g:1"))
	browsertest.WaitText(t, ctx, "#traffic-live", "live")
	for _, chart := range []string{"chart-bits", "chart-packets", "chart-conns"} {
		browsertest.Do(t, ctx, chromedp.WaitVisible(chromedp.CSS("#"+chart+"[data-points]:not([data-points='0'])")))
	}
	browsertest.Do(t, ctx, chromedp.WaitVisible(chromedp.CSS("#top-hosts tbody tr:nth-child(10)")))
	browsertest.Screenshot(t, ctx, "traffic-live")

	shown := browsertest.Eval[[]string](t, ctx, `[...document.querySelectorAll("#top-hosts tbody tr td:first-child")].map(td => td.textContent)`)
	code, body := s.send(t, "GET", "/api/v1/trafficgroups/1/hosts?limit=1000", "")
	var all []struct {
		Key struct {
			IP string `json:"ip"`
		} `json:"key"`
	}
	if err := json.Unmarshal([]byte(body), &all); code != 200 || err != nil {
		t.Fatalf("hosts of group 1: %d %v %s", code, err, body)
	}
	var api []string
	for _, h := range all {
		api = append(api, h.Key.IP)
	}
	flooded := netip.MustParsePrefix("10.9.0.0/16")
	for _, ip := range shown {
		if a, err := netip.ParseAddr(ip); err != nil || !flooded.Contains(a) || !slices.Contains(api, ip) {
			t.Errorf("top host %q is not a flooded host of group 1 the API lists (%d of them)", ip, len(api))
		}
	}
	if len(shown) != 10 {
		t.Errorf("top hosts lists %d rows, want 10", len(shown))
	}

	// Sort by unique endpoints (the scanners' view): the URL keeps it.
	browsertest.Do(t, ctx, chromedp.Click(chromedp.CSS(`#top-hosts th[data-sort="uniq_local_endpoint"]`)))
	browsertest.Do(t, ctx, chromedp.WaitVisible(chromedp.CSS(`#top-hosts th.sorted[data-sort="uniq_local_endpoint"]`)))
	if q := browsertest.Eval[string](t, ctx, "location.search"); !strings.Contains(q, "hsort=uniq_local_endpoint") || !strings.Contains(q, "obj=g%3A1") {
		t.Errorf("the URL %q does not keep the selection", q)
	}
	browsertest.Screenshot(t, ctx, "traffic-sorted")

	// The 7 days view asks the server for the downsampled history.
	browsertest.Do(t, ctx, chromedp.Click(chromedp.ID("range-7d")))
	browsertest.Do(t, ctx, chromedp.WaitVisible(chromedp.CSS(`#range-7d[aria-pressed="true"]`)))
	if q := browsertest.Eval[string](t, ctx, "location.search"); !strings.Contains(q, "range=7d") {
		t.Errorf("the URL %q does not keep the range", q)
	}
	asked := `performance.getEntriesByType("resource").filter(e => e.name.includes("/api/v1/history") && e.name.includes("max_points=1000")).length`
	if n := browsertest.Eval[float64](t, ctx, asked); n < 1 {
		t.Error("the 7 days view did not ask GET /api/v1/history for 1000 points")
	}
	browsertest.Screenshot(t, ctx, "traffic-7d")

	// Interface 1 of the exporter (flowgen sends from 127.0.0.1 with
	// interfaces 1 to 4): live points, and its ports, without hosts.
	browsertest.Do(t, ctx, chromedp.Navigate(s.base+"/traffic?obj=i:127.0.0.1/1"))
	browsertest.WaitText(t, ctx, "#traffic-live", "live")
	for _, chart := range []string{"chart-bits", "chart-packets", "chart-conns"} {
		browsertest.Do(t, ctx, chromedp.WaitVisible(chromedp.CSS("#"+chart+"[data-points]:not([data-points='0'])")))
	}
	browsertest.Do(t, ctx, chromedp.WaitVisible(chromedp.CSS("#top-ports tbody tr")))
	if browsertest.Eval[bool](t, ctx, `!document.getElementById("top-hosts-part").hidden`) {
		t.Error("an interface shows a top-hosts table")
	}
	browsertest.Screenshot(t, ctx, "traffic-interface")
	ports := browsertest.Eval[[]string](t, ctx, `[...document.querySelectorAll("#top-ports tbody tr td:first-child")].map(td => td.textContent)`)
	code, body = s.send(t, "GET", "/api/v1/exporters/127.0.0.1/interfaces/1/ports?limit=1000", "")
	var ifPorts []struct {
		Key struct {
			Proto   uint8  `json:"proto"`
			Port    uint16 `json:"port"`
			IfIndex uint32 `json:"ifindex"`
		} `json:"key"`
	}
	if err := json.Unmarshal([]byte(body), &ifPorts); code != 200 || err != nil || len(ifPorts) == 0 {
		t.Fatalf("ports of interface 1: %d %v %s", code, err, body)
	}
	var want []string
	for _, p := range ifPorts {
		if p.Key.IfIndex != 1 {
			t.Errorf("the API lists a port of interface %d: %+v", p.Key.IfIndex, p)
		}
		want = append(want, fmt.Sprintf("%d/%s", p.Key.Port, map[uint8]string{6: "tcp", 17: "udp"}[p.Key.Proto]))
	}
	if len(ports) == 0 || len(ports) > 10 {
		t.Errorf("top ports of the interface: %d rows, want 1 to 10", len(ports))
	}
	for _, p := range ports {
		if !slices.Contains(want, p) {
			t.Errorf("top port %q is not one the API lists for interface 1 (%v)", p, want)
		}
	}
}
