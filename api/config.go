package api

// Config configures the HTTP server (UI, API and /metrics).
type Config struct {
	// Address is the host:port the HTTP server listens on.
	Address string `yaml:"address"`
}

// DefaultConfig listens on 127.0.0.1:8080.
func DefaultConfig() Config { return Config{Address: "127.0.0.1:8080"} }
