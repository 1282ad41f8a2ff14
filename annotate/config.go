package annotate

import "github.com/flowsentry/flowsentry/config/check"

// Config configures the Annotator. The limits and the 300-second window
// are the manual's and are not configurable.
type Config struct {
	// MaxRequestBytes is the largest body of an annotation request, in
	// bytes; larger ones are refused with 413.
	MaxRequestBytes int64 `yaml:"max_request_bytes"`
	// CachedAlerts is how many alerts' annotation counts are kept in
	// memory; the least recently annotated beyond it are dropped and
	// counted again from the database when next annotated.
	CachedAlerts int `yaml:"cached_alerts"`
}

// DefaultConfig accepts requests up to 1 MiB and keeps the counts of 4096
// alerts.
func DefaultConfig() Config {
	return Config{MaxRequestBytes: 1 << 20, CachedAlerts: 4096}
}

// Validate checks the sizes.
func (c Config) Validate() error {
	if c.MaxRequestBytes < 1024 {
		return check.Errorf("max_request_bytes", "%d is too small: use at least 1024 (default %d)", c.MaxRequestBytes, DefaultConfig().MaxRequestBytes)
	}
	if c.CachedAlerts < 1 {
		return check.Errorf("cached_alerts", "%d is too small: use at least 1 (default %d)", c.CachedAlerts, DefaultConfig().CachedAlerts)
	}
	return nil
}
