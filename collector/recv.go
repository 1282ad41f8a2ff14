package collector

import (
	"encoding/binary"
	"net"
	"net/netip"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// batchLen is the number of datagrams one recvmmsg call can return. Each
// takes a 64 KiB buffer, the largest UDP payload, so a reader holds 1 MiB.
const batchLen = 16

// maxPayload is the buffer size of one datagram.
const maxPayload = 65536

// batchReader reads datagrams from a UDP socket with recvmmsg, up to
// batchLen per system call, without allocating: on the test machine that
// cuts the socket's cost per datagram by 20-40% against one recvmsg each
// (see BenchmarkReceive). It belongs to one goroutine; the payload and
// control message it returns are valid until the next call.
type batchReader struct {
	rc    syscall.RawConn
	hdrs  []unix.Mmsghdr
	iovs  []unix.Iovec
	names []unix.RawSockaddrInet6
	bufs  []byte
	oobs  []byte
	// n is the number of datagrams the last call returned, next the next
	// one to hand out, received when the call returned.
	n, next  int
	received time.Time
	// read is the recvmmsg callback, made once so that reading allocates
	// nothing; it leaves its result in got and errno.
	read  func(fd uintptr) bool
	got   int
	errno syscall.Errno
}

func newBatchReader(conn *net.UDPConn) (*batchReader, error) {
	rc, err := conn.SyscallConn()
	if err != nil {
		return nil, err
	}
	r := &batchReader{
		rc:    rc,
		hdrs:  make([]unix.Mmsghdr, batchLen),
		iovs:  make([]unix.Iovec, batchLen),
		names: make([]unix.RawSockaddrInet6, batchLen),
		bufs:  make([]byte, batchLen*maxPayload),
		oobs:  make([]byte, batchLen*oobSize),
	}
	for i := range r.hdrs {
		r.iovs[i].Base = &r.bufs[i*maxPayload]
		r.iovs[i].SetLen(maxPayload)
		h := &r.hdrs[i].Hdr
		h.Name = (*byte)(unsafe.Pointer(&r.names[i]))
		h.Iov = &r.iovs[i]
		h.SetIovlen(1)
		h.Control = &r.oobs[i*oobSize]
	}
	r.read = r.recvmmsg
	return r, nil
}

// recvmmsg reads what the socket holds, up to batchLen datagrams; it
// returns false to wait for the socket to become readable.
func (r *batchReader) recvmmsg(fd uintptr) bool {
	for i := range r.hdrs {
		r.hdrs[i].Hdr.Namelen = unix.SizeofSockaddrInet6
		r.hdrs[i].Hdr.SetControllen(oobSize)
	}
	n, _, errno := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&r.hdrs[0])), batchLen, unix.MSG_DONTWAIT, 0, 0)
	for errno == unix.EINTR {
		n, _, errno = unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&r.hdrs[0])), batchLen, unix.MSG_DONTWAIT, 0, 0)
	}
	if errno == unix.EAGAIN {
		return false
	}
	r.got, r.errno = int(n), errno
	return true
}

// datagram is one datagram as the reader hands it out.
type datagram struct {
	payload, oob []byte
	src          netip.AddrPort
	// received is when the system call that read it returned; datagrams
	// read together share it.
	received time.Time
}

// Next returns the next datagram, reading a new batch when the last is
// used up. Errors are those of a read on the socket:
// os.ErrDeadlineExceeded after the read deadline, net.ErrClosed once
// closed.
func (r *batchReader) Next() (datagram, error) {
	if r.next == r.n {
		if err := r.rc.Read(r.read); err != nil {
			return datagram{}, err
		}
		if r.errno != 0 {
			return datagram{}, r.errno
		}
		r.n, r.next, r.received = r.got, 0, time.Now()
	}
	i := r.next
	r.next++
	h := &r.hdrs[i]
	return datagram{
		payload:  r.bufs[i*maxPayload : i*maxPayload+int(min(h.Len, maxPayload))],
		oob:      r.oobs[i*oobSize : i*oobSize+int(min(h.Hdr.Controllen, uint64(oobSize)))],
		src:      sockaddr(&r.names[i]),
		received: r.received,
	}, nil
}

// sockaddr converts the source address the kernel wrote.
func sockaddr(sa *unix.RawSockaddrInet6) netip.AddrPort {
	port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&sa.Port))[:])
	if sa.Family == unix.AF_INET {
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		return netip.AddrPortFrom(netip.AddrFrom4(sa4.Addr), port)
	}
	return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), port)
}
