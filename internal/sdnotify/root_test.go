package sdnotify

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// listen opens a unixgram socket like systemd's notify socket and returns
// the NOTIFY_SOCKET value naming it.
func listen(t *testing.T, abstract bool) (*net.UnixConn, string) {
	t.Helper()
	name := filepath.Join(t.TempDir(), "notify.sock")
	if abstract {
		name = fmt.Sprintf("@flowsentry-test-%d-%d", os.Getpid(), time.Now().UnixNano())
	}
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, name
}

func receive(t *testing.T, c *net.UnixConn) string {
	t.Helper()
	if err := c.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("no datagram: %v", err)
	}
	return string(buf[:n])
}

func TestNotify(t *testing.T) {
	for _, tc := range []struct {
		name     string
		abstract bool
	}{
		{"path", false},
		{"abstract", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, socket := listen(t, tc.abstract)
			n, err := New(socket)
			if err != nil {
				t.Fatal(err)
			}
			if !n.Enabled() {
				t.Fatal("a Notifier of a socket is not enabled")
			}
			if err := n.Notify(Ready, "STATUS=serving"); err != nil {
				t.Fatal(err)
			}
			if got, want := receive(t, c), "READY=1\nSTATUS=serving"; got != want {
				t.Errorf("datagram %q, want %q", got, want)
			}
			if err := n.Notify(Reloading()); err != nil {
				t.Fatal(err)
			}
			got := receive(t, c)
			var usec uint64
			if _, err := fmt.Sscanf(got, "RELOADING=1\nMONOTONIC_USEC=%d", &usec); err != nil || usec == 0 {
				t.Errorf("reloading datagram %q: want RELOADING=1 and a MONOTONIC_USEC (%v)", got, err)
			}
		})
	}
}

func TestNotifyErrors(t *testing.T) {
	for _, tc := range []struct {
		name, socket string
		newErr       string // "": New succeeds
		notifyErr    string // "": Notify succeeds
	}{
		{name: "unset sends nothing", socket: ""},
		{name: "relative path", socket: "notify.sock", newErr: "not a unix socket path"},
		{name: "vsock", socket: "vsock:2:1234", newErr: "not a unix socket path"},
		{name: "no listener", socket: "/nonexistent/notify.sock", notifyErr: "notify /nonexistent/notify.sock"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, err := New(tc.socket)
			if tc.newErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.newErr) {
					t.Fatalf("New(%q) = %v, want an error with %q", tc.socket, err, tc.newErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			err = n.Notify(Ready)
			if tc.notifyErr == "" {
				if err != nil || n.Enabled() {
					t.Fatalf("Notify: %v, enabled %v; want nothing sent", err, n.Enabled())
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.notifyErr) {
				t.Fatalf("Notify = %v, want an error with %q", err, tc.notifyErr)
			}
		})
	}
}

func TestFromEnvUnsets(t *testing.T) {
	c, socket := listen(t, false)
	t.Setenv("NOTIFY_SOCKET", socket)
	n, err := FromEnv()
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := os.LookupEnv("NOTIFY_SOCKET"); ok {
		t.Errorf("NOTIFY_SOCKET=%q still set: child processes would inherit it", v)
	}
	if err := n.Notify(Stopping); err != nil {
		t.Fatal(err)
	}
	if got := receive(t, c); got != Stopping {
		t.Errorf("datagram %q, want %q", got, Stopping)
	}
}
