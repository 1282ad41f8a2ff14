package rates

// Config configures the rate engine.
type Config struct{}

// DefaultConfig returns the default rate engine configuration.
func DefaultConfig() Config { return Config{} }
