package api

import (
	"net"

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
	if _, _, err := net.SplitHostPort(c.Address); err != nil {
		return check.Errorf("address", "%q is not a host:port (%v); use e.g. \"127.0.0.1:8080\" or \":8080\"", c.Address, err)
	}
	return nil
}
