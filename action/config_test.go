package action

import (
	"strings"
	"testing"
)

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  []string
		want string // "" for valid
	}{
		{"none", nil, ""},
		{"names", []string{"HTTPS_PROXY", "MAIL_RELAY", "_X1"}, ""},
		{"bad name", []string{"HTTPS-PROXY"}, `env[0]: "HTTPS-PROXY" is not an environment variable name`},
		{"leading digit", []string{"OK", "1X"}, `env[1]: "1X" is not`},
		{"twice", []string{"TZ2", "TZ2"}, "env[1]: TZ2 is listed twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Config{Env: tc.env}.Validate()
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("Validate: %v, want %q", err, tc.want)
			}
		})
	}
}
