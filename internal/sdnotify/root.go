// Package sdnotify speaks the two parts of systemd's service protocol that
// flowsentry serve needs, without a dependency on libsystemd: the
// notification datagrams of sd_notify(3) (READY=1, RELOADING=1,
// STOPPING=1, STATUS=...) sent to $NOTIFY_SOCKET, and the log line format
// of sd-daemon(3) for a standard error connected to the journal
// ($JOURNAL_STREAM), where a "<N>" prefix gives each line its priority.
//
// Outside systemd neither variable is set: a Notifier sends nothing and
// logs stay plain text.
package sdnotify

import (
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// The states flowsentry sends; see sd_notify(3).
const (
	Ready    = "READY=1"
	Stopping = "STOPPING=1"
)

// Notifier sends state changes to the service manager. The zero value and
// a nil *Notifier send nothing. It is safe for concurrent use.
type Notifier struct {
	addr *net.UnixAddr // nil: not run by systemd with Type=notify
}

// New returns a Notifier sending to socket, the value of $NOTIFY_SOCKET:
// a path, or an abstract socket name starting with '@'. An empty socket
// gives a Notifier that sends nothing.
func New(socket string) (*Notifier, error) {
	switch {
	case socket == "":
		return &Notifier{}, nil
	case socket[0] != '/' && socket[0] != '@':
		return nil, fmt.Errorf("NOTIFY_SOCKET=%q is not a unix socket path or an @abstract name: unset it, or run under a systemd that sends one of those", socket)
	}
	// Go's net package maps a leading '@' to the abstract namespace.
	return &Notifier{addr: &net.UnixAddr{Name: socket, Net: "unixgram"}}, nil
}

// FromEnv returns the Notifier of $NOTIFY_SOCKET and removes the variable
// from the environment, so that child processes (plugins) cannot claim to
// be the service.
func FromEnv() (*Notifier, error) {
	socket := os.Getenv("NOTIFY_SOCKET")
	os.Unsetenv("NOTIFY_SOCKET")
	return New(socket)
}

// Enabled tells whether n sends anything.
func (n *Notifier) Enabled() bool {
	return n != nil && n.addr != nil
}

// Notify sends the states, KEY=VALUE lines such as Ready and
// "STATUS=serving", in one datagram, so the service manager sees them at
// once.
func (n *Notifier) Notify(states ...string) error {
	if !n.Enabled() {
		return nil
	}
	c, err := net.DialUnix("unixgram", nil, n.addr)
	if err != nil {
		return fmt.Errorf("notify %s: %w", n.addr.Name, err)
	}
	defer c.Close()
	if err := c.SetWriteDeadline(time.Now().Add(time.Second)); err != nil {
		return fmt.Errorf("notify %s: %w", n.addr.Name, err)
	}
	if _, err := c.Write([]byte(strings.Join(states, "\n"))); err != nil {
		return fmt.Errorf("notify %s: %w", n.addr.Name, err)
	}
	return nil
}

// Reloading returns the state sent before a reload: RELOADING=1 with the
// CLOCK_MONOTONIC time systemd (253 and later) wants beside it. Send Ready
// when the reload is over.
func Reloading() string {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		// Cannot fail on Linux; older systemd ignores the field anyway.
		return "RELOADING=1"
	}
	return fmt.Sprintf("RELOADING=1\nMONOTONIC_USEC=%d", ts.Nano()/1000)
}
