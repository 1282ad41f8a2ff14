package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/flowsentry/flowsentry/internal/browsertest"
)

// serverFieldMessage is the message the server gives for configuration
// key in the refusal of an instance, after `plugin "NAME": `, as the
// Plugins page shows it beside the field.
func serverFieldMessage(t *testing.T, refusal, key string) string {
	t.Helper()
	re := regexp.MustCompile(`(?m)values\.` + key + `: .*?: plugin "[^"]*": (.*)$`)
	m := re.FindStringSubmatch(refusal)
	if m == nil {
		t.Fatalf("the server's refusal names no problem of %s: %s", key, refusal)
	}
	return m[1]
}

// TestUIPlugins drives the Plugins page: the example plugins are listed
// with their load warnings; a bad value in the generated instance form is
// refused in the browser with exactly the message the server gives for
// the same value; the fixed instance is saved; TEST shows the plugin's
// output.
func TestUIPlugins(t *testing.T) {
	// A copy of the example plugin: its TEST call writes calls.log in
	// its folder.
	plugins := filepath.Join(t.TempDir(), "plugins")
	if err := os.CopyFS(filepath.Join(plugins, "email"), os.DirFS("../../examples/email")); err != nil {
		t.Fatal(err)
	}
	// Instance 900 comes from the configuration file: shown, not
	// editable.
	s := startServer(t, "plugin_dir: "+plugins+"\ninstances:\n  - {id: 900, cid: 0, plugin: email, name: file mail, values: {EMAIL_USERNAME: ops}}\n")
	ctx := browsertest.New(t, 90*time.Second)
	browsertest.Login(t, ctx, s.base, "admin", "s3cret-pass")
	browsertest.Do(t, ctx, chromedp.Navigate(s.base+"/plugins"))
	browsertest.WaitText(t, ctx, `.plugin[data-name="email"] h3`, "Send Email")
	browsertest.WaitText(t, ctx, `.plugin[data-name="email"]`, "missing ','")
	browsertest.WaitText(t, ctx, `#instances tr[data-id="900"]`, "from the config file")
	if n := browsertest.Eval[int](t, ctx, `[...document.querySelectorAll('#instances tr[data-id="900"] button')].filter(b => b.textContent === "Edit" || b.textContent === "Delete").length`); n != 0 {
		t.Errorf("the configuration file's instance has %d Edit or Delete buttons, want none", n)
	}
	browsertest.Screenshot(t, ctx, "plugins-list")

	browsertest.Do(t, ctx,
		chromedp.Click(chromedp.ID("instance-new")),
		chromedp.WaitVisible(chromedp.ID("field-EMAIL_MAILPORT")),
		chromedp.SendKeys(chromedp.ID("instance-name"), "ops mail"),
	)
	bad := []struct {
		key, value string
	}{
		{"EMAIL_MAILPORT", "abc"},
		{"EMAIL_MAILPORT", "70000"},
		{"EMAIL_MAILPORT", "-1"},
		{"EMAIL_MAILPORT", "99999999999999999999"},
		{"EMAIL_USERNAME", "x"},
		{"EMAIL_USERNAME", `"`},
		{"EMAIL_USERNAME", "\t"},
		{"EMAIL_PASSWORD", "p"},
		{"EMAIL_BODY", strings.Repeat("é", 1025)},
	}
	for i, b := range bad {
		t.Run(fmt.Sprintf("%s=%.20q", b.key, b.value), func(t *testing.T) {
			// The server, given the same value.
			body, _ := json.Marshal(map[string]any{"name": "ops mail", "cid": 0, "plugin": "email", "values": map[string]string{b.key: b.value}})
			code, refusal := s.send(t, "POST", "/api/v1/instances", string(body))
			if code != http.StatusBadRequest {
				t.Fatalf("the server answers %d to %s=%q, want 400: %s", code, b.key, b.value, refusal)
			}
			var e struct{ Error string }
			if err := json.Unmarshal([]byte(refusal), &e); err != nil {
				t.Fatal(err)
			}
			// The page: the value typed into the field, the form submitted.
			js, _ := json.Marshal(b.value)
			browsertest.Eval[string](t, ctx, fmt.Sprintf(`for (const el of document.querySelectorAll("#instance-fields input")) el.value = "";
				document.getElementById("field-%s").value = %s`, b.key, js))
			browsertest.Do(t, ctx, chromedp.Click(chromedp.ID("instance-save")), chromedp.WaitVisible(chromedp.ID("error-"+b.key)))
			shown := browsertest.Text(t, ctx, "#error-"+b.key)
			if want := serverFieldMessage(t, e.Error, b.key); shown != want {
				t.Errorf("the page shows\n  %s\nthe server says\n  %s", shown, want)
			}
			if i == 0 {
				browsertest.Screenshot(t, ctx, "plugins-bad-value")
			}
		})
	}

	// Fixed, the instance is saved and listed (the password masked).
	browsertest.Eval[string](t, ctx, `for (const el of document.querySelectorAll("#instance-fields input")) el.value = "";
		document.getElementById("field-EMAIL_MAILPORT").value = "2525";
		document.getElementById("field-EMAIL_PASSWORD").value = "hunter22"`)
	browsertest.Do(t, ctx, chromedp.Click(chromedp.ID("instance-save")))
	browsertest.WaitText(t, ctx, "#instances tbody", "EMAIL_MAILPORT=2525")
	if list := browsertest.Text(t, ctx, "#instances tbody"); !strings.Contains(list, "ops mail") || strings.Contains(list, "hunter22") {
		t.Errorf("instances list %q: want ops mail with its password masked", list)
	}
	if hidden := browsertest.Eval[bool](t, ctx, `document.getElementById("instance-editor").hidden`); !hidden {
		t.Error("the form stays open after saving")
	}
	browsertest.Screenshot(t, ctx, "plugins-saved")

	browsertest.Do(t, ctx, chromedp.Click(chromedp.CSS("#instances tbody tr:last-child button.test"))) // the new instance, after 900
	browsertest.WaitText(t, ctx, "#test-output", "mail port 2525")
	if status := browsertest.Text(t, ctx, "#test-status"); !strings.HasPrefix(status, "exit code 0 after") {
		t.Errorf("test status %q, want exit code 0", status)
	}
	browsertest.Screenshot(t, ctx, "plugins-test")
}
