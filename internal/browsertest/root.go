// Package browsertest drives Debian's headless Chromium from Go tests
// (chromedp): it starts a browser with a fresh profile and no network
// access beyond what the page asks for, logs in to a flowsentry server,
// and saves screenshots where the test output keeps them.
package browsertest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Chromium returns the path of the Chromium binary; the test fails
// naming how to install it when there is none.
func Chromium(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("no Chromium on the PATH: install Debian's (apt-get install chromium), as scripts/test.sh does")
	return ""
}

// New starts a headless browser with a fresh profile and returns its
// context, cancelled (the browser closed) when the test ends. Every
// action on it must finish within timeout.
func New(t testing.TB, timeout time.Duration) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(Chromium(t)),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.WindowSize(1400, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx, chromedp.WithErrorf(t.Logf))
	ctx, cancelTimeout := context.WithTimeout(ctx, timeout)
	t.Cleanup(func() {
		cancelTimeout()
		cancelCtx()
		cancelAlloc()
	})
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		t.Fatalf("starting Chromium: %v", err)
	}
	return ctx
}

// Do runs steps in order (chromedp.Navigate, Click, SendKeys …; selectors
// are chromedp.CSS, chromedp.ID …), failing the test at the first error.
func Do(t testing.TB, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("browser: %v", err)
	}
}

// Login logs in on base's login page as user and waits for the page it
// leads to (its top bar).
func Login(t testing.TB, ctx context.Context, base, user, password string) {
	t.Helper()
	Do(t, ctx,
		chromedp.Navigate(base+"/login"),
		chromedp.WaitVisible(chromedp.ID("user")),
		chromedp.SendKeys(chromedp.ID("user"), user),
		chromedp.SendKeys(chromedp.ID("password"), password),
		chromedp.Click(chromedp.ID("login-submit")),
		chromedp.WaitVisible(chromedp.ID("whoami")),
	)
}

// Screenshot saves a full-page PNG of the current page as NAME.png in the
// screenshot folder: $SCREENSHOT_DIR, else test-output/screenshots at the
// repository's root (ignored by git); the test log gives the path.
func Screenshot(t testing.TB, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Errorf("screenshot %s: %v", name, err)
		return
	}
	dir := os.Getenv("SCREENSHOT_DIR")
	if dir == "" {
		_, file, _, _ := runtime.Caller(0)
		dir = filepath.Join(filepath.Dir(file), "..", "..", "test-output", "screenshots")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Errorf("screenshot %s: %v", name, err)
		return
	}
	p := filepath.Join(dir, sanitize(t.Name())+"-"+sanitize(name)+".png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Errorf("screenshot %s: %v", name, err)
		return
	}
	t.Logf("screenshot %s: %s", name, p)
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			return r
		}
		return '_'
	}, s)
}

// Text returns the text of the first element matching the CSS selector
// sel, waiting for it to be present.
func Text(t testing.TB, ctx context.Context, sel string) string {
	t.Helper()
	// A query can meet the node of a document being replaced (a
	// navigation or reload right after a wait): ask again until ctx ends.
	for {
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err == nil {
			return s
		}
		select {
		case <-ctx.Done():
			t.Fatalf("browser: text of %s: %v", sel, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Eval evaluates the JavaScript expression js in the page and returns its
// value (awaited when it is a promise).
func Eval[T any](t testing.TB, ctx context.Context, js string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("browser: evaluate %s: %v", js, err)
	}
	return v
}

// WaitText waits until the text of the element matching the CSS selector
// sel contains want, failing the test with what it holds when ctx ends.
func WaitText(t testing.TB, ctx context.Context, sel, want string) {
	t.Helper()
	var got string
	for {
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err == nil {
			got = s
			if strings.Contains(got, want) {
				return
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("browser: waiting for %q in %s (it holds %q): %v", want, sel, got, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}
