package collector

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strconv"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// oobSize is room for the SO_RXQ_OVFL control message.
var oobSize = unix.CmsgSpace(4)

// listen opens a UDP socket on address with SO_REUSEPORT, so that every
// worker of a listener has its own socket on the same port, asks the
// kernel for the socket drop counter with each datagram (SO_RXQ_OVFL), and
// sets the receive buffer to rcvbuf bytes (0 keeps the default). It
// returns the socket and its effective receive buffer in bytes.
func listen(address string, rcvbuf int) (*net.UDPConn, int, error) {
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		if err := rc.Control(func(fd uintptr) { serr = setOptions(int(fd), rcvbuf) }); err != nil {
			return err
		}
		return serr
	}}
	pc, err := lc.ListenPacket(context.Background(), "udp", address)
	if err != nil {
		return nil, 0, err
	}
	conn := pc.(*net.UDPConn)
	size, err := receiveBuffer(conn)
	if err != nil {
		conn.Close()
		return nil, 0, err
	}
	return conn, size, nil
}

// probe checks that no socket holds address, so that a second flowsentry
// (or another listener on the same port) fails instead of sharing the port
// through SO_REUSEPORT, the kernel splitting exporters between them. It
// binds a socket without SO_REUSEPORT, which fails while any other socket
// has the port, SO_REUSEPORT or not, then closes it. It returns address
// with the port the kernel picked when the port is 0.
func probe(address string) (string, error) {
	pc, err := net.ListenPacket("udp", address)
	if errors.Is(err, syscall.EADDRINUSE) {
		return "", ErrPortInUse
	}
	if err != nil {
		return "", err
	}
	bound := pc.LocalAddr().(*net.UDPAddr).Port
	if err := pc.Close(); err != nil {
		return "", err
	}
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return "", err
	}
	return net.JoinHostPort(host, strconv.Itoa(bound)), nil
}

// setOptions sets the socket options listen needs, before bind.
func setOptions(fd, rcvbuf int) error {
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
		return fmt.Errorf("set SO_REUSEPORT: %w", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RXQ_OVFL, 1); err != nil {
		return fmt.Errorf("set SO_RXQ_OVFL: %w", err)
	}
	if rcvbuf == 0 {
		return nil
	}
	// SO_RCVBUFFORCE needs CAP_NET_ADMIN; without it, SO_RCVBUF is capped
	// at net.core.rmem_max, which the caller reports.
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, rcvbuf); err == nil {
		return nil
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, rcvbuf); err != nil {
		return fmt.Errorf("set SO_RCVBUF to %d bytes: %w", rcvbuf, err)
	}
	return nil
}

// receiveBuffer reads back the socket's receive buffer. Linux reports
// twice the size set (the extra half covers its bookkeeping); the result
// is halved to compare with the configured size.
func receiveBuffer(conn *net.UDPConn) (int, error) {
	rc, err := conn.SyscallConn()
	if err != nil {
		return 0, err
	}
	var size int
	var serr error
	if err := rc.Control(func(fd uintptr) {
		size, serr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF)
	}); err != nil {
		return 0, err
	}
	if serr != nil {
		return 0, fmt.Errorf("read SO_RCVBUF: %w", serr)
	}
	return size / 2, nil
}

// socketDrops returns the kernel's count of datagrams the socket dropped,
// from the SO_RXQ_OVFL control message in oob. The kernel only sends it
// once the count is not zero.
func socketDrops(oob []byte) (uint32, bool) {
	for len(oob) >= unix.SizeofCmsghdr {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
		n := int(h.Len)
		if n < unix.SizeofCmsghdr || n > len(oob) {
			return 0, false
		}
		if h.Level == unix.SOL_SOCKET && h.Type == unix.SO_RXQ_OVFL && n >= unix.CmsgLen(4) {
			return binary.NativeEndian.Uint32(oob[unix.CmsgLen(0):]), true
		}
		oob = oob[min(unix.CmsgSpace(n-unix.CmsgLen(0)), len(oob)):]
	}
	return 0, false
}
