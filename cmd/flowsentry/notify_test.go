package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestServeNotify runs flowsentry serve as systemd runs a Type=notify
// service: with a NOTIFY_SOCKET (a unixgram socket of the test) and a
// standard error named by JOURNAL_STREAM. READY=1 must come only once the
// HTTP server answers and the flow listeners are bound; a SIGHUP is
// framed by RELOADING=1 and READY=1; SIGTERM sends STOPPING=1; log lines
// carry a priority prefix and no time.
func TestServeNotify(t *testing.T) {
	dir := t.TempDir()
	sock, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: filepath.Join(dir, "notify.sock"), Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	receive := func(what string) string {
		t.Helper()
		if err := sock.SetReadDeadline(time.Now().Add(20 * time.Second)); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 4096)
		n, err := sock.Read(buf)
		if err != nil {
			t.Fatalf("no %s notification: %v", what, err)
		}
		return string(buf[:n])
	}

	udp := freePorts(t, "udp", 2)
	httpAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t, "tcp"))
	cfg := writeConfig(t, fmt.Sprintf(`data_dir: %s
http:
  address: %s
collector:
  listeners:
    - address: 127.0.0.1:%d
      protocol: netflow
    - address: 127.0.0.1:%d
      protocol: sflow
`, filepath.Join(dir, "data"), httpAddr, udp[0], udp[1]))

	// The journal's stream: a pipe whose device and inode JOURNAL_STREAM names.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var st syscall.Stat_t
	if err := syscall.Fstat(int(w.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	logs := new(syncBuffer)
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		_, _ = io.Copy(logs, r)
	}()

	cmd := exec.Command(binary, "serve", "--config", cfg)
	cmd.Env = append(os.Environ(), "FLOWSENTRY_ADMIN_PASSWORD=s3cret-pass",
		"NOTIFY_SOCKET="+sock.LocalAddr().String(),
		fmt.Sprintf("JOURNAL_STREAM=%d:%d", st.Dev, st.Ino))
	cmd.Stderr = w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	exited := false
	defer func() {
		if !exited {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}()

	status := fmt.Sprintf("STATUS=serving HTTP on %s, 2 flow listeners", httpAddr)
	if got, want := receive("readiness"), "READY=1\n"+status; got != want {
		t.Fatalf("first notification %q, want %q; logs:\n%s", got, want, logs)
	}
	// Ready means ready: no retry allowed.
	resp, err := http.Get("http://" + httpAddr + "/healthz")
	if err != nil {
		t.Fatalf("READY=1 sent before the HTTP server answers: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("READY=1 sent while /healthz answers %s", resp.Status)
	}
	for _, port := range udp {
		if c, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			c.Close()
			t.Fatalf("READY=1 sent before the flow listener on UDP port %d is bound", port)
		}
	}

	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if got := receive("reloading"); !regexp.MustCompile(`^RELOADING=1\nMONOTONIC_USEC=[1-9][0-9]*\nSTATUS=reloading the configuration$`).MatchString(got) {
		t.Errorf("notification on SIGHUP %q, want RELOADING=1, MONOTONIC_USEC and a STATUS", got)
	}
	if got, want := receive("ready after reload"), "READY=1\n"+status; got != want {
		t.Errorf("notification after the reload %q, want %q", got, want)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if got, want := receive("stopping"), "STOPPING=1\nSTATUS=stopping"; got != want {
		t.Errorf("notification on SIGTERM %q, want %q", got, want)
	}
	err = cmd.Wait()
	exited = true
	<-copied
	if err != nil {
		t.Fatalf("flowsentry serve exited with %v after SIGTERM; logs:\n%s", err, logs)
	}

	out := logs.String()
	for _, want := range []string{"<6>level=INFO msg=\"flowsentry serving\"", "<6>level=INFO msg=\"configuration reloaded\"", "<6>level=INFO msg=stopped"} {
		if !strings.Contains(out, want+"\n") && !strings.Contains(out, want+" ") {
			t.Errorf("journal log lacks %q:\n%s", want, out)
		}
	}
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if !regexp.MustCompile(`^<[3467]>level=`).MatchString(line) || strings.Contains(line, "time=") {
			t.Errorf("journal log line %q: want a <N> priority prefix and no time", line)
		}
	}
}

// TestServeNotifySocketRefused: a NOTIFY_SOCKET that is no unix socket
// stops the start with a message naming it, before anything is opened.
func TestServeNotifySocketRefused(t *testing.T) {
	cmd := exec.Command(binary, "serve", "--http", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET=vsock:2:99")
	cmd.Dir = t.TempDir()
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("exit %v, want status 1; output:\n%s", err, out)
	}
	if want := `NOTIFY_SOCKET="vsock:2:99" is not a unix socket path`; !strings.Contains(string(out), want) {
		t.Errorf("output lacks %q:\n%s", want, out)
	}
	if _, err := os.Stat(filepath.Join(cmd.Dir, "data")); !os.IsNotExist(err) {
		t.Errorf("the data folder was created before the refusal (%v)", err)
	}
}
