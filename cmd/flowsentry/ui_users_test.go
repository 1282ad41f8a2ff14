package main

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/flowsentry/flowsentry/internal/browsertest"
)

// usersConfig has two partitions with one traffic group each.
const usersConfig = `partitions:
  - cid: 0
    name: default
    internal: [10.0.0.0/8]
  - cid: 1
    name: customer-a
    internal: [198.51.100.0/24]
traffic_groups:
  - {id: 1, name: office, partition: 0, cidrs: [10.1.0.0/16]}
  - {id: 2, name: shop, partition: 1, cidrs: [198.51.100.0/24]}
`

// TestUIUsers drives the Users page: an admin creates a viewer of
// partition 0 (the API's refusal of a bad name shown as it comes), the
// audit log lists the change; the viewer, logged in in a second browser,
// has no Users page and sees only partition 0's traffic group.
func TestUIUsers(t *testing.T) {
	s := startServer(t, usersConfig)
	ctx := browsertest.New(t, 60*time.Second)
	browsertest.Login(t, ctx, s.base, "admin", "s3cret-pass")
	browsertest.Do(t, ctx, chromedp.Navigate(s.base+"/users"))
	browsertest.WaitText(t, ctx, "#users tbody", "admin")
	browsertest.Do(t, ctx, chromedp.WaitVisible(chromedp.CSS(`#user-cids input[value="1"]`)))

	// A bad name: the API's message is shown.
	browsertest.Do(t, ctx,
		chromedp.SendKeys(chromedp.ID("user-name"), "eve smith"),
		chromedp.SendKeys(chromedp.ID("user-password"), "eve-pass-123"),
		chromedp.Click(chromedp.CSS(`#user-cids input[value="0"]`)),
		chromedp.Click(chromedp.ID("user-save")),
	)
	browsertest.WaitText(t, ctx, "#user-error", `name "eve smith" is not valid`)
	browsertest.Screenshot(t, ctx, "users-bad-name")

	browsertest.Eval[string](t, ctx, `document.getElementById("user-name").value = "eve"`)
	browsertest.Do(t, ctx, chromedp.Click(chromedp.ID("user-save")))
	browsertest.WaitText(t, ctx, `#users tbody tr[data-name="eve"]`, "viewer")
	if row := browsertest.Text(t, ctx, `#users tbody tr[data-name="eve"]`); !strings.Contains(row, "0") || strings.Contains(row, "1") {
		t.Errorf("eve's row %q: want partition 0 only", row)
	}
	browsertest.WaitText(t, ctx, "#audit tbody", "user eve role viewer partitions [0]")
	browsertest.Screenshot(t, ctx, "users-created")
	if code, body := s.send(t, "GET", "/api/v1/users/eve", ""); code != 200 || !strings.Contains(body, `"cids": [`) {
		t.Errorf("GET /api/v1/users/eve: %d %s", code, body)
	}

	// The viewer, in a second browser.
	viewer := browsertest.New(t, 60*time.Second)
	browsertest.Login(t, viewer, s.base, "eve", "eve-pass-123")
	if nav := browsertest.Text(t, viewer, "nav"); strings.Contains(nav, "Users") || !strings.Contains(nav, "Traffic") {
		t.Errorf("the viewer's navigation %q: want Traffic and no Users", nav)
	}
	browsertest.Do(t, viewer, chromedp.Navigate(s.base+"/users"))
	browsertest.WaitText(t, viewer, "#users-denied", "Only admins and managers")
	browsertest.Screenshot(t, viewer, "viewer-users")
	browsertest.Do(t, viewer, chromedp.Navigate(s.base+"/traffic"))
	browsertest.WaitText(t, viewer, "#traffic-object", "office")
	if opts := browsertest.Eval[[]string](t, viewer, `[...document.querySelectorAll("#traffic-object option")].map(o => o.textContent)`); len(opts) != 1 || !strings.HasPrefix(opts[0], "office") {
		t.Errorf("the viewer may choose %q, want only office (partition 0)", opts)
	}
	browsertest.Screenshot(t, viewer, "viewer-traffic")
}
