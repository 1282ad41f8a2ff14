package config

import (
	"bytes"
	"strings"
	"testing"

	"github.com/flowsentry/flowsentry/plugin"
)

// TestRedact checks that a dump of a redacted configuration holds no
// secret and that the configuration itself is left as it was.
func TestRedact(t *testing.T) {
	cfg := Default()
	cfg.Admin.Password = "admin-s3cret"
	cfg.Instances = []plugin.Instance{
		{ID: 1, Plugin: "email", Name: "ops", Values: map[string]string{"EMAIL_PASSWORD": "mail-s3cret", "EMAIL_USERNAME": "ops", "EMAIL_TOKEN": ""}},
		{ID: 2, Plugin: "webhook", Name: "hook", Values: map[string]string{"URL": "https://example.net/hook"}},
	}
	secret := func(pl, key string) bool { return pl == "email" && (key == "EMAIL_PASSWORD" || key == "EMAIL_TOKEN") }
	var buf bytes.Buffer
	if err := Dump(&buf, Redact(cfg, secret)); err != nil {
		t.Fatal(err)
	}
	dump := buf.String()
	for _, tc := range []struct {
		text string
		want bool
	}{
		{"admin-s3cret", false},
		{"mail-s3cret", false},
		{"password: <redacted>", true},
		{"EMAIL_PASSWORD: <redacted>", true},
		{`EMAIL_TOKEN: ""`, true}, // unset stays visible as unset
		{"EMAIL_USERNAME: ops", true},
		{"URL: https://example.net/hook", true},
	} {
		if got := strings.Contains(dump, tc.text); got != tc.want {
			t.Errorf("dump holds %q: %v, want %v\n%s", tc.text, got, tc.want, dump)
		}
	}
	if cfg.Admin.Password != "admin-s3cret" || cfg.Instances[0].Values["EMAIL_PASSWORD"] != "mail-s3cret" {
		t.Errorf("Redact changed its argument: %+v", cfg)
	}
}
