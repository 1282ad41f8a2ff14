package api

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowsentry/flowsentry/rates"
)

// TestRouting checks the answers to requests no handler takes: 405 with
// Allow on a known path, 404 on an unknown one, both in JSON.
func TestRouting(t *testing.T) {
	ts := newTestServer(t)
	for _, tc := range []struct {
		method, path string
		code         int
		allow        string
		contains     string
	}{
		{"POST", "/healthz", 405, "GET, HEAD", "method POST is not allowed on /healthz; use GET or HEAD"},
		{"DELETE", "/api/v1/exporters", 405, "GET, HEAD", "use GET or HEAD"},
		{"PATCH", "/api/v1/policies", 405, "GET, HEAD, POST", "method PATCH is not allowed"},
		{"POST", "/api/v1/policies/7", 405, "GET, HEAD, PUT, DELETE", "use GET or HEAD or PUT or DELETE"},
		{"GET", "/api/v1/actions/3/approve", 405, "POST", "use POST"},
		{"PUT", "/api/v1/trafficgroups/1/ports", 405, "GET, HEAD", "not allowed"},
		{"GET", "/api/v1/nothing", 404, "", "no endpoint GET /api/v1/nothing; GET / lists the endpoints"},
		{"POST", "/api/v1/nothing/7", 404, "", "no endpoint POST"},
		{"GET", "/api/v1/policies/7/extra", 404, "", "no endpoint"},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, ts.URL+tc.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body Error
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
				t.Fatalf("body is not a JSON error: %v", err)
			}
			if resp.StatusCode != tc.code || resp.Header.Get("Allow") != tc.allow || !strings.Contains(body.Error, tc.contains) {
				t.Errorf("%d Allow %q %q, want %d Allow %q containing %q", resp.StatusCode, resp.Header.Get("Allow"), body.Error, tc.code, tc.allow, tc.contains)
			}
		})
	}
}

// endless is a JSON body that never ends: an object with a string that
// goes on. sent is atomic: the client's transport may still be reading
// the body while the test looks at it.
type endless struct{ sent atomic.Int64 }

func (e *endless) Read(p []byte) (int, error) {
	if e.sent.Load() == 0 {
		n := copy(p, `{"name":"`)
		e.sent.Add(int64(n))
		return n, nil
	}
	for i := range p {
		p[i] = 'a'
	}
	e.sent.Add(int64(len(p)))
	return len(p), nil
}

// TestBodyLimit checks that JSON bodies over 1 MiB get 413 at once,
// whether their length is announced or not, without the server reading
// the 100 MB sent.
func TestBodyLimit(t *testing.T) {
	ts := newTestServer(t)
	for _, tc := range []struct {
		name   string
		length int64 // -1: chunked
		code   int
	}{
		{"100 MB announced", 100 << 20, http.StatusRequestEntityTooLarge},
		{"100 MB chunked", -1, http.StatusRequestEntityTooLarge},
		{"just over the limit, chunked", -1, http.StatusRequestEntityTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := &endless{}
			var r io.Reader = io.LimitReader(body, 100<<20)
			if tc.name == "just over the limit, chunked" {
				r = io.LimitReader(body, maxBody+1)
			}
			req, err := http.NewRequest("POST", ts.URL+"/api/v1/policies", r)
			if err != nil {
				t.Fatal(err)
			}
			req.ContentLength = tc.length
			req.SetBasicAuth("root", "pw")
			start := time.Now()
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var e Error
			if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
				t.Fatalf("body is not a JSON error: %v", err)
			}
			took := time.Since(start)
			if resp.StatusCode != tc.code || !strings.Contains(e.Error, "larger than the limit of 1048576 bytes") {
				t.Errorf("%d %q, want %d naming the limit", resp.StatusCode, e.Error, tc.code)
			}
			if sent := body.sent.Load(); took > 2*time.Second || sent > 8<<20 {
				t.Errorf("answered after %v and %d bytes sent; want at once", took, sent)
			}
		})
	}
	// A body under the limit still reaches the handler's validation.
	exchange{method: "POST", path: "/api/v1/policies", user: "root", body: `{"bogus": 1}`, code: 400,
		contains: []string{"not valid JSON for this endpoint"}}.run(t, ts)
}

