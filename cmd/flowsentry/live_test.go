package main

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flowsentry/flowsentry/alert"
	"github.com/flowsentry/flowsentry/api"
	"github.com/flowsentry/flowsentry/config"
	"github.com/flowsentry/flowsentry/model"
)

// TestAlertListIsLive observes an open alert again after its CREATE,
// without an UPDATE being due, and checks that GET /api/v1/alerts (what
// `ftnbi -alert` reads) shows the engine's Latest and Peak, not the stored
// CREATE.
func TestAlertListIsLive(t *testing.T) {
	f := config.Embedded()
	cfg := &f.Config
	cfg.DataDir, cfg.PluginDir = t.TempDir(), t.TempDir()
	cfg.Admin.Password = "secret-pw"
	m, err := model.Build(cfg.Model)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	a, err := newAlerting(f, model.NewHolder(m), nil, reg, slog.New(slog.DiscardHandler), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.state().Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.state().Stop)

	t0 := time.Now().UTC().Truncate(time.Second)
	cond := alert.Condition{Policy: 1, Key: "TGRP/1", Type: "threshold_exceeded", Severity: 5,
		Values: alert.Values{PacketsIn: 1000}}
	a.alerts.Observe(t0, cond) // CREATE
	a.alerts.Tick(t0)
	if err := a.alerts.Flush(t.Context()); err != nil { // committed
		t.Fatal(err)
	}
	cond.Values.PacketsIn = 5000
	a.alerts.Observe(t0.Add(10*time.Second), cond) // in memory only

	req := httptest.NewRequest("GET", "/api/v1/alerts", nil)
	// The server authenticates before the reader; here the admin is given.
	req = req.WithContext(api.ContextWithPrincipal(req.Context(), api.Principal{Name: cfg.Admin.User, Admin: true}))
	req.SetBasicAuth(cfg.Admin.User, "")
	w := httptest.NewRecorder()
	a.api.Reader.Alerts(w, req)
	if w.Code != http.StatusOK {
		t.Fatalf("GET /api/v1/alerts: %d %s", w.Code, w.Body)
	}
	body := w.Body.String()
	var list any
	if err := json.Unmarshal([]byte(body), &list); err != nil {
		t.Fatalf("not JSON: %v: %s", err, body)
	}
	for _, want := range []string{
		fmt.Sprintf(`"latest_utc": %d.000000`, t0.Add(10*time.Second).Unix()),
		`"packets_in": 5000.00`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the alert list lacks the live %s: %s", want, body)
		}
	}
}
