package main

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// filePolicyConfig is a configuration with policy 50 of severity sev.
const filePolicyConfig = `admin:
  user: admin
  password: s3cret-pass
policies:
  - id: 50
    name: file web
    cid: 0
    family: threshold
    target: traffic_groups
    object_type: TGRP
    threshold_type: packets_in
    threshold: 100
    severity: 4
`

// TestPolicySources checks the ownership of policies with the real
// binary: the file's are read-only in the API (409 naming the file) and
// change on SIGHUP after the file is edited; the API's live in the
// database and survive a restart.
func TestPolicySources(t *testing.T) {
	s := startServer(t, filePolicyConfig)
	type pol struct {
		ID       uint64 `json:"id"`
		Name     string `json:"name"`
		Severity int    `json:"severity"`
		Source   string `json:"source"`
	}
	get := func(id string) pol {
		t.Helper()
		code, body := s.send(t, "GET", "/api/v1/policies/"+id, "")
		var p pol
		if err := json.Unmarshal([]byte(body), &p); code != 200 || err != nil {
			t.Fatalf("GET policy %s: %d %v: %s", id, code, err, body)
		}
		return p
	}
	if p := get("50"); p.Source != "config" || p.Severity != 4 {
		t.Fatalf("file policy at start: %+v", p)
	}
	edited := `{"name":"file web","cid":0,"family":"threshold","target":"traffic_groups","object_type":"TGRP",
		"threshold_type":"packets_in","threshold":100,"severity":9}`
	for _, method := range []string{"PUT", "DELETE"} {
		code, body := s.send(t, method, "/api/v1/policies/50", edited)
		for _, want := range []string{"policy 50", "is defined in " + s.configPath, "edit " + s.configPath + " and send SIGHUP (systemctl reload flowsentry)"} {
			if code != http.StatusConflict || !strings.Contains(body, want) {
				t.Errorf("%s of a file policy: %d %s, want 409 with %q", method, code, body, want)
			}
		}
	}
	code, body := s.send(t, "POST", "/api/v1/policies", strings.Replace(edited, "file web", "api web", 1))
	var created pol
	if err := json.Unmarshal([]byte(body), &created); code != http.StatusCreated || err != nil || created.Source != "api" {
		t.Fatalf("POST policy: %d %v: %s", code, err, body)
	}

	// SIGHUP applies an edited file, and says so.
	cfg, err := os.ReadFile(s.configPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.configPath, []byte(strings.Replace(string(cfg), "severity: 4", "severity: 6", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		return strings.Contains(s.logs.String(), `msg="policies reloaded from the configuration file" added=[] changed=[50] removed=[]`)
	}, "the reload's changes logged", s)
	if p := get("50"); p.Severity != 6 || p.Source != "config" {
		t.Errorf("file policy after SIGHUP: %+v, want severity 6", p)
	}

	// The API's policy survives a restart; the file's stays as edited.
	s.term(t)
	s.launch(t)
	if p := get(strconv.FormatUint(created.ID, 10)); p != created {
		t.Errorf("API policy after a restart: %+v, want %+v", p, created)
	}
	if p := get("50"); p.Source != "config" || p.Severity != 6 {
		t.Errorf("file policy after a restart: %+v", p)
	}
}

// TestInstanceSources checks the ownership of plugin instances with the
// real binary: the file's are read-only in the API (409 naming the file),
// an instance removed from the file goes at SIGHUP (and the reload says
// so), and the API's survive a restart.
func TestInstanceSources(t *testing.T) {
	examples, err := filepath.Abs("../../examples")
	if err != nil {
		t.Fatal(err)
	}
	const fileInstance = "  - id: 3\n    cid: 0\n    plugin: email\n    name: ops mail\n    values:\n      EMAIL_USERNAME: ops\n"
	s := startServer(t, "plugin_dir: "+examples+"\ninstances:\n"+fileInstance)
	type inst struct {
		ID     uint64 `json:"id"`
		Name   string `json:"name"`
		Source string `json:"source"`
	}
	var in inst
	if code := s.getJSON(t, "/api/v1/instances/3", &in); code != http.StatusOK || in.Source != "config" {
		t.Fatalf("file instance: HTTP %d %+v, want source config", code, in)
	}
	body := `{"cid":0,"plugin":"email","name":"renamed","values":{}}`
	for _, method := range []string{"PUT", "DELETE"} {
		code, answer := s.send(t, method, "/api/v1/instances/3", body)
		if code != http.StatusConflict || !strings.Contains(answer, s.configPath) {
			t.Errorf("%s of a file instance: %d %s, want 409 naming %s", method, code, answer, s.configPath)
		}
	}
	code, answer := s.send(t, "POST", "/api/v1/instances", `{"cid":0,"plugin":"email","name":"noc mail","values":{"EMAIL_USERNAME":"noc"}}`)
	var created inst
	if err := json.Unmarshal([]byte(answer), &created); code != http.StatusCreated || err != nil || created.Source != "api" {
		t.Fatalf("POST instance: %d %v: %s", code, err, answer)
	}

	cfg, err := os.ReadFile(s.configPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.configPath, []byte(strings.Replace(string(cfg), fileInstance, "", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		return strings.Contains(s.logs.String(), `msg="plugin instances reloaded from the configuration file" added=[] changed=[] removed=[3]`)
	}, "the removal logged", s)
	if code, _ := s.send(t, "GET", "/api/v1/instances/3", ""); code != http.StatusNotFound {
		t.Errorf("instance removed from the file: HTTP %d, want 404", code)
	}
	s.term(t)
	s.launch(t)
	if code := s.getJSON(t, "/api/v1/instances/"+strconv.FormatUint(created.ID, 10), &in); code != http.StatusOK || in != created {
		t.Errorf("API instance after a restart: HTTP %d %+v, want %+v", code, in, created)
	}
}