// TestExporterPaging checks ?limit= and ?offset= of the exporters and of
// an exporter's interfaces: a stable order, X-Total-Count, and a Link to
// the next page that walks the whole list.
func TestExporterPaging(t *testing.T) {
	snap := &rates.Snapshot{}
	// Out of order, as the inventory gives them.
	for i := 2500; i > 0; i-- {
		x := rates.Exporter{Addr: netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)})}
		if i == 7 {
			for ifIndex := uint32(1500); ifIndex > 0; ifIndex-- {
				x.Interfaces = append(x.Interfaces, rates.Interface{Stats: rates.Stats{Key: rates.Key{Kind: rates.KindInterface, Exporter: x.Addr, IfIndex: ifIndex}}})
			}
		}
		snap.Exporters = append(snap.Exporters, x)
	}
	s, _ := startServer(t, DefaultConfig(), func() *rates.Snapshot { return snap })
	base := "http://" + s.Addr().String()
	get := func(t *testing.T, path string, v any) (*http.Response, []byte) {
		t.Helper()
		req, err := http.NewRequest("GET", base+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.SetBasicAuth("root", "pw")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		if v != nil && resp.StatusCode == http.StatusOK {
			if err := json.Unmarshal(body, v); err != nil {
				t.Fatalf("GET %s: %v", path, err)
			}
		}
		return resp, body
	}
	// walk follows the Link headers from path and returns the keys of the
	// items in order and the number of pages.
	walk := func(t *testing.T, path string, key func(json.RawMessage) string) ([]string, int) {
		var keys []string
		pages := 0
		for path != "" {
			var items []json.RawMessage
			resp, _ := get(t, path, &items)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("GET %s: %d", path, resp.StatusCode)
			}
			pages++
			for _, it := range items {
				keys = append(keys, key(it))
			}
			path = ""
			if link := resp.Header.Get("Link"); link != "" {
				path = strings.TrimSuffix(strings.TrimPrefix(link, "<"), `>; rel="next"`)
			}
		}
		return keys, pages
	}
	// field picks a field of an item by its path, e.g. "key", "ifindex".
	field := func(path ...string) func(json.RawMessage) string {
		return func(raw json.RawMessage) string {
			var v any
			_ = json.Unmarshal(raw, &v)
			for _, name := range path {
				m, _ := v.(map[string]any)
				v = m[name]
			}
			return fmt.Sprint(v)
		}
	}
	for _, tc := range []struct {
		name, path string
		pages      int
		first      string
		total      int
		key        func(json.RawMessage) string
	}{
		{"exporters by default", "/api/v1/exporters", 25, "10.0.0.1", 2500, field("addr")},
		{"exporters 1000 a page", "/api/v1/exporters?limit=1000", 3, "10.0.0.1", 2500, field("addr")},
		{"exporters from an offset", "/api/v1/exporters?offset=2400", 1, "10.0.9.97", 100, field("addr")},
		{"interfaces", "/api/v1/exporters/10.0.0.7/interfaces?limit=700", 3, "1", 1500, field("key", "ifindex")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, _ := get(t, tc.path, nil)
			keys, pages := walk(t, tc.path, tc.key)
			if pages != tc.pages || len(keys) != tc.total || keys[0] != tc.first {
				t.Fatalf("%d pages, %d items from %s; want %d pages, %d items from %s", pages, len(keys), keys[0], tc.pages, tc.total, tc.first)
			}
			if got := resp.Header.Get("X-Total-Count"); got != "2500" && got != "1500" {
				t.Errorf("X-Total-Count %q", got)
			}
			for i := 1; i < len(keys); i++ {
				if keys[i] == keys[i-1] {
					t.Fatalf("%s twice", keys[i])
				}
			}
		})
	}
	for _, tc := range []struct {
		path     string
		code     int
		contains string
	}{
		{"/api/v1/exporters?limit=0", 400, `limit=\"0\" is not valid; use a whole number from 1 to 1000`},
		{"/api/v1/exporters?limit=1001", 400, "from 1 to 1000"},
		{"/api/v1/exporters?offset=-1", 400, `offset=\"-1\" is not valid`},
		{"/api/v1/exporters?offset=99999", 200, "[]"},
		{"/api/v1/exporters/nope/interfaces", 400, `exporter \"nope\" is not an IP address`},
		{"/api/v1/exporters/192.0.2.1/interfaces", 404, "no exporter 192.0.2.1"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			resp, body := get(t, tc.path, nil)
			if resp.StatusCode != tc.code || !strings.Contains(string(body), tc.contains) {
				t.Errorf("%d %s, want %d containing %s", resp.StatusCode, body, tc.code, tc.contains)
			}
		})
	}
}
