package replay

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/flowsentry/flowsentry/config/check"
)

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		name   string
		change func(*Config)
		want   []string // "path: message" of every problem
	}{
		{name: "default", change: func(*Config) {}},
		{name: "zero values take the defaults", change: func(c *Config) { *c = Config{} }},
		{
			name: "bad ports",
			change: func(c *Config) {
				c.NetFlowPorts = []uint16{2055, 0, 2055}
				c.SFlowPorts = []uint16{6343, 2055}
			},
			want: []string{
				"netflow_ports[1]: port 0 is not a UDP port: use 1-65535",
				"netflow_ports[2]: port 2055 is listed twice: remove one",
				"sflow_ports[1]: port 2055 is also in netflow_ports: a port carries one protocol, remove it from one list",
			},
		},
		{
			name: "negative durations and counts",
			change: func(c *Config) {
				c.ActiveTimeout = -time.Second
				c.InactiveTimeout = -time.Minute
				c.MaxFlows = 1 << 31
			},
			want: []string{
				"active_timeout: -1s is negative: use a duration such as 60s, or 0 for the default",
				"inactive_timeout: -1m0s is negative: use a duration such as 15s, or 0 for the default",
				"max_flows: 2147483648 is out of range: use 1 to 2147483647, or 0 for the default",
			},
		},
		{
			name:   "template settings are checked under templates",
			change: func(c *Config) { c.Templates.TemplateMaxAge = -time.Second },
			want: []string{
				"templates.template_max_age: -1s is negative; use 0 to keep templates until replaced, or a duration such as 30m",
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := DefaultConfig()
			c.change(&cfg)
			var got []string
			if err := cfg.Validate(); err != nil {
				for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
					var ce *check.Error
					if !errors.As(e, &ce) {
						t.Errorf("%v is a %T, want a *check.Error", e, e)
					}
					got = append(got, e.Error())
				}
			}
			if diff := cmp.Diff(got, c.want); diff != "" {
				t.Errorf("(-got +want):\n%s", diff)
			}
		})
	}
}
