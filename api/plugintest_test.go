package api

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestPluginTestEndpoint runs the example email plugin in TEST mode
// through POST /api/v1/instances/{id}/test: its output shows the
// instance's value (and the default when none is set), only admins and
// managers of the instance's partition may run it, and bad or unknown
// IDs get 400 and 404.
func TestPluginTestEndpoint(t *testing.T) {
	ts := newTestServer(t)
	for _, body := range []string{
		`{"name":"port 2525","cid":0,"plugin":"email","values":{"EMAIL_MAILPORT":"2525","EMAIL_PASSWORD":"hunter22"}}`,
		`{"name":"default port","cid":0,"plugin":"email","values":{}}`,
	} {
		exchange{method: "POST", path: "/api/v1/instances", user: "root", body: body, code: 201}.run(t, ts)
	}
	cases := []struct {
		name     string
		path     string
		user     string
		code     int
		contains []string
	}{
		{"admin, value given", "/api/v1/instances/1/test", "root", 200, []string{"mail port 2525", `"exit_code": 0`, `"plugin": "email"`}},
		{"admin, default applied", "/api/v1/instances/2/test", "root", 200, []string{"mail port 587"}},
		{"viewer of the partition", "/api/v1/instances/1/test", "viewer", 403, []string{"may not test plugin instances of partition 0"}},
		{"manager of another partition", "/api/v1/instances/1/test", "mgr5", 404, []string{"no plugin instance 1"}},
		{"unknown instance", "/api/v1/instances/99/test", "root", 404, []string{"no plugin instance 99"}},
		{"bad ID", "/api/v1/instances/x/test", "root", 400, []string{`plugin instance ID \"x\" is not a number`}},
		{"no login", "/api/v1/instances/1/test", "", 401, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			body := exchange{method: "POST", path: tc.path, user: tc.user, code: tc.code, contains: tc.contains}.run(t, ts)
			if strings.Contains(body, "hunter22") {
				t.Errorf("the answer shows the password: %s", body)
			}
			if tc.code != 200 {
				return
			}
			var res PluginTest
			if err := json.Unmarshal([]byte(body), &res); err != nil {
				t.Fatal(err)
			}
			if res.Duration <= 0 || res.Duration > pluginTestTimeout.Seconds() || res.Error != "" || res.Truncated {
				t.Errorf("duration %v s, error %q, truncated %v: want a short clean run", res.Duration, res.Error, res.Truncated)
			}
		})
	}
}
