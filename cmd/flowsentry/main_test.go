package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/flowsentry/flowsentry/model"
)

// binary is the flowsentry executable built once for the tests that run it
// as a real child process.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "flowsentry-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "flowsentry")
	// ftnbi goes beside flowsentry: plugins find it on their PATH there.
	for pkg, out := range map[string]string{".": binary, "../ftnbi": filepath.Join(dir, "ftnbi")} {
		if msg, err := exec.Command("go", "build", "-o", out, pkg).CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "building %s: %v\n%s", pkg, err, msg)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// need returns the path of a tool the test command installs; its absence
// fails the test, since CI must have it.
func need(t testing.TB, name string) string {
	t.Helper()
	for _, p := range []string{name, "/usr/sbin/" + name, "/usr/bin/" + name} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	t.Fatalf("%s is not installed; run the README's test command (scripts/test.sh), which installs it", name)
	return ""
}

func freePort(t testing.TB, network string) int {
	return freePorts(t, network, 1)[0]
}

// freePorts returns n distinct free ports of network ("udp" or "tcp") on
// 127.0.0.1: their sockets stay open until all are chosen, so that the
// kernel cannot hand the same port out twice.
func freePorts(t testing.TB, network string, n int) []int {
	t.Helper()
	var ports []int
	for range n {
		switch network {
		case "udp":
			c, err := net.ListenPacket("udp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			ports = append(ports, c.LocalAddr().(*net.UDPAddr).Port)
		default:
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			ports = append(ports, l.Addr().(*net.TCPAddr).Port)
		}
	}
	return ports
}

// server is a running `flowsentry serve` child process.
type server struct {
	cmd        *exec.Cmd
	base       string // http://127.0.0.1:PORT
	netflow    string // 127.0.0.1:PORT
	sflow      string
	configPath string
	logs       *syncBuffer
}

// syncBuffer is a bytes.Buffer that the child process's output goroutine
// and the test can use at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startServer runs flowsentry serve on free loopback ports with extra
// YAML appended to the generated configuration.
func startServer(t *testing.T, extra string) *server {
	t.Helper()
	dir := t.TempDir()
	udp := freePorts(t, "udp", 2)
	s := &server{
		base:    fmt.Sprintf("http://127.0.0.1:%d", freePort(t, "tcp")),
		netflow: fmt.Sprintf("127.0.0.1:%d", udp[0]),
		sflow:   fmt.Sprintf("127.0.0.1:%d", udp[1]),
		logs:    new(syncBuffer),
	}
	cfg := fmt.Sprintf(`data_dir: %s
http:
  address: %s
collector:
  listeners:
    - address: %s
      protocol: netflow
    - address: %s
      protocol: sflow
%s`, filepath.Join(dir, "data"), strings.TrimPrefix(s.base, "http://"), s.netflow, s.sflow, extra)
	s.configPath = filepath.Join(dir, "flowsentry.yaml")
	if err := os.WriteFile(s.configPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	s.launch(t)
	t.Cleanup(func() {
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- s.cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("flowsentry serve exited with %v after SIGTERM; logs:\n%s", err, s.logs)
			}
		case <-time.After(15 * time.Second):
			_ = s.cmd.Process.Kill()
			t.Errorf("flowsentry serve did not stop within 15s of SIGTERM; logs:\n%s", s.logs)
		}
	})
	return s
}

