package main

import (
	"encoding/json"
	"net/http"
	"os/exec"
	osuser "os/user"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/flowsentry/flowsentry/auth"
	"github.com/flowsentry/flowsentry/store"
)

// userModel is the model of the user tests: partitions 0 and 5, traffic
// group 1 in 0 and 2 in 5.
const userModel = `partitions:
  - cid: 0
    name: default
    internal: [10.0.0.0/8]
  - cid: 5
    name: branch
    internal: [192.168.0.0/16]
traffic_groups:
  - id: 1
    name: hq
    partition: 0
    cidrs: [10.0.0.0/8]
  - id: 2
    name: branch
    partition: 5
    cidrs: [192.168.0.0/16]
`

// userRun runs `flowsentry user ARGS --config` of s with stdin as its
// standard input (a pipe, not a terminal).
func userRun(t *testing.T, s *server, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(binary, append(append([]string{"user"}, args...), "--config", s.configPath)...)
	cmd.Stdin = strings.NewReader(stdin)
	var o, e strings.Builder
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return o.String(), e.String(), ee.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return o.String(), e.String(), 0
}

// as makes a GET request with basic auth (or the session cookie when
// password is "") and returns the status.
func (s *server) as(t *testing.T, path, user, password, cookie string) int {
	t.Helper()
	req, err := http.NewRequest("GET", s.base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	} else {
		req.SetBasicAuth(user, password)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// login opens a session and returns its cookie header.
func (s *server) login(t *testing.T, user, password string) string {
	t.Helper()
	resp, err := http.Post(s.base+"/api/v1/login", "application/json",
		strings.NewReader(`{"user":"`+user+`","password":"`+password+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || len(resp.Cookies()) == 0 {
		t.Fatalf("login of %s: %s", user, resp.Status)
	}
	return resp.Cookies()[0].Name + "=" + resp.Cookies()[0].Value
}

// waitRefused polls path as user until the server answers 401 and returns
// how long that took; it fails the test after 5 s.
func (s *server) waitRefused(t *testing.T, path, user, password, cookie string) time.Duration {
	t.Helper()
	start := time.Now()
	for s.as(t, path, user, password, cookie) != http.StatusUnauthorized {
		if time.Since(start) > 5*time.Second {
			t.Fatalf("%s still accepted 5 s after the change (documented: %s)", user, auth.FollowEvery)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

// TestUserCommands runs flowsentry user against a running server, then a
// stopped one: refusals with their exit codes and messages; a viewer
// added from the shell logs in through the API; passwd and delete take
// effect in the running server within auth.FollowEvery, sessions too;
// list, --json and the audit log.
func TestUserCommands(t *testing.T) {
	s := startServer(t, userModel)

	t.Run("refused", func(t *testing.T) {
		for _, tc := range []struct {
			name  string
			stdin string
			args  []string
			code  int
			msg   string
		}{
			{"bad role", "pw\n", []string{"add", "carol", "--role", "boss", "--password-stdin"}, 1, `--role "boss" is not valid: use admin, manager or viewer`},
			{"unknown partition", "pw\n", []string{"add", "carol", "--role", "viewer", "--partitions", "0,7", "--password-stdin"}, 1, "partition 7 does not exist in the configuration: use one of [0 5]"},
			{"group outside partitions", "pw\n", []string{"add", "carol", "--role", "viewer", "--partitions", "0", "--groups", "2", "--password-stdin"}, 1, "traffic group 2 is in partition 5, which is not in --partitions [0]"},
			{"empty password", "\n", []string{"add", "carol", "--role", "viewer", "--password-stdin"}, 1, "the password is 0 bytes long: give 1 to 72 bytes"},
			{"long password", strings.Repeat("x", 73) + "\n", []string{"add", "carol", "--role", "viewer", "--password-stdin"}, 1, "the password is 73 bytes long: give 1 to 72 bytes"},
			{"bad name", "pw\n", []string{"add", "ca rol", "--role", "viewer", "--password-stdin"}, 1, `name "ca rol" is not valid`},
			{"name taken", "pw\n", []string{"add", "admin", "--role", "viewer", "--password-stdin"}, 1, `user "admin" exists already: "flowsentry user passwd admin"`},
			{"last admin", "", []string{"delete", "admin"}, 1, "the last admin account cannot be removed or demoted: create another admin first"},
			{"passwd unknown", "pw\n", []string{"passwd", "nobody", "--password-stdin"}, 1, `no user "nobody": "flowsentry user list" shows them`},
			{"delete unknown", "", []string{"delete", "nobody"}, 1, `no user "nobody"`},
			{"password from a pipe without --password-stdin", "pw\n", []string{"add", "carol", "--role", "viewer"}, 2, "standard input is not a terminal: give --password-stdin"},
			{"no role", "pw\n", []string{"add", "carol", "--password-stdin"}, 2, "--role is missing"},
			{"no name", "", []string{"delete"}, 2, "the user NAME is missing"},
			{"two names", "", []string{"delete", "carol", "--data", "x", "dave"}, 2, `unexpected argument "dave": give one user NAME and flags`},
			{"list with a name", "", []string{"list", "carol"}, 2, `unexpected argument "carol": list takes no NAME`},
			{"unknown flag", "", []string{"delete", "carol", "--force"}, 2, "flag provided but not defined: -force"},
			{"bad partitions list", "", []string{"add", "carol", "--role", "viewer", "--partitions", "0,x"}, 2, `"x" is not a number: give comma-separated IDs such as 0,5`},
			{"no database", "", []string{"list", "--data", t.TempDir()}, 1, "no database in data folder"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, stderr, code := userRun(t, s, tc.stdin, tc.args...)
				if code != tc.code || !strings.Contains(stderr, tc.msg) {
					t.Errorf("exit %d, stderr %q; want exit %d and %q", code, stderr, tc.code, tc.msg)
				}
			})
		}
		if code := s.as(t, "/api/v1/session", "carol", "pw", ""); code != http.StatusUnauthorized {
			t.Errorf("carol after refused adds: %d, want 401", code)
		}
	})

	// A viewer added from the shell logs in through the running server.
	out, stderr, code := userRun(t, s, "carol-pass-1\n", "add", "carol", "--role", "viewer", "--partitions", "5", "--groups", "2", "--password-stdin")
	if code != 0 {
		t.Fatalf("user add: exit %d: %s", code, stderr)
	}
	if want := "user carol role viewer partitions [5] groups [2], password set\n"; out != want {
		t.Errorf("user add printed %q, want %q", out, want)
	}
	var session struct {
		User, Role string
		CIDs       []uint32 `json:"cids"`
		Groups     []uint32 `json:"groups"`
	}
	req, _ := http.NewRequest("GET", s.base+"/api/v1/session", nil)
	req.SetBasicAuth("carol", "carol-pass-1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.NewDecoder(resp.Body).Decode(&session); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("carol's session: %s, %v", resp.Status, err)
	}
	resp.Body.Close()
	if session.Role != "viewer" || !cmp.Equal(session.CIDs, []uint32{5}) || !cmp.Equal(session.Groups, []uint32{2}) {
		t.Errorf("carol's session = %+v, want viewer of partition 5, group 2", session)
	}

	t.Run("list", func(t *testing.T) {
		out, stderr, code := userRun(t, s, "", "list")
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if code != 0 || len(lines) != 3 || !strings.HasPrefix(lines[0], "NAME") ||
			strings.Join(strings.Fields(lines[1]), " ") != "admin admin all all" ||
			strings.Join(strings.Fields(lines[2]), " ") != "carol viewer 5 2" {
			t.Errorf("list: exit %d, %q, %s", code, out, stderr)
		}
		out, stderr, code = userRun(t, s, "", "list", "--json")
		var got []store.User
		if err := json.Unmarshal([]byte(out), &got); code != 0 || err != nil {
			t.Fatalf("list --json: exit %d, %v: %q %s", code, err, out, stderr)
		}
		want := []store.User{
			{Name: "admin", Role: store.RoleAdmin, CIDs: []uint32{}, Groups: []uint32{}},
			{Name: "carol", Role: store.RoleViewer, CIDs: []uint32{5}, Groups: []uint32{2}},
		}
		if diff := cmp.Diff(got, want); diff != "" {
			t.Errorf("list --json (-got +want):\n%s", diff)
		}
	})

	// passwd: the cached old password and the session stop working.
	cookie := s.login(t, "carol", "carol-pass-1")
	if code := s.as(t, "/api/v1/session", "carol", "carol-pass-1", ""); code != http.StatusOK {
		t.Fatalf("carol before passwd: %d", code)
	}
	if _, stderr, code := userRun(t, s, "carol-pass-2\n", "passwd", "carol", "--password-stdin"); code != 0 {
		t.Fatalf("user passwd: exit %d: %s", code, stderr)
	}
	took := s.waitRefused(t, "/api/v1/session", "carol", "carol-pass-1", "")
	t.Logf("old password refused %s after passwd", took)
	if took > auth.FollowEvery+500*time.Millisecond {
		t.Errorf("old password refused %s after passwd, documented %s", took, auth.FollowEvery)
	}
	if code := s.as(t, "/api/v1/session", "", "", cookie); code != http.StatusUnauthorized {
		t.Errorf("carol's session after passwd: %d, want 401", code)
	}
	if code := s.as(t, "/api/v1/session", "carol", "carol-pass-2", ""); code != http.StatusOK {
		t.Errorf("carol's new password: %d, want 200", code)
	}

	// delete: the session and basic auth end.
	cookie = s.login(t, "carol", "carol-pass-2")
	if code := s.as(t, "/api/v1/session", "", "", cookie); code != http.StatusOK {
		t.Fatalf("carol's new session: %d", code)
	}
	if _, stderr, code := userRun(t, s, "", "delete", "carol"); code != 0 {
		t.Fatalf("user delete: exit %d: %s", code, stderr)
	}
	took = s.waitRefused(t, "/api/v1/session", "", "", cookie)
	t.Logf("session refused %s after delete", took)
	if took > auth.FollowEvery+500*time.Millisecond {
		t.Errorf("session refused %s after delete, documented %s", took, auth.FollowEvery)
	}
	if code := s.as(t, "/api/v1/session", "carol", "carol-pass-2", ""); code != http.StatusUnauthorized {
		t.Errorf("deleted carol's basic auth: %d, want 401", code)
	}

	t.Run("audit", func(t *testing.T) {
		var entries []store.AuditEntry
		if code := s.getJSON(t, "/api/v1/audit?limit=1000", &entries); code != http.StatusOK {
			t.Fatalf("audit: %d", code)
		}
		me, err := osuser.Current()
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range entries {
			if e.User == "shell:"+me.Username {
				got = append(got, e.Path+": "+e.Summary)
			}
		}
		want := []string{ // newest first
			"flowsentry user delete: user carol deleted",
			"flowsentry user passwd: user carol password set, sessions ended",
			"flowsentry user add: user carol role viewer partitions [5] groups [2], password set",
		}
		if diff := cmp.Diff(got, want); diff != "" {
			t.Errorf("audit entries of the shell (-got +want):\n%s", diff)
		}
	})

	// With the server stopped: a second admin lets the first go.
	s.term(t)
	if _, stderr, code := userRun(t, s, "eve-pass\n", "add", "--role", "admin", "eve", "--password-stdin"); code != 0 {
		t.Fatalf("user add with the server stopped: exit %d: %s", code, stderr)
	}
	if _, stderr, code := userRun(t, s, "", "delete", "admin"); code != 0 {
		t.Fatalf("delete of the first admin once eve is one: exit %d: %s", code, stderr)
	}
	s.launch(t)
	if code := s.as(t, "/api/v1/session", "eve", "eve-pass", ""); code != http.StatusOK {
		t.Errorf("eve, added with the server stopped: %d, want 200", code)
	}
	if code := s.as(t, "/api/v1/session", "admin", "s3cret-pass", ""); code != http.StatusUnauthorized {
		t.Errorf("admin, deleted with the server stopped: %d, want 401", code)
	}
}
