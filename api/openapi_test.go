package api

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
)

// TestOpenAPI loads and validates the document, and checks it against the
// routes: every route under /api/v1 registered in the source is in it
// with its method and path parameters, every operation in it answers on a
// real server (401 without a login, not 404 or 405), and the server
// serves it to a user.
func TestOpenAPI(t *testing.T) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(openAPIDoc)
	if err != nil {
		t.Fatalf("load api/openapi.json: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("api/openapi.json is not a valid OpenAPI document: %v", err)
	}
	documented := map[string]bool{}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			documented[method+" "+path] = true
			for _, ref := range append(slices.Clone(item.Parameters), op.Parameters...) {
				if p := ref.Value; p.In == "path" && !strings.Contains(path, "{"+p.Name+"}") {
					t.Errorf("%s %s: path parameter %q is not in the path", method, path, p.Name)
				}
			}
		}
	}
	registered := map[string]bool{}
	for _, rt := range registeredRoutes(t) {
		if strings.HasPrefix(rt[1], "/api/v1/") {
			registered[rt[0]+" "+rt[1]] = true
		}
	}
	for _, tc := range []struct {
		name     string
		from, in map[string]bool
	}{
		{"registered but not documented", registered, documented},
		{"documented but not registered", documented, registered},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var missing []string
			for r := range tc.from {
				if !tc.in[r] {
					missing = append(missing, r)
				}
			}
			sort.Strings(missing)
			if len(missing) > 0 {
				t.Errorf("%d routes %s (api/openapi.json):\n%s", len(missing), tc.name, strings.Join(missing, "\n"))
			}
		})
	}
	es := newEventsServer(t, DefaultConfig(), nil, nil)
	fill := strings.NewReplacer("{id}", "1", "{name}", "root", "{op}", "approve", "{addr}", "192.0.2.1")
	for r := range documented {
		method, path, _ := strings.Cut(r, " ")
		t.Run("answers "+r, func(t *testing.T) {
			req, err := http.NewRequest(method, es.url+fill.Replace(path), strings.NewReader("{}"))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			// The router's own 404 names no endpoint; a handler's 404 (the
			// test's annotator) means the route exists.
			if resp.StatusCode == http.StatusMethodNotAllowed || resp.StatusCode == http.StatusNotFound && strings.Contains(string(body), "no endpoint") {
				t.Errorf("%d: the server has no such route: %s", resp.StatusCode, body)
			}
		})
	}
	got := exchange{method: "GET", path: "/api/v1/openapi.json", user: "viewer", code: 200}.run(t, &httptest.Server{URL: es.url})
	var v map[string]any
	if err := json.Unmarshal([]byte(got), &v); err != nil || v["openapi"] != "3.1.0" {
		t.Errorf("served document: %v, openapi %v", err, v["openapi"])
	}
}
