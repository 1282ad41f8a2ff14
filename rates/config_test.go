package rates

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/flowsentry/flowsentry/config/check"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"go.yaml.in/yaml/v3"
)

// TestValidate checks which fields Validate reports, by key path.
func TestValidate(t *testing.T) {
	cases := []struct {
		name   string
		change func(*Config)
		want   []string
	}{
		{"default is valid", func(*Config) {}, nil},
		{"zero window", func(c *Config) { c.Window = 0 }, []string{"window"}},
		{"fractional window", func(c *Config) { c.Window = 1500 * time.Millisecond }, []string{"window"}},
		{"window too long", func(c *Config) { c.Window = 61 * time.Second; c.IdleTimeout = time.Hour }, []string{"window"}},
		{"longest window", func(c *Config) { c.Window = time.Minute }, nil},
		{"idle shorter than window", func(c *Config) { c.IdleTimeout = 5 * time.Second }, []string{"idle_timeout"}},
		{"exporter shorter than idle", func(c *Config) { c.ExporterTimeout = time.Minute }, []string{"exporter_timeout"}},
		{"zero caps keep nothing", func(c *Config) {
			c.MaxHosts, c.MaxGroupPorts, c.MaxInterfaces, c.MaxInterfacePorts, c.MaxExporters = 0, 0, 0, 0, 0
		}, nil},
		{"negative caps", func(c *Config) { c.MaxHosts, c.MaxExporters = -1, -2 }, []string{"max_hosts", "max_exporters"}},
		{"precision too low", func(c *Config) { c.HLLPrecision = 3 }, []string{"hll_precision"}},
		{"precision too high", func(c *Config) { c.HLLPrecision = 17 }, []string{"hll_precision"}},
		{"zero config", func(c *Config) { *c = Config{} }, []string{"window", "hll_precision"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tc.change(&cfg)
			var got []string
			if err := cfg.Validate(); err != nil {
				for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
					var ce *check.Error
					if !errors.As(e, &ce) {
						t.Fatalf("%v is not a *check.Error", e)
					}
					got = append(got, ce.Path)
				}
			}
			if diff := cmp.Diff(got, tc.want); diff != "" {
				t.Errorf("paths (-got +want):\n%s", diff)
			}
		})
	}
}

// TestNewErrors checks that New names the bad key under "rates" and
// reports a metrics registration conflict.
func TestNewErrors(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Window = 0
	if _, err := New(cfg, nil); err == nil || !strings.HasPrefix(err.Error(), "rates.window: ") {
		t.Errorf("New with window 0: %v, want an error at rates.window", err)
	}
	reg := prometheus.NewRegistry()
	if _, err := New(DefaultConfig(), reg); err != nil {
		t.Fatal(err)
	}
	if _, err := New(DefaultConfig(), reg); err == nil || !strings.Contains(err.Error(), "register metrics") {
		t.Errorf("second New on one registry: %v, want a registration error", err)
	}
}

// TestConfigYAML checks the snake_case keys and duration syntax.
func TestConfigYAML(t *testing.T) {
	cfg := DefaultConfig()
	in := "window: 5s\nidle_timeout: 2m\nexporter_timeout: 30m\nmax_hosts: 1000\nmax_group_ports: 2000\nmax_interfaces: 10\nmax_interface_ports: 20\nmax_exporters: 3\nhll_precision: 10\n"
	if err := yaml.Unmarshal([]byte(in), &cfg); err != nil {
		t.Fatal(err)
	}
	want := Config{
		Window: 5 * time.Second, IdleTimeout: 2 * time.Minute, ExporterTimeout: 30 * time.Minute,
		MaxHosts: 1000, MaxGroupPorts: 2000, MaxInterfaces: 10, MaxInterfacePorts: 20, MaxExporters: 3,
		HLLPrecision: 10,
	}
	if diff := cmp.Diff(cfg, want); diff != "" {
		t.Errorf("(-got +want):\n%s", diff)
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
}
