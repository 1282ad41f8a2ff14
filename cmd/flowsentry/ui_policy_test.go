package main

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/flowsentry/flowsentry/internal/browsertest"
)

// policyConfig is a partition with groups alpha (10.9.0.0/16, flooded)
// and beta, and a configuration-file policy on packets_in.
const policyConfig = `partitions:
  - {cid: 0, name: main, internal: [10.0.0.0/8]}
traffic_groups:
  - {id: 1, name: alpha, partition: 0, cidrs: [10.9.0.0/16]}
  - {id: 2, name: beta, partition: 0, cidrs: [10.8.0.0/16]}
policies:
  - {id: 60, name: flood cfg, cid: 0, family: threshold, target: traffic_groups, object_type: TGRP, threshold_type: packets_in, threshold: 100, severity: 6, actions: []}
`

// TestUIPolicy drives the Policy page of a server fed a NetFlow flood into
// group alpha: the matrix as the API computes it, an override and a mute
// set through the dialogs, a port line added with +, and the
// configuration file's policy shown read-only.
func TestUIPolicy(t *testing.T) {
	s := startServer(t, policyConfig)
	stop := stallFlood(t, s.netflow, netip.MustParsePrefix("10.9.0.0/16"), 7)
	defer stop()
	waitFor(t, func() bool {
		_, body := s.send(t, "GET", "/api/v1/trafficgroups/1", "")
		var g struct {
			Cur struct {
				PacketsIn float64 `json:"packets_in"`
			} `json:"cur"`
		}
		return json.Unmarshal([]byte(body), &g) == nil && g.Cur.PacketsIn > 0
	}, "traffic in group alpha", s)
	stop()

	ctx := browsertest.New(t, 90*time.Second)
	browsertest.Login(t, ctx, s.base, "admin", "s3cret-pass")
	browsertest.Do(t, ctx, chromedp.Navigate(s.base+"/policy"))
	pi := `td[data-row="threshold/packets_in/0/0"]`
	browsertest.Do(t, ctx, chromedp.WaitVisible(chromedp.CSS(pi+`[data-col="alpha"]`)))
	browsertest.Screenshot(t, ctx, "matrix")

	// The cells match the API's matrix.
	code, body := s.send(t, "GET", "/api/v1/policy/matrix?cid=0", "")
	if code != 200 {
		t.Fatalf("matrix: %d %s", code, body)
	}
	var m struct {
		Partitions []struct {
			Columns []struct{ Name string }
			Rows    []struct{ Key string }
			Cells   [][]struct {
				State    string
				LastHour int `json:"last_hour"`
				Policy   *struct{ ID uint64 }
			}
		}
	}
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatal(err)
	}
	pt := m.Partitions[0]
	for i, r := range pt.Rows {
		if r.Key != "threshold/packets_in/0/0" {
			continue
		}
		for j, c := range pt.Columns {
			if c.Name != "alpha" && c.Name != "beta" {
				continue
			}
			sel := fmt.Sprintf(`%s[data-col=%q]`, pi, c.Name)
			if got := browsertest.Eval[string](t, ctx, fmt.Sprintf(`document.querySelector(%q).dataset.state`, sel)); got != cmpState(pt.Cells[i][j].State) {
				t.Errorf("%s: page state %q, API %q", c.Name, got, pt.Cells[i][j].State)
			}
		}
	}
	if txt := browsertest.Text(t, ctx, pi+`[data-col="alpha"] .val`); txt == "0/s" || txt == "" {
		t.Errorf("alpha's packets_in cell shows %q, want the flood's rate", txt)
	}

	// The configuration file's policy is read-only in its dialog.
	browsertest.Do(t, ctx, chromedp.Click(chromedp.CSS(pi+`[data-col="All traffic groups"]`)),
		chromedp.WaitVisible(chromedp.ID("cell-dialog")))
	browsertest.Screenshot(t, ctx, "config-readonly")
	if !strings.Contains(browsertest.Text(t, ctx, "#cell-readonly"), "configuration file") {
		t.Errorf("config policy dialog: %q", browsertest.Text(t, ctx, "#cell-readonly"))
	}
	browsertest.Do(t, ctx, chromedp.Click(chromedp.ID("cell-close")))

	// An override on alpha and a mute on beta of the file's template.
	bi := pi
	browsertest.Do(t, ctx, chromedp.Click(chromedp.CSS(bi+`[data-col="alpha"]`)), chromedp.WaitVisible(chromedp.ID("save-override")))
	browsertest.Eval[string](t, ctx, `document.getElementById("f-threshold").value = "4242"`)
	browsertest.Screenshot(t, ctx, "override-dialog")
	browsertest.Do(t, ctx, chromedp.Click(chromedp.ID("save-override")))
	browsertest.WaitText(t, ctx, bi+`[data-col="alpha"] .kind`, "O")
	nc := pi
	browsertest.Do(t, ctx, chromedp.Click(chromedp.CSS(nc+`[data-col="beta"]`)), chromedp.WaitVisible(chromedp.ID("mute")))
	browsertest.Do(t, ctx, chromedp.Click(chromedp.ID("mute")))
	browsertest.WaitText(t, ctx, nc+`[data-col="beta"] .kind`, "M")
	browsertest.Screenshot(t, ctx, "override-and-mute")
	_, list := s.send(t, "GET", "/api/v1/policies", "")
	var pols []struct {
		Name      string
		Severity  int
		Group     uint32  `json:"tgrp"`
		Override  uint64  `json:"override"`
		Threshold float64 `json:"threshold"`
		Counter   string  `json:"threshold_type"`
	}
	if err := json.Unmarshal([]byte(list), &pols); err != nil {
		t.Fatal(err)
	}
	var override, mute bool
	for _, p := range pols {
		override = override || p.Group == 1 && p.Override != 0 && p.Counter == "packets_in" && p.Threshold == 4242 && p.Severity > 0
		mute = mute || p.Group == 2 && p.Override != 0 && p.Counter == "packets_in" && p.Severity == 0
	}
	if !override || !mute {
		t.Errorf("override %t mute %t in %s", override, mute, list)
	}

	// A port line added with +, then a template on it.
	browsertest.Do(t, ctx, chromedp.Click(chromedp.CSS(`tr[data-key="port_threshold"] .add-line`)), chromedp.WaitVisible(chromedp.ID("line-dialog")))
	browsertest.Eval[string](t, ctx, `document.getElementById("line-port").value = "8443"`)
	browsertest.Do(t, ctx, chromedp.Click(chromedp.ID("line-add")))
	line := `td[data-row="port_threshold/bytes_in/6/8443"]`
	browsertest.Do(t, ctx, chromedp.Click(chromedp.CSS(line+`[data-col="All traffic groups"]`)), chromedp.WaitVisible(chromedp.ID("save-template")))
	browsertest.Eval[string](t, ctx, `document.getElementById("f-name").value = "Alt HTTPS"; document.getElementById("f-threshold").value = "1000"`)
	browsertest.Do(t, ctx, chromedp.Click(chromedp.ID("save-template")))
	browsertest.WaitText(t, ctx, line+`[data-col="All traffic groups"] .kind`, "T")
	browsertest.Screenshot(t, ctx, "port-line")
	if _, list := s.send(t, "GET", "/api/v1/policies", ""); !strings.Contains(list, `"port": 8443`) {
		t.Errorf("no port 8443 policy: %s", list)
	}
}

