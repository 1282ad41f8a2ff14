package api

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/flowsentry/flowsentry/model"
	"github.com/flowsentry/flowsentry/rates"
)

// startServer starts a real server on 127.0.0.1 with cfg (its address
// replaced) and the rate snapshots of snap, and returns it with its
// registry.
func startServer(t *testing.T, cfg Config, snap func() *rates.Snapshot) (*Server, *prometheus.Registry) {
	t.Helper()
	m, err := model.Build(model.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	if snap == nil {
		snap = func() *rates.Snapshot { return &rates.Snapshot{} }
	}
	reg := prometheus.NewRegistry()
	cfg.Address = "127.0.0.1:0"
	s, err := New(cfg, withAuth(t, Deps{Gatherer: reg, Registerer: reg, Model: model.NewHolder(m), Rates: snap, Log: slog.New(slog.DiscardHandler)}))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s, reg
}

// dialFrom opens a TCP connection to s from the local address from
// (127.0.0.1, 127.0.0.2, ...), closed at the end of the test.
func dialFrom(t *testing.T, s *Server, from string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// waitOpen waits until s counts n open connections.
func waitOpen(t *testing.T, s *Server, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		s.conns.mu.Lock()
		open := s.conns.open
		s.conns.mu.Unlock()
		if open == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d open connections, want %d", open, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// closedByServer reports whether the server closed c: a read returns EOF
// or a reset rather than timing out.
func closedByServer(c net.Conn, wait time.Duration) bool {
	_ = c.SetReadDeadline(time.Now().Add(wait))
	_, err := c.Read(make([]byte, 1))
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout())
}

// getHealth times GET /healthz on a new connection.
func getHealth(t *testing.T, url string) (int, time.Duration) {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	start := time.Now()
	resp, err := client.Get(url + "/healthz")
	if err != nil {
		t.Fatalf("GET /healthz: %v", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, time.Since(start)
}

// TestIdleConnections opens three times the connection cap of idle
// connections (FLOWSENTRY_IDLE_CONNS sets another number, e.g. 19990 to
// measure) and checks that /healthz still answers at once: the idle ones
// give way, and the server never holds more than the cap.
func TestIdleConnections(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxConnections, cfg.MaxConnectionsPerClient = 64, 0
	// Long timeouts: the cap, not a timeout, must make the room.
	cfg.ReadHeaderTimeout, cfg.IdleTimeout = time.Minute, time.Minute
	s, reg := startServer(t, cfg, nil)
	n := 3 * cfg.MaxConnections
	if v := os.Getenv("FLOWSENTRY_IDLE_CONNS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			t.Fatalf("FLOWSENTRY_IDLE_CONNS=%q: %v", v, err)
		}
	}
	for range n {
		dialFrom(t, s, "127.0.0.1")
	}
	waitOpen(t, s, cfg.MaxConnections)
	code, took := getHealth(t, "http://"+s.Addr().String())
	if code != http.StatusOK || took > time.Second {
		t.Fatalf("GET /healthz with %d idle connections: %d in %v, want 200 within 1s", n, code, took)
	}
	t.Logf("GET /healthz with %d idle connections: %v", n, took)
	// The health check's own connection evicted one more.
	if got, want := testutil.ToFloat64(s.conns.evicted.WithLabelValues(reasonMax)), float64(n+1-cfg.MaxConnections); got != want {
		t.Errorf("evicted connections %v, want %v", got, want)
	}
	if got := testutil.ToFloat64(s.conns.refused.WithLabelValues(reasonMax)); got != 0 {
		t.Errorf("refused connections %v, want 0", got)
	}
	if _, err := reg.Gather(); err != nil {
		t.Errorf("gather: %v", err)
	}
}

// TestConnectionCaps checks who gives way at each cap: the client over
// its own cap displaces only its own idle connections, the oldest first;
// busy connections are never closed, and a new one is refused instead.
func TestConnectionCaps(t *testing.T) {
	t.Run("per client", func(t *testing.T) {
		cfg := DefaultConfig()
		cfg.MaxConnections, cfg.MaxConnectionsPerClient = 64, 16
		s, _ := startServer(t, cfg, nil)
		var a, b []net.Conn
		for range 16 {
			a = append(a, dialFrom(t, s, "127.0.0.1"))
		}
		waitOpen(t, s, 16)
		for range 40 {
			b = append(b, dialFrom(t, s, "127.0.0.2"))
			time.Sleep(time.Millisecond) // keep the order of arrival
		}
		waitOpen(t, s, 32)
		for i, c := range a {
			if closedByServer(c, 20*time.Millisecond) {
				t.Errorf("connection %d of 127.0.0.1 closed by 127.0.0.2 going over its cap", i)
			}
		}
		for i, c := range b {
			if closed, want := closedByServer(c, 20*time.Millisecond), i < 24; closed != want {
				t.Errorf("connection %d of 127.0.0.2: closed %v, want %v (the oldest give way)", i, closed, want)
			}
		}
		if got := testutil.ToFloat64(s.conns.evicted.WithLabelValues(reasonPerClient)); got != 24 {
			t.Errorf("evicted at the per-client cap: %v, want 24", got)
		}
	})
	t.Run("busy connections stay", func(t *testing.T) {
		release := make(chan struct{})
		cfg := DefaultConfig()
		cfg.MaxConnections, cfg.MaxConnectionsPerClient = 16, 0
		s, _ := startServer(t, cfg, func() *rates.Snapshot {
			<-release
			return &rates.Snapshot{}
		})
		url := "http://" + s.Addr().String()
		done := make(chan int, cfg.MaxConnections)
		for range cfg.MaxConnections {
			go func() {
				req, _ := http.NewRequest("GET", url+"/api/v1/exporters", nil)
				req.SetBasicAuth("root", "pw")
				resp, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}).Do(req)
				if err != nil {
					done <- 0
					return
				}
				resp.Body.Close()
				done <- resp.StatusCode
			}()
		}
		waitOpen(t, s, cfg.MaxConnections)
		// Wait until every request is in its handler.
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			s.conns.mu.Lock()
			idle := s.conns.idle.Len()
			s.conns.mu.Unlock()
			if idle == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d connections still idle", idle)
			}
		}
		c := dialFrom(t, s, "127.0.0.1")
		if !closedByServer(c, 2*time.Second) {
			t.Error("a new connection was kept while every connection was busy")
		}
		if got := testutil.ToFloat64(s.conns.refused.WithLabelValues(reasonMax)); got != 1 {
			t.Errorf("refused connections %v, want 1", got)
		}
		close(release)
		for range cfg.MaxConnections {
			if code := <-done; code != http.StatusOK {
				t.Errorf("a busy request got %d, want 200", code)
			}
		}
		if code, _ := getHealth(t, url); code != http.StatusOK {
			t.Errorf("GET /healthz after the requests: %d", code)
		}
	})
}

