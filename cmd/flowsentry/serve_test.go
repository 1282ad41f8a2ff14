package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flowsentry/flowsentry/internal/testcaptures"
)

func runBinary(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return runCmd(t, binary, args...)
}

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "flowsentry.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestServeCheckAndDump covers --check and --dump on the embedded default
// and on files, and that configuration errors name the file, the line, the
// key and what is valid.
func TestServeCheckAndDump(t *testing.T) {
	cwd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		config string // "" = no --config
		args   []string
		code   int
		stdout []string
		stderr []string
		hidden []string // in neither stdout nor stderr
	}{
		{name: "default check", args: []string{"--check"}, code: 0, stdout: []string{"configuration OK"}},
		{name: "default dump", args: []string{"--dump"}, code: 0, stdout: []string{
			"address: 127.0.0.1:8080", "address: :2055", "protocol: netflow", "address: :6343", "protocol: sflow",
			"data_dir: " + filepath.Join(cwd, "data"), "name: internal", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7",
			`tls_cert: ""`, "max_connections: 1024", "max_connections_per_client: 256", "read_header_timeout: 5s", "idle_timeout: 30s",
			`password: ""`}},
		{name: "dump hides secrets", config: "admin:\n  password: Adm1n-s3cret\ninstances:\n  - id: 1\n    cid: 0\n    plugin: missing\n    name: mail\n    values: {SMTP_PASSWORD: Sm7p-s3cret}\n",
			args: []string{"--dump"}, code: 0, stdout: []string{"password: <redacted>", "SMTP_PASSWORD: <redacted>"},
			hidden: []string{"Adm1n-s3cret", "Sm7p-s3cret"}},
		{name: "tls key missing", config: "http:\n  tls_cert: /nonexistent/cert.pem\n",
			args: []string{"--check"}, code: 1, stderr: []string{"flowsentry.yaml:1:", "http.tls_key", "empty both for plain HTTP"}},
		{name: "tls files unreadable", config: "http:\n  tls_cert: /nonexistent/cert.pem\n  tls_key: /nonexistent/key.pem\n",
			args: []string{"--check"}, code: 1, stderr: []string{"/nonexistent/cert.pem", "give PEM files"}},
		{name: "unknown key", config: "traffic_groups:\n  - id: 5\n    name: dmz\n    partition: 0\n    cidr: [192.0.2.0/24]\n",
			args: []string{"--check"}, code: 1, stderr: []string{"flowsentry.yaml:5:", `"cidr"`, "cidrs"}},
		{name: "bad protocol", config: "collector:\n  listeners:\n    - address: 127.0.0.1:2055\n      protocol: netflw\n",
			args: []string{"--check"}, code: 1, stderr: []string{"flowsentry.yaml:4:", "netflw", "sflow"}},
		{name: "bad cidr", config: "traffic_groups:\n  - id: 2\n    name: web\n    partition: 0\n    cidrs: [10.1.2.3/8]\n",
			args: []string{"--check"}, code: 1, stderr: []string{"flowsentry.yaml:5:", "10.0.0.0/8"}},
		{name: "flag overrides dump", args: []string{"--dump", "--http", "127.0.0.1:9999", "--netflow", "127.0.0.1:9995"},
			code: 0, stdout: []string{"address: 127.0.0.1:9999", "address: 127.0.0.1:9995", "address: :6343"}},
		{name: "bad flag value", args: []string{"--check", "--http", "nonsense"}, code: 1, stderr: []string{"http.address", "host:port"}},
		{name: "missing file", args: []string{"--check", "--config", "/nonexistent/flowsentry.yaml"}, code: 1, stderr: []string{"/nonexistent/flowsentry.yaml"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"serve"}, tc.args...)
			if tc.config != "" {
				args = append(args, "--config", writeConfig(t, tc.config))
			}
			out, errOut, code := runBinary(t, args...)
			if code != tc.code {
				t.Fatalf("exit code %d, want %d\nstdout: %s\nstderr: %s", code, tc.code, out, errOut)
			}
			for _, s := range tc.stdout {
				if !strings.Contains(out, s) {
					t.Errorf("stdout lacks %q:\n%s", s, out)
				}
			}
			for _, s := range tc.stderr {
				if !strings.Contains(errOut, s) {
					t.Errorf("stderr lacks %q:\n%s", s, errOut)
				}
			}
			for _, s := range tc.hidden {
				if strings.Contains(out+errOut, s) {
					t.Errorf("the output shows the secret %q:\n%s\n%s", s, out, errOut)
				}
			}
		})
	}
}

