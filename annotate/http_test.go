package annotate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestServeHTTP(t *testing.T) {
	body := func(values string) string {
		return `{"tkn":"` + token + `","id":1004,"aid":7,"values":` + values + `}`
	}
	cases := []struct {
		name     string
		method   string
		body     string
		at       time.Time
		setup    func(t *testing.T, s *MemoryStore)
		wantCode int
		wantBody string
	}{
		{"stored", "POST", body(`{"ip_rcv":123,"tcp_total_drop":4}`), t0, nil, 200, `{"stored":2}`},
		{"value as a numeric string", "POST", body(`{"ip_rcv":"123"}`), t0, nil, 200, `{"stored":1}`},
		{"IDs as numeric strings", "POST", `{"tkn":"` + token + `","id":"1004","aid":"7","values":{"a":1}}`, t0, nil, 200, `{"stored":1}`},
		{"negative value", "POST", body(`{"ip_rcv":-5}`), t0, nil, 400,
			`{"error":"value -5 of key \"ip_rcv\" is not a positive integer: values are whole numbers from 1 to 9223372036854775807"}`},
		{"fractional value", "POST", body(`{"ip_rcv":1.5}`), t0, nil, 400,
			`{"error":"value 1.5 of key \"ip_rcv\" is not a positive integer: values are whole numbers from 1 to 9223372036854775807"}`},
		{"exponent value", "POST", body(`{"ip_rcv":1e3}`), t0, nil, 400,
			`{"error":"value 1e3 of key \"ip_rcv\" is not a positive integer: values are whole numbers from 1 to 9223372036854775807"}`},
		{"text value", "POST", body(`{"ip_rcv":"abc"}`), t0, nil, 400,
			`{"error":"value abc of key \"ip_rcv\" is not a positive integer: values are whole numbers from 1 to 9223372036854775807"}`},
		{"zero value", "POST", body(`{"ip_rcv":0}`), t0, nil, 400,
			`{"error":"value 0 of key \"ip_rcv\" is not a positive integer: values are whole numbers from 1 to 9223372036854775807"}`},
		{"negative alert ID", "POST", `{"tkn":"x","id":-1,"aid":7,"values":{"a":1}}`, t0, nil, 400,
			`{"error":"id -1 is not an ID: use the positive integer of the plugin's environment"}`},
		{"unknown member", "POST", `{"tkn":"x","id":1,"aid":7,"values":{"a":1},"extra":1}`, t0, nil, 400,
			`{"error":"the body is not a JSON annotation request (json: unknown field \"extra\"): send {\"tkn\":\"..\",\"id\":1004,\"aid\":7,\"values\":{\"KEY\":123}}"}`},
		{"not JSON", "POST", `tkn=x`, t0, nil, 400,
			`{"error":"the body is not a JSON annotation request (invalid character 'k' in literal true (expecting 'r')): send {\"tkn\":\"..\",\"id\":1004,\"aid\":7,\"values\":{\"KEY\":123}}"}`},
		{"two JSON values", "POST", body(`{"a":1}`) + body(`{"a":1}`), t0, nil, 400,
			`{"error":"the body is not a JSON annotation request (more than one JSON value): send {\"tkn\":\"..\",\"id\":1004,\"aid\":7,\"values\":{\"KEY\":123}}"}`},
		{"too large", "POST", body(`{"` + strings.Repeat("k", 2<<20) + `":1}`), t0, nil, 413,
			`{"error":"the request body is larger than 1048576 bytes: send fewer values at once"}`},
		{"GET", "GET", "", t0, nil, 405,
			`{"error":"use POST with a JSON body {\"tkn\":..,\"id\":..,\"aid\":..,\"values\":{\"KEY\":VALUE}}"}`},
		{"token mismatch", "POST", `{"tkn":"bad","id":1004,"aid":7,"values":{"a":1}}`, t0, nil, 403,
			`{"error":"Update rejected: token mismatch, or the alert has timed out"}`},
		{"unknown action", "POST", `{"tkn":"x","id":1004,"aid":8,"values":{"a":1}}`, t0, nil, 404,
			`{"error":"The alert action ID/AID was not found"}`},
		{"limit", "POST", body(`{"ip_rcv":1}`), t0,
			func(t *testing.T, s *MemoryStore) { fill(t, s, actionID, []string{"ip_rcv"}, 770) }, 409,
			`{"error":"Too many values for this key (max: 770 per key)"}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			store := &MemoryStore{}
			if tc.setup != nil {
				tc.setup(t, store)
			}
			a, err := New(DefaultConfig(), store, StaticTokens{{alertID, actionID}: grant(AlertOpen)}, func() time.Time { return tc.at }, nil)
			if err != nil {
				t.Fatal(err)
			}
			rec := httptest.NewRecorder()
			a.ServeHTTP(rec, httptest.NewRequest(tc.method, "/api/v1/annotations", strings.NewReader(tc.body)))
			if rec.Code != tc.wantCode {
				t.Errorf("status %d, want %d", rec.Code, tc.wantCode)
			}
			if diff := cmp.Diff(compact(t, rec.Body.String()), tc.wantBody); diff != "" {
				t.Errorf("body (-got +want):\n%s", diff)
			}
			if got := rec.Header().Get("Content-Type"); got != "application/json" {
				t.Errorf("Content-Type %q, want application/json", got)
			}
			if tc.method == http.MethodGet && rec.Header().Get("Allow") != http.MethodPost {
				t.Errorf("Allow %q, want POST", rec.Header().Get("Allow"))
			}
		})
	}
}

// compact removes the insignificant white space of a JSON text.
func compact(t *testing.T, s string) string {
	t.Helper()
	var b bytes.Buffer
	if err := json.Compact(&b, []byte(s)); err != nil {
		t.Fatalf("invalid JSON %q: %v", s, err)
	}
	return b.String()
}

// FuzzDecodeRequest checks that any body decodes without panic into
// either an error or a request whose values are within 1..MaxInt64, and
// that the Annotator answers it with a Rejection or stores exactly its
// values.
func FuzzDecodeRequest(f *testing.F) {
	for _, seed := range []string{
		`{"tkn":"` + token + `","id":1004,"aid":7,"values":{"ip_rcv":123,"tcp_total_drop":4}}`,
		`{"tkn":"x","id":"1004","aid":7,"values":{"a":"5","b":-1}}`,
		`{"tkn":"x","id":1e3,"aid":7,"values":{"":1}}`,
		`{"values":{"a\u0000":18446744073709551615}}`,
		`[]`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in string) {
		req, err := decodeRequest(strings.NewReader(in))
		if err != nil {
			return
		}
		for k, v := range req.Values {
			if v == 0 || v > math.MaxInt64 {
				t.Fatalf("decoded value %d of %q out of range", v, k)
			}
		}
		store := &MemoryStore{}
		a, err := New(DefaultConfig(), store, StaticTokens{{alertID, actionID}: grant(AlertOpen)}, func() time.Time { return t0 }, nil)
		if err != nil {
			t.Fatal(err)
		}
		n, err := a.Annotate(context.Background(), req)
		var rej *Rejection
		if err != nil && !errors.As(err, &rej) {
			t.Fatalf("error %v is not a Rejection", err)
		}
		vals, _ := store.Values(context.Background(), req.Alert)
		if len(vals) != n || err == nil && n != len(req.Values) {
			t.Fatalf("stored %d values, reported %d, request had %d", len(vals), n, len(req.Values))
		}
	})
}