// TestSlowHeaders checks that a client trickling its headers is cut at
// http.read_header_timeout.
func TestSlowHeaders(t *testing.T) {
	cfg := DefaultConfig()
	cfg.ReadHeaderTimeout = 300 * time.Millisecond
	s, _ := startServer(t, cfg, nil)
	// The server's timeout runs from its accept, which follows the
	// dial's start: measured from there, the cut comes no sooner.
	start := time.Now()
	c := dialFrom(t, s, "127.0.0.1")
	if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n"); err != nil {
		t.Fatal(err)
	}
	closed := make(chan time.Duration, 1)
	go func() {
		_, _ = c.Read(make([]byte, 1)) // EOF when the server gives up
		closed <- time.Since(start)
	}()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case took := <-closed:
			if took < cfg.ReadHeaderTimeout || took > 2*time.Second {
				t.Errorf("slow headers cut after %v, want about %v", took, cfg.ReadHeaderTimeout)
			}
			waitOpen(t, s, 0)
			return
		case <-tick.C:
			if _, err := io.WriteString(c, "X-Slow: a\r\n"); err != nil {
				return // cut while writing
			}
		case <-time.After(5 * time.Second):
			t.Fatal("a slow header trickle was not cut within 5s")
		}
	}
}

// TestNofileLimit checks what Start's comment relies on: Go raised the
// soft RLIMIT_NOFILE to the hard limit.
func TestNofileLimit(t *testing.T) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Cur != lim.Max {
		t.Errorf("RLIMIT_NOFILE soft %d, hard %d: Go no longer raises it, so Start must", lim.Cur, lim.Max)
	}
}
