package api

import (
	"container/list"
	"crypto/tls"
	"net"
	"net/http"
	"net/netip"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Reasons of the connection metrics: the cap that was reached.
const (
	reasonMax       = "max_connections"
	reasonPerClient = "max_connections_per_client"
)

// connLimiter caps the open connections of the server, in total and per
// client address. A new connection over a cap takes the place of the
// connection of that cap that has been idle longest: waiting for its next
// request (StateIdle) or still for its first (StateNew: a client that
// connected and sent nothing, or a slow header trickle). Only when every
// such connection is busy with a request is the new one refused. So tens of
// thousands of idle sockets cost at most the cap in file descriptors, and
// /healthz still gets through. Its methods are safe for concurrent use.
type connLimiter struct {
	max, perClient int
	evicted        *prometheus.CounterVec
	refused        *prometheus.CounterVec

	mu       sync.Mutex
	open     int
	byClient map[netip.Addr]int
	idle     list.List // of *trackedConn, idle longest first
}

func newConnLimiter(cfg Config, reg prometheus.Registerer) (*connLimiter, error) {
	l := &connLimiter{
		max: cfg.MaxConnections, perClient: cfg.MaxConnectionsPerClient,
		byClient: make(map[netip.Addr]int),
		evicted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flowsentry_api_connections_evicted_total",
			Help: "Idle HTTP connections closed to admit a new one, by the cap reached (http.max_connections, http.max_connections_per_client).",
		}, []string{"reason"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flowsentry_api_connections_refused_total",
			Help: "New HTTP connections closed at once because every connection under the cap reached was busy, by that cap.",
		}, []string{"reason"}),
	}
	open := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "flowsentry_api_connections",
		Help: "Open HTTP connections.",
	}, func() float64 {
		l.mu.Lock()
		defer l.mu.Unlock()
		return float64(l.open)
	})
	for _, c := range []prometheus.Collector{l.evicted, l.refused, open} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	for _, reason := range []string{reasonMax, reasonPerClient} {
		l.evicted.WithLabelValues(reason)
		l.refused.WithLabelValues(reason)
	}
	return l, nil
}

// trackedConn is a connection the limiter counts. Its fields other than
// Conn belong to the limiter's lock.
type trackedConn struct {
	net.Conn
	l        *connLimiter
	client   netip.Addr
	idle     *list.Element // in l.idle while new or idle; nil while busy
	released bool
}

// Close releases the connection's place and closes it.
func (c *trackedConn) Close() error {
	c.l.mu.Lock()
	c.l.releaseLocked(c)
	c.l.mu.Unlock()
	return c.Conn.Close()
}

// listener wraps ln so that every connection it accepts is admitted by l.
func (l *connLimiter) listener(ln net.Listener) net.Listener {
	return &limitListener{Listener: ln, l: l}
}

type limitListener struct {
	net.Listener
	l *connLimiter
}

// Accept returns the next connection admitted; those refused are closed.
func (ln *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := ln.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if tc := ln.l.admit(c); tc != nil {
			return tc, nil
		}
		_ = c.Close()
	}
}

// admit counts c in, closing the connections it displaces, or returns nil
// when c must be refused.
func (l *connLimiter) admit(c net.Conn) *trackedConn {
	var client netip.Addr
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		client = a.AddrPort().Addr().Unmap()
	}
	var victims []*trackedConn
	l.mu.Lock()
	if l.perClient > 0 && l.byClient[client] >= l.perClient {
		v := l.oldestIdleLocked(func(t *trackedConn) bool { return t.client == client })
		if v == nil {
			l.mu.Unlock()
			l.refused.WithLabelValues(reasonPerClient).Inc()
			return nil
		}
		l.releaseLocked(v)
		victims = append(victims, v)
		l.evicted.WithLabelValues(reasonPerClient).Inc()
	}
	if l.open >= l.max {
		v := l.oldestIdleLocked(nil)
		if v == nil {
			l.mu.Unlock()
			l.refused.WithLabelValues(reasonMax).Inc()
			return nil
		}
		l.releaseLocked(v)
		victims = append(victims, v)
		l.evicted.WithLabelValues(reasonMax).Inc()
	}
	tc := &trackedConn{Conn: c, l: l, client: client}
	tc.idle = l.idle.PushBack(tc)
	l.open++
	l.byClient[client]++
	l.mu.Unlock()
	for _, v := range victims {
		_ = v.Conn.Close() // the server's goroutine for it then ends
	}
	return tc
}

// oldestIdleLocked returns the connection idle longest among those match
// accepts (all for nil), or nil.
func (l *connLimiter) oldestIdleLocked(match func(*trackedConn) bool) *trackedConn {
	for e := l.idle.Front(); e != nil; e = e.Next() {
		if t := e.Value.(*trackedConn); match == nil || match(t) {
			return t
		}
	}
	return nil
}

// releaseLocked takes c out of the counts, once.
func (l *connLimiter) releaseLocked(c *trackedConn) {
	if c.released {
		return
	}
	c.released = true
	if c.idle != nil {
		l.idle.Remove(c.idle)
		c.idle = nil
	}
	l.open--
	if l.byClient[c.client]--; l.byClient[c.client] <= 0 {
		delete(l.byClient, c.client)
	}
}

// connState is the http.Server's ConnState hook: it moves connections in
// and out of the idle list. A connection that turns idle goes to the back,
// so the front is the one idle longest.
func (l *connLimiter) connState(c net.Conn, state http.ConnState) {
	if t, ok := c.(*tls.Conn); ok {
		c = t.NetConn()
	}
	tc, ok := c.(*trackedConn)
	if !ok {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if tc.released {
		return
	}
	switch state {
	case http.StateNew, http.StateIdle:
		if tc.idle == nil {
			tc.idle = l.idle.PushBack(tc)
		}
	case http.StateActive, http.StateHijacked:
		if tc.idle != nil {
			l.idle.Remove(tc.idle)
			tc.idle = nil
		}
	case http.StateClosed:
		l.releaseLocked(tc)
	}
}