// TestServeDumpRoundTrip checks that --dump prints a configuration that
// serve accepts again.
func TestServeDumpRoundTrip(t *testing.T) {
	out, errOut, code := runBinary(t, "serve", "--dump")
	if code != 0 {
		t.Fatalf("dump: %d %s", code, errOut)
	}
	out2, errOut, code := runBinary(t, "serve", "--dump", "--config", writeConfig(t, out))
	if code != 0 || out2 != out {
		t.Fatalf("dumped config does not round-trip (exit %d, %s):\n%s\n---\n%s", code, errOut, out, out2)
	}
}

// TestServeReload changes the traffic groups in the file and sends SIGHUP:
// the API shows the new groups; a broken file keeps them; a change that
// needs a restart is named in the log.
func TestServeReload(t *testing.T) {
	s := startServer(t, "traffic_groups:\n  - id: 7\n    name: servers\n    partition: 0\n    cidrs: [10.1.0.0/16]\n")
	names := func() string {
		var groups []struct {
			ID   uint32 `json:"id"`
			Name string `json:"name"`
		}
		s.getJSON(t, "/api/v1/trafficgroups", &groups)
		return fmt.Sprint(groups)
	}
	if got := names(); got != "[{7 servers}]" {
		t.Fatalf("groups at start: %s", got)
	}
	cfg, err := os.ReadFile(s.configPath)
	if err != nil {
		t.Fatal(err)
	}
	update := func(body string) {
		if err := os.WriteFile(s.configPath, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := s.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	}
	// The generated file ends with the traffic_groups list.
	update(string(cfg) + "  - id: 8\n    name: office\n    partition: 0\n    cidrs: [192.168.10.0/24]\n")
	waitFor(t, func() bool { return names() == "[{7 servers} {8 office}]" }, "reloaded groups", s)
	update(string(cfg) + "  - id: 9\n    name: broken\n    partition: 0\n    cidrs: [not-a-prefix]\n")
	waitFor(t, func() bool { return strings.Contains(s.logs.String(), "reload failed") }, "reload failure logged", s)
	if got := names(); got != "[{7 servers} {8 office}]" {
		t.Fatalf("a failed reload changed the groups: %s", got)
	}
	// A changed HTTP address is named as needing a restart; the server
	// keeps listening where it did.
	addr := strings.TrimPrefix(s.base, "http://")
	update(strings.Replace(string(cfg), "address: "+addr+"\n", "address: 127.0.0.1:1\n", 1))
	waitFor(t, func() bool {
		return strings.Contains(s.logs.String(), `msg="changed keys take effect only after a restart" keys=http`)
	}, "the restart warning", s)
	if got := names(); got != "[{7 servers}]" {
		t.Fatalf("groups after the third reload: %s", got)
	}
}

func waitFor(t *testing.T, cond func() bool, what string, s *server) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; logs:\n%s", what, s.logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestServeMalformedInput sends bad datagrams of every kind to both
// listeners: each is counted by reason, the server keeps serving, and a
// valid export afterwards is still decoded.
func TestServeMalformedInput(t *testing.T) {
	s := startServer(t, "")
	bad := map[string][][]byte{
		s.netflow: {
			{0x00},                         // 1 byte
			make([]byte, 65507),            // 64 KiB of zeros: version 0
			{0x00, 0x05, 0x00, 0x1e},       // v5 header cut short, count 30
			{0x00, 0x09, 0x00, 0x01, 0, 0}, // v9 header cut short
			{0x00, 0x0a, 0x00, 0x10},       // IPFIX header cut short
			{0x00, 0x63, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, // version 99
		},
		s.sflow: {
			{0x00},
			make([]byte, 65507),
			{0, 0, 0, 5, 0, 0, 0, 1}, // sFlow v5 cut after the address type
		},
	}
	sent := 0
	for addr, list := range bad {
		conn, err := net.Dial("udp", addr)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range list {
			if _, err := conn.Write(d); err != nil {
				t.Fatal(err)
			}
			sent++
		}
		conn.Close()
	}
	waitFor(t, func() bool { return s.metric(t, "flowsentry_collector_decode_errors_total") >= float64(sent) },
		fmt.Sprintf("%d decode errors", sent), s)
	for _, reason := range []string{`reason="truncated"`, `reason="version"`} {
		if s.metric(t, "flowsentry_collector_decode_errors_total", reason) == 0 {
			t.Errorf("no decode error counted with %s", reason)
		}
	}
	caps := testcaptures.Dir(t)
	sendPayloads(t, filepath.Join(caps, "flow-exports/derived/softflowd-v9-nmap-synscan.pcap"), s.netflow)
	waitFor(t, func() bool { return s.metric(t, "flowsentry_pipeline_records_total") == 2002 }, "2,002 records after the bad input", s)
}

// TestServeRefusesBeforeTouchingDisk checks that --check runs the
// validation serve runs — references between policies, partitions,
// traffic groups and plugin instances, plugin values, addresses — that
// each problem names the file, the line and the key, and that serve
// refusing a file has created nothing in its data folder.
func TestServeRefusesBeforeTouchingDisk(t *testing.T) {
	examples, err := filepath.Abs("../../examples")
	if err != nil {
		t.Fatal(err)
	}
	const policy = "  - id: 100\n    name: web\n    cid: %d\n    family: threshold\n    target: traffic_groups\n" +
		"    object_type: TGRP\n    threshold_type: packets_in\n    threshold: 1000\n    severity: 5\n%s"
	instance := "plugin_dir: " + examples + "\ninstances:\n  - id: 3\n    cid: 0\n    plugin: email\n    name: ops mail\n" +
		"    values:\n      EMAIL_USERNAME: ops\n%s"
	cases := []struct {
		name   string
		config string
		at     string // the line holding this text is the one the error names
		want   []string
	}{
		{"missing traffic group", "policies:\n" + fmt.Sprintf(policy, 0, "    tgrp: 7\n"), "tgrp: 7",
			[]string{"policies[0].tgrp", "traffic group 7 does not exist in partition 0"}},
		{"missing partition", "policies:\n" + fmt.Sprintf(policy, 5, ""), "cid: 5",
			[]string{"policies[0].cid", "partition 5 does not exist"}},
		{"missing instance", "policies:\n" + fmt.Sprintf(policy, 0, "    actions:\n      - instance: 9\n"), "instance: 9",
			[]string{"policies[0].actions[0].instance", "plugin instance 9 does not exist"}},
		{"bad http port", "http:\n  address: 127.0.0.1:80800\n", "80800",
			[]string{"http.address", `port "80800"`, "0 to 65535"}},
		{"bad instance value", fmt.Sprintf(instance, "      EMAIL_MAILPORT: 99999\n"), "99999",
			[]string{"instances[0].values.EMAIL_MAILPORT", "greater than the maximum 65000"}},
		{"bad override", fmt.Sprintf(instance, "") + "policies:\n" + fmt.Sprintf(policy, 0, "    actions:\n      - instance: 3\n        overrides:\n          EMAIL_MAILPORT: \"0\"\n"),
			"EMAIL_MAILPORT: \"0\"", []string{"policies[0].actions[0].overrides.EMAIL_MAILPORT"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := writeConfig(t, tc.config)
			line := 0
			for i, l := range strings.Split(tc.config, "\n") {
				if strings.Contains(l, tc.at) {
					line = i + 1
					break
				}
			}
			want := append([]string{fmt.Sprintf("flowsentry.yaml:%d: ", line)}, tc.want...)
			for _, args := range [][]string{
				{"serve", "--check", "--config", path},
				{"serve", "--config", path, "--http", "127.0.0.1:0", "--netflow", "127.0.0.1:0", "--sflow", "127.0.0.1:0"},
			} {
				if tc.name == "bad http port" {
					args = slicesWithout(args, "--http", "127.0.0.1:0")
				}
				out, errOut, code := runBinary(t, args...)
				if code != 1 {
					t.Fatalf("%v: exit code %d, want 1\nstdout: %s\nstderr: %s", args, code, out, errOut)
				}
				for _, s := range want {
					if !strings.Contains(errOut, s) {
						t.Errorf("%v: stderr lacks %q:\n%s", args, s, errOut)
					}
				}
				if _, err := os.Stat(filepath.Join(filepath.Dir(path), "data")); !os.IsNotExist(err) {
					t.Fatalf("%v: the data folder exists after a refused start (stat: %v)", args, err)
				}
			}
		})
	}
}

// slicesWithout returns args without the pair name, value.
func slicesWithout(args []string, name, value string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		if args[i] == name && i+1 < len(args) && args[i+1] == value {
			i++
			continue
		}
		out = append(out, args[i])
	}
	return out
}