// cmpState is the page's data-state of an API state.
func cmpState(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// TestUIPolicyRender200 measures, in the browser, the Policy page's load
// and render with 200 traffic groups.
func TestUIPolicyRender200(t *testing.T) {
	var b strings.Builder
	b.WriteString("partitions:\n  - {cid: 0, name: main, internal: [10.0.0.0/8]}\ntraffic_groups:\n")
	for g := 1; g <= 200; g++ {
		fmt.Fprintf(&b, "  - {id: %d, name: g%d, partition: 0, cidrs: [10.%d.%d.0/24]}\n", g, g, g/256, g%256)
	}
	s := startServer(t, b.String())
	ctx := browsertest.New(t, 60*time.Second)
	browsertest.Login(t, ctx, s.base, "admin", "s3cret-pass")
	browsertest.Do(t, ctx, chromedp.Navigate(s.base+"/policy"), chromedp.WaitVisible(chromedp.CSS(`td[data-col="g200"]`)))
	ms := browsertest.Eval[string](t, ctx, `document.getElementById("policy-rendered").dataset.ms`)
	cells := browsertest.Eval[int](t, ctx, `document.querySelectorAll("td.cell").length`)
	t.Logf("Policy page with 200 traffic groups: %s ms to load and draw %d cells", ms, cells)
	browsertest.Screenshot(t, ctx, "render-200")
	if cells < 200*8 {
		t.Errorf("%d cells, want at least 1600", cells)
	}
}
