package api

import (
	"errors"
	"net"
	"strconv"
	"time"

	"github.com/flowsentry/flowsentry/config/check"
)

// Config configures the HTTP server (UI, API and /metrics).
type Config struct {
	// Address is the host:port the HTTP server listens on; port 0 picks a
	// free port.
	Address string `yaml:"address"`
	// TLSCert and TLSKey are PEM files of the server's certificate (its
	// chain after it) and private key. Both set: the server speaks HTTPS
	// only, and SIGHUP reads them again. Both empty: plain HTTP.
	TLSCert string `yaml:"tls_cert"`
	TLSKey  string `yaml:"tls_key"`
	// MaxConnections caps the open client connections. At the cap a new
	// connection closes the one idle longest (waiting for its next
	// request, or for its first) to take its place, and is refused only
	// when every connection is busy with a request. At least 16.
	MaxConnections int `yaml:"max_connections"`
	// MaxConnectionsPerClient caps the connections of one client address
	// the same way, so that one client only ever displaces its own. 0 sets
	// no such cap (behind a reverse proxy every client has its address);
	// otherwise from 1 to MaxConnections.
	MaxConnectionsPerClient int `yaml:"max_connections_per_client"`
	// ReadHeaderTimeout is how long a client has to send a request's
	// headers, from the connection's start or the first byte of a later
	// request: it cuts slow header trickles. Positive.
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	// IdleTimeout is how long a kept-alive connection may wait for its next
	// request before it is closed. Positive.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
}

// DefaultConfig listens on 127.0.0.1:8080 over plain HTTP, with at most
// 1024 connections, 256 a client, 5 seconds to send headers and 30 seconds
// of keep-alive.
func DefaultConfig() Config {
	return Config{
		Address:                 "127.0.0.1:8080",
		MaxConnections:          1024,
		MaxConnectionsPerClient: 256,
		ReadHeaderTimeout:       5 * time.Second,
		IdleTimeout:             30 * time.Second,
	}
}

// minConnections is the least MaxConnections: room for a browser's few
// parallel connections and the monitoring that polls /healthz.
const minConnections = 16

// Validate checks every field; the errors are *check.Error values, joined.
// It reads no file: New loads the certificate.
func (c Config) Validate() error {
	var errs []error
	if _, port, err := net.SplitHostPort(c.Address); err != nil {
		errs = append(errs, check.Errorf("address", "%q is not a host:port (%v); use e.g. \"127.0.0.1:8080\" or \":8080\"", c.Address, err))
	} else if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		errs = append(errs, check.Errorf("address", "%q has port %q; use a number from 0 to 65535, e.g. \"127.0.0.1:8080\"", c.Address, port))
	}
	switch cert, key := c.TLSCert != "", c.TLSKey != ""; {
	case cert && !key:
		errs = append(errs, check.Errorf("tls_key", "is empty while tls_cert is set; give the PEM file of the certificate's private key, or empty both for plain HTTP"))
	case key && !cert:
		errs = append(errs, check.Errorf("tls_cert", "is empty while tls_key is set; give the PEM file of the certificate, or empty both for plain HTTP"))
	}
	if c.MaxConnections < minConnections {
		errs = append(errs, check.Errorf("max_connections", "is %d; give at least %d, e.g. 1024 (each connection holds a file descriptor)", c.MaxConnections, minConnections))
	}
	if c.MaxConnectionsPerClient < 0 || c.MaxConnectionsPerClient > max(c.MaxConnections, minConnections) {
		errs = append(errs, check.Errorf("max_connections_per_client", "is %d; give 0 for no cap per client address or a number from 1 to max_connections (%d), e.g. 256", c.MaxConnectionsPerClient, c.MaxConnections))
	}
	for _, d := range []struct {
		key string
		v   time.Duration
		eg  string
	}{{"read_header_timeout", c.ReadHeaderTimeout, "5s"}, {"idle_timeout", c.IdleTimeout, "30s"}} {
		if d.v <= 0 {
			errs = append(errs, check.Errorf(d.key, "is %v; give a positive duration, e.g. %s", d.v, d.eg))
		}
	}
	return errors.Join(errs...)
}

// TLS reports whether the server speaks HTTPS.
func (c Config) TLS() bool { return c.TLSCert != "" }
