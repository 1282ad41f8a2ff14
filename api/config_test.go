package api

import (
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string // "" for valid
	}{
		{"default", func(*Config) {}, ""},
		{"no per-client cap", func(c *Config) { c.MaxConnectionsPerClient = 0 }, ""},
		{"bad address", func(c *Config) { c.Address = "8080" }, `address: "8080" is not a host:port`},
		{"too few connections", func(c *Config) { c.MaxConnections = 8 }, "max_connections: is 8; give at least 16"},
		{"per client over the cap", func(c *Config) { c.MaxConnectionsPerClient = 2000 }, "max_connections_per_client: is 2000; give 0 for no cap"},
		{"negative per client", func(c *Config) { c.MaxConnectionsPerClient = -1 }, "max_connections_per_client: is -1"},
		{"no header timeout", func(c *Config) { c.ReadHeaderTimeout = 0 }, "read_header_timeout: is 0s; give a positive duration"},
		{"negative idle timeout", func(c *Config) { c.IdleTimeout = -time.Second }, "idle_timeout: is -1s"},
		{"cert without key", func(c *Config) { c.TLSCert = "cert.pem" }, "tls_key: is empty while tls_cert is set"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tc.edit(&cfg)
			err := cfg.Validate()
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("Validate: %v, want %q", err, tc.want)
			}
		})
	}
}
