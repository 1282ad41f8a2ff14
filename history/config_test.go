package history

import (
	"strings"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		change  func(*Config)
		errPart string
	}{
		{"default", func(*Config) {}, ""},
		{"no series", func(c *Config) { c.MaxSeries = 0 }, "max_series: 0 is out of range"},
		{"too many series", func(c *Config) { c.MaxSeries = maxSeries + 1 }, "max_series"},
		{"short retention", func(c *Config) { c.Retention = time.Minute }, "retention: 1m0s is out of range"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.change(&c)
			err := c.Validate()
			if tc.errPart == "" && err != nil || tc.errPart != "" && (err == nil || !strings.Contains(err.Error(), tc.errPart)) {
				t.Errorf("Validate() = %v; want an error containing %q", err, tc.errPart)
			}
		})
	}
}

func TestStepFor(t *testing.T) {
	t0 := time.Date(2026, 3, 14, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		span time.Duration
		max  int
		want time.Duration
	}{
		{time.Hour, 1000, time.Minute},
		{24 * time.Hour, 1000, 5 * time.Minute},
		{7 * 24 * time.Hour, 1000, 15 * time.Minute},
		{7 * 24 * time.Hour, 10, 24 * time.Hour},
		{400 * 24 * time.Hour, 10, 24 * time.Hour},
	}
	for _, tc := range tests {
		if got := StepFor(t0, t0.Add(tc.span), tc.max); got != tc.want {
			t.Errorf("StepFor(%s, %d) = %s; want %s", tc.span, tc.max, got, tc.want)
		}
	}
}
