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
	cases := []struct {
		name  string
		cfg   Config
		paths []string // of the errors, in order
	}{
		{name: "default", cfg: DefaultConfig()},
		{name: "holding disabled needs no age", cfg: Config{}},
		{name: "negative pending datagrams", cfg: Config{PendingDatagrams: -1}, paths: []string{"pending_datagrams"}},
		{
			name:  "too many pending datagrams",
			cfg:   Config{PendingDatagrams: maxPendingDatagrams + 1, PendingAge: time.Second},
			paths: []string{"pending_datagrams"},
		},
		{name: "holding without an age", cfg: Config{PendingDatagrams: 10}, paths: []string{"pending_age"}},
		{
			name:  "every error is reported",
			cfg:   Config{PendingDatagrams: 10, PendingAge: -time.Second, TemplateMaxAge: -time.Minute},
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
	in := "pending_datagrams: 10\npending_age: 30s\ntemplate_max_age: 1h\n"
	if err := yaml.Unmarshal([]byte(in), &cfg); err != nil {
		t.Fatal(err)
	}
	want := Config{PendingDatagrams: 10, PendingAge: 30 * time.Second, TemplateMaxAge: time.Hour}
	if diff := cmp.Diff(cfg, want); diff != "" {
		t.Errorf("(-got +want):\n%s", diff)
	}
}
