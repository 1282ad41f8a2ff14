package main

import (
	"bytes"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestActionCA runs `flowsentry action show` against an https server with
// a self-signed certificate: refused without -ca, accepted with it
// (and with $FLOWSENTRY_CA), never by turning verification off.
func TestActionCA(t *testing.T) {
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "admin" || p != "pw" || r.URL.Path != "/api/v1/actions/7" {
			http.Error(w, `{"error":"unexpected request"}`, http.StatusBadRequest)
			return
		}
		_, _ = w.Write([]byte(`{"id":7,"state":"waiting"}`))
	}))
	defer ts.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		code := actionCmd(append([]string{"show", "7", "-server", ts.URL, "-user", "admin", "-password", "pw"}, args...), &out, &errOut)
		return code, out.String(), errOut.String()
	}
	t.Setenv("FLOWSENTRY_CA", "")
	t.Setenv("FTNBI_CA", "")
	if code, _, errOut := run(); code == 0 || !strings.Contains(errOut, "certificate") {
		t.Errorf("without -ca: exit %d, %q; want the certificate refused", code, errOut)
	}
	if code, out, errOut := run("-ca", ca); code != 0 || !strings.Contains(out, `"state":"waiting"`) {
		t.Errorf("with -ca: exit %d, %q %q", code, out, errOut)
	}
	t.Setenv("FLOWSENTRY_CA", ca)
	if code, out, errOut := run(); code != 0 || !strings.Contains(out, `"id":7`) {
		t.Errorf("with $FLOWSENTRY_CA: exit %d, %q %q", code, out, errOut)
	}
	if code, _, errOut := run("-ca", filepath.Join(t.TempDir(), "missing.pem")); code != 2 || !strings.Contains(errOut, "give the PEM file") {
		t.Errorf("missing CA file: exit %d, %q", code, errOut)
	}
}