// launch starts flowsentry serve on s's configuration and waits until it
// is healthy.
func (s *server) launch(t *testing.T) {
	t.Helper()
	s.cmd = exec.Command(binary, "serve", "--config", s.configPath)
	// The admin of configurations without an admin section: getJSON logs in
	// as it.
	s.cmd.Env = append(os.Environ(), "FLOWSENTRY_ADMIN_PASSWORD=s3cret-pass")
	s.cmd.Stdout, s.cmd.Stderr = s.logs, s.logs
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get(s.base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("flowsentry serve not healthy after 15s: %v; logs:\n%s", err, s.logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// term stops the server with SIGTERM and checks it exits cleanly.
func (s *server) term(t *testing.T) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Wait(); err != nil {
		t.Fatalf("flowsentry serve exited with %v after SIGTERM; logs:\n%s", err, s.logs)
	}
}

// kill ends the server with SIGKILL, as a crash would.
func (s *server) kill(t *testing.T) {
	t.Helper()
	if err := s.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = s.cmd.Wait()
}

func (s *server) getJSON(t *testing.T, path string, v any) int {
	t.Helper()
	code, body := s.send(t, "GET", path, "")
	if err := json.Unmarshal([]byte(body), v); err != nil {
		t.Fatalf("GET %s: %v in %s", path, err, body)
	}
	return code
}

// send makes an API request as the test administrator and returns the
// status and the body.
func (s *server) send(t *testing.T, method, path, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, s.base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth("admin", "s3cret-pass")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// metric returns the sum of every sample of a metric family whose labels
// contain all of the given label="value" pairs.
func (s *server) metric(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	resp, err := http.Get(s.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	re := regexp.MustCompile(`^` + regexp.QuoteMeta(name) + `(\{[^}]*\})? (\S+)$`)
line:
	for sc.Scan() {
		m := re.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		for _, l := range labels {
			if !strings.Contains(m[1], l) {
				continue line
			}
		}
		v, err := strconv.ParseFloat(m[2], 64)
		if err != nil {
			t.Fatalf("metric %s: %v", name, err)
		}
		sum += v
	}
	return sum
}

// totals are the per-traffic-group sums the tests compare.
type totals struct {
	Flows      uint64 `json:"flows"`
	PacketsIn  uint64 `json:"packets_in"`
	PacketsOut uint64 `json:"packets_out"`
	BytesIn    uint64 `json:"bytes_in"`
	BytesOut   uint64 `json:"bytes_out"`
}

// serverTotals reads the per-group totals from the API.
func (s *server) totals(t *testing.T) map[uint32]totals {
	t.Helper()
	var groups []struct {
		ID     uint32 `json:"id"`
		Totals struct {
			totals
			Updates uint64 `json:"updates"`
		} `json:"totals"`
	}
	s.getJSON(t, "/api/v1/trafficgroups", &groups)
	out := make(map[uint32]totals, len(groups))
	for _, g := range groups {
		tt := g.Totals.totals
		tt.Flows = g.Totals.Updates
		out[g.ID] = tt
	}
	return out
}

// waitTotals polls the API until the group packet and byte totals equal
// want (records arrive over UDP and are published at the next tick) or 30 s
// pass, and returns the totals with their flow counts.
func (s *server) waitTotals(t *testing.T, want map[uint32]totals) map[uint32]totals {
	t.Helper()
	want = withoutFlows(want)
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := s.totals(t)
		if fmt.Sprint(withoutFlows(got)) == fmt.Sprint(want) {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("server totals per traffic group:\n got %+v\nwant %+v\ndatagrams %v records %v decode errors %v\nlogs:\n%s", got, want,
				s.metric(t, "flowsentry_collector_datagrams_total"), s.metric(t, "flowsentry_pipeline_records_total"),
				s.metric(t, "flowsentry_collector_decode_errors_total"), s.logs)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// replayTotals runs `flowsentry replay` and returns its summary lines.
func replayTotals(t *testing.T, files ...string) map[uint32]totals {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"replay"}, files...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("flowsentry replay %v: %v\n%s", files, err, stderr.String())
	}
	res := map[uint32]totals{}
	for _, line := range bytes.Split(bytes.TrimSpace(out), []byte("\n")) {
		var v struct {
			Type string `json:"type"`
			TGrp uint32 `json:"tgrp"`
			totals
		}
		if err := json.Unmarshal(line, &v); err != nil {
			t.Fatalf("replay printed a line that is not JSON: %q: %v", line, err)
		}
		if v.Type == "summary" {
			res[v.TGrp] = v.totals
		}
	}
	return res
}

// byteCount says how tsharkTotals counts the bytes of a packet.
type byteCount int

const (
	// ipLength counts the IP total length: layer-3 bytes, as the packet
	// meter and routers' NetFlow do.
	ipLength byteCount = iota
	// wireLength counts the frame length minus the Ethernet header and
	// VLAN tags, as softflowd does: it includes the padding of frames
	// below Ethernet's 60-byte minimum (a 40-byte TCP SYN counts 46).
	wireLength
	// sflowSamples counts, instead of the frames themselves, the IP
	// packets an sFlow datagram carries in its sampled headers (every IP
	// header after the first), scaled by their sampling rate.
	sflowSamples
)

// tsharkTotals counts packets and bytes per default traffic group from
// tshark's dissection of a capture.
func tsharkTotals(t *testing.T, file string, mode byteCount) map[uint32]totals {
	t.Helper()
	tshark := need(t, "tshark")
	args := []string{"-r", file, "-T", "fields", "-E", "occurrence=a", "-E", "aggregator=,",
		"-e", "ip.src", "-e", "ip.dst", "-e", "ip.len", "-e", "ipv6.src", "-e", "ipv6.dst", "-e", "ipv6.plen",
		"-e", "sflow.flow_sample.sampling_rate", "-e", "frame.len", "-e", "vlan.id"}
	out, err := exec.Command(tshark, args...).Output()
	if err != nil {
		t.Fatalf("tshark: %v", err)
	}
	m, err := model.Build(model.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	res := map[uint32]totals{}
	for _, g := range m.Groups {
		res[g.ID] = totals{}
	}
	add := func(src, dst string, length, rate uint64) {
		s, d := netip.MustParseAddr(src), netip.MustParseAddr(dst)
		for _, gi := range m.GroupsOf(d) {
			g := res[m.Groups[gi].ID]
			g.PacketsIn += rate
			g.BytesIn += length * rate
			res[m.Groups[gi].ID] = g
		}
		for _, gi := range m.GroupsOf(s) {
			g := res[m.Groups[gi].ID]
			g.PacketsOut += rate
			g.BytesOut += length * rate
			res[m.Groups[gi].ID] = g
		}
	}
	split := func(s string) []string {
		if s == "" {
			return nil
		}
		return strings.Split(s, ",")
	}
	num := func(s string) uint64 {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("tshark printed %q where a number belongs", s)
		}
		return n
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(line, "\t")
		for len(f) < 9 {
			f = append(f, "")
		}
		src, dst, lens := split(f[0]), split(f[1]), split(f[2])
		src6, dst6, plens := split(f[3]), split(f[4]), split(f[5])
		rates := split(f[6])
		if len(src) > 0 && len(src6) > 0 {
			t.Fatalf("tshark totals: a frame with both IPv4 and IPv6 headers is not handled by this helper (%s)", file)
		}
		if len(src6) > 0 && mode == sflowSamples {
			t.Fatalf("tshark totals: IPv6 sampled headers are not handled by this helper (%s)", file)
		}
		wire := num(f[7]) - 14 - 4*uint64(len(split(f[8])))
		switch mode {
		case sflowSamples:
			for i := 1; i < len(src); i++ {
				add(src[i], dst[i], num(lens[i]), num(rates[i-1]))
			}
		case wireLength:
			if len(src) > 0 {
				add(src[0], dst[0], wire, 1)
			} else if len(src6) > 0 {
				add(src6[0], dst6[0], wire, 1)
			}
		default:
			if len(src) > 0 {
				add(src[0], dst[0], num(lens[0]), 1)
			} else if len(src6) > 0 {
				add(src6[0], dst6[0], num(plens[0])+40, 1)
			}
		}
	}
	return res
}

// withoutFlows drops the flow counts, which tshark cannot know.
func withoutFlows(m map[uint32]totals) map[uint32]totals {
	out := make(map[uint32]totals, len(m))
	for k, v := range m {
		v.Flows = 0
		out[k] = v
	}
	return out
}
