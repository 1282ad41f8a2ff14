package api

import (
	"net"
	"strconv"

	"github.com/flowsentry/flowsentry/config/check"
)

// Config configures the HTTP server (UI, API and /metrics).
type Config struct {
	// Address is the host:port the HTTP server listens on; port 0 picks a
	// free port.
	Address string `yaml:"address"`
}

// DefaultConfig listens on 127.0.0.1:8080.
func DefaultConfig() Config { return Config{Address: "127.0.0.1:8080"} }

// Validate checks the address.
func (c Config) Validate() error {
	_, port, err := net.SplitHostPort(c.Address)
	if err != nil {
		return check.Errorf("address", "%q is not a host:port (%v); use e.g. \"127.0.0.1:8080\" or \":8080\"", c.Address, err)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return check.Errorf("address", "%q has port %q; use a number from 0 to 65535, e.g. \"127.0.0.1:8080\"", c.Address, port)
	}
	return nil
}
