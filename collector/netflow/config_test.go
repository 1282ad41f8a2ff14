package netflow

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"

	"github.com/flowsentry/flowsentry/config/check"
)

func TestConfigValidate(t *testing.T) {
	with := func(change func(*Config)) Config {
		c := DefaultConfig()
		change(&c)
		return c
	}
	cases := []struct {
		name  string
		cfg   Config
		paths []string // of the errors, in order
	}{
		{name: "default", cfg: DefaultConfig()},
		{name: "holding disabled needs no age", cfg: with(func(c *Config) { c.PendingDatagrams, c.PendingAge = 0, 0 })},
		{name: "negative pending datagrams", cfg: with(func(c *Config) { c.PendingDatagrams = -1 }), paths: []string{"pending_datagrams"}},
		{
			name:  "too many pending datagrams",
			cfg:   with(func(c *Config) { c.PendingDatagrams = maxPendingDatagrams + 1 }),
			paths: []string{"pending_datagrams"},
		},
		{name: "holding without an age", cfg: with(func(c *Config) { c.PendingAge = 0 }), paths: []string{"pending_age"}},
		{name: "one template per exporter", cfg: with(func(c *Config) { c.MaxTemplatesPerExporter, c.MaxTemplates = 1, 1 })},
		{
			name: "zero template limits take the defaults",
			cfg:  with(func(c *Config) { c.MaxTemplatesPerExporter, c.MaxTemplates = 0, 0 }),
		},
		{
			name:  "negative template limits",
			cfg:   with(func(c *Config) { c.MaxTemplatesPerExporter, c.MaxTemplates = -1, -1 }),
			paths: []string{"max_templates", "max_templates_per_exporter"},
		},
		{
			name:  "too many templates",
			cfg:   with(func(c *Config) { c.MaxTemplates = maxTemplates + 1 }),
			paths: []string{"max_templates"},
		},
		{
			name:  "more templates per exporter than in all",
			cfg:   with(func(c *Config) { c.MaxTemplatesPerExporter, c.MaxTemplates = 200, 100 }),
			paths: []string{"max_templates_per_exporter"},
		},
		{
			name:  "every error is reported",
			cfg:   with(func(c *Config) { c.PendingAge, c.TemplateMaxAge = -time.Second, -time.Minute }),
			paths: []string{"pending_age", "template_max_age"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			var paths []string
			if err != nil {
				for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
					var ce *check.Error
					if !errors.As(e, &ce) {
						t.Fatalf("%v is a %T, want a *check.Error", e, e)
					}
					paths = append(paths, ce.Path)
				}
			}
			if diff := cmp.Diff(paths, tc.paths); diff != "" {
				t.Errorf("error paths (-got +want):\n%s\nerror: %v", diff, err)
			}
		})
	}
}

func TestConfigYAML(t *testing.T) {
	cfg := DefaultConfig()
	in := "pending_datagrams: 10\npending_age: 30s\ntemplate_max_age: 1h\nmax_templates_per_exporter: 500\nmax_templates: 2000\n"
	if err := yaml.Unmarshal([]byte(in), &cfg); err != nil {
		t.Fatal(err)
	}
	want := Config{PendingDatagrams: 10, PendingAge: 30 * time.Second, TemplateMaxAge: time.Hour,
		MaxTemplatesPerExporter: 500, MaxTemplates: 2000}
	if diff := cmp.Diff(cfg, want); diff != "" {
		t.Errorf("(-got +want):\n%s", diff)
	}
}
