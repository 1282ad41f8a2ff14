package main

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/flowsentry/flowsentry/internal/browsertest"
)

// TestUILogin drives the web UI of a running server in headless
// Chromium: a page asked for without a session leads to the login page, a
// wrong password is refused with the server's message, the right one
// leads back to the page asked for, an API token is created on the
// Account page, and logging out ends the session.
func TestUILogin(t *testing.T) {
	s := startServer(t, "")

	// Without a session a browser is sent to the login page, an API
	// client gets 401.
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequest("GET", s.base+"/account", nil)
	req.Header.Set("Accept", "text/html")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || loc != "/login?next=%2Faccount" {
		t.Errorf("page without a session: HTTP %d to %q, want 303 to the login page", resp.StatusCode, loc)
	}
	if resp, err := http.Get(s.base + "/api/v1/session"); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("API without a session: %v %v, want 401", resp, err)
	} else {
		resp.Body.Close()
	}

	ctx := browsertest.New(t, 60*time.Second)
	browsertest.Do(t, ctx,
		chromedp.Navigate(s.base+"/account"),
		chromedp.WaitVisible(chromedp.ID("login")),
		chromedp.SendKeys(chromedp.ID("user"), "admin"),
		chromedp.SendKeys(chromedp.ID("password"), "wrong-password"),
		chromedp.Click(chromedp.ID("login-submit")),
	)
	browsertest.WaitText(t, ctx, "#login-error", "bad user name or password")
	browsertest.Screenshot(t, ctx, "wrong-password")

	browsertest.Eval[string](t, ctx, `document.getElementById("password").value = ""`)
	browsertest.Do(t, ctx,
		chromedp.SendKeys(chromedp.ID("password"), "s3cret-pass"),
		chromedp.Click(chromedp.ID("login-submit")),
	)
	browsertest.Do(t, ctx, chromedp.WaitVisible(chromedp.ID("whoami")))
	if loc := browsertest.Eval[string](t, ctx, "location.pathname"); loc != "/account" {
		t.Errorf("after the login the browser is on %s, want /account", loc)
	}
	if who := browsertest.Text(t, ctx, "#whoami"); !strings.Contains(who, "admin") {
		t.Errorf("top bar names %q, want admin", who)
	}

	browsertest.Do(t, ctx,
		chromedp.SendKeys(chromedp.ID("token-name"), "nightly report"),
		chromedp.Click(chromedp.CSS("#token-form button")),
	)
	browsertest.WaitText(t, ctx, "#new-token", "fst_")
	browsertest.WaitText(t, ctx, "#tokens tbody", "nightly report")
	browsertest.Screenshot(t, ctx, "account")
	tok := browsertest.Text(t, ctx, "#new-token")
	token := tok[strings.Index(tok, "fst_"):]
	req, _ = http.NewRequest("GET", s.base+"/api/v1/session", nil)
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(token))
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("the token made in the UI does not authenticate: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}

	browsertest.Do(t, ctx, chromedp.Click(chromedp.ID("logout")), chromedp.WaitVisible(chromedp.ID("login")))
	if code := browsertest.Eval[float64](t, ctx, `fetch("/api/v1/session", {headers: {"X-Requested-With": "test"}}).then(r => r.status)`); code != http.StatusUnauthorized {
		t.Errorf("after logging out /api/v1/session answers %v, want 401", code)
	}
}
