package plugin

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// mailPlugin is a valid plugin with a field of every type.
func mailPlugin(t *testing.T) *Plugin {
	t.Helper()
	spec, _, err := ParseSpec("email", []byte(guiJSON(`
		{"label": "Recipient", "key": "EMAIL_TO", "allowOverride": true, "fieldspec": {"type": "text", "minlength": 3, "maxlength": 8, "required": true}},
		{"label": "Password", "key": "EMAIL_PASSWORD", "fieldspec": {"type": "password", "minlength": 2, "maxlength": 4}},
		{"label": "Mailport", "key": "EMAIL_MAILPORT", "allowOverride": true, "fieldspec": {"type": "int", "value": "587", "min": 1, "max": 65000}},
		{"label": "TLS", "key": "EMAIL_TLS", "fieldspec": {"type": "boolean", "value": false}},
		{"label": "Footer", "key": "EMAIL_FOOTER", "fieldspec": {"type": "text"}}`, ``)))
	if err != nil {
		t.Fatal(err)
	}
	return &Plugin{Name: "email", Spec: spec}
}

func TestValidateValues(t *testing.T) {
	cases := []struct {
		name   string
		values map[string]string
		want   map[string]string
		errs   []string
	}{
		{
			name:   "defaults applied",
			values: map[string]string{"EMAIL_TO": "ops"},
			want:   map[string]string{"EMAIL_TO": "ops", "EMAIL_MAILPORT": "587", "EMAIL_TLS": "false"},
		},
		{
			name:   "every field given",
			values: map[string]string{"EMAIL_TO": "ops@x.io", "EMAIL_PASSWORD": "pw", "EMAIL_MAILPORT": "25", "EMAIL_TLS": "true", "EMAIL_FOOTER": "bye"},
			want:   map[string]string{"EMAIL_TO": "ops@x.io", "EMAIL_PASSWORD": "pw", "EMAIL_MAILPORT": "25", "EMAIL_TLS": "true", "EMAIL_FOOTER": "bye"},
		},
		{
			name:   "empty means not given",
			values: map[string]string{"EMAIL_TO": "ops", "EMAIL_MAILPORT": "", "EMAIL_FOOTER": ""},
			want:   map[string]string{"EMAIL_TO": "ops", "EMAIL_MAILPORT": "587", "EMAIL_TLS": "false"},
		},
		{
			name:   "lengths count characters, not bytes",
			values: map[string]string{"EMAIL_TO": "ééééééé"},
			want:   map[string]string{"EMAIL_TO": "ééééééé", "EMAIL_MAILPORT": "587", "EMAIL_TLS": "false"},
		},
		{
			name:   "required missing",
			values: map[string]string{},
			errs:   []string{`plugin "email": EMAIL_TO ("Recipient"): is required; give a value`},
		},
		{
			name:   "unknown keys",
			values: map[string]string{"EMAIL_TO": "ops", "EMAIL_CC": "x", "A": "y"},
			errs: []string{
				`plugin "email": "A": is not a configuration key of this plugin; its keys are EMAIL_TO, EMAIL_PASSWORD, EMAIL_MAILPORT, EMAIL_TLS, EMAIL_FOOTER`,
				`plugin "email": "EMAIL_CC": is not a configuration key of this plugin; its keys are EMAIL_TO, EMAIL_PASSWORD, EMAIL_MAILPORT, EMAIL_TLS, EMAIL_FOOTER`,
			},
		},
		{
			name:   "text too short, int too big, boolean wrong",
			values: map[string]string{"EMAIL_TO": "ab", "EMAIL_MAILPORT": "70000", "EMAIL_TLS": "yes"},
			errs: []string{
				`plugin "email": EMAIL_TO ("Recipient"): value "ab" is 2 characters long, shorter than the minimum length 3`,
				`plugin "email": EMAIL_MAILPORT ("Mailport"): value "70000" is greater than the maximum 65000`,
				`plugin "email": EMAIL_TLS ("TLS"): value "yes" is not a boolean; use true or false`,
			},
		},
		{
			name:   "text too long, int too small",
			values: map[string]string{"EMAIL_TO": "123456789", "EMAIL_MAILPORT": "0"},
			errs: []string{
				`plugin "email": EMAIL_TO ("Recipient"): value "123456789" is 9 characters long, longer than the maximum length 8`,
				`plugin "email": EMAIL_MAILPORT ("Mailport"): value "0" is less than the minimum 1`,
			},
		},
		{
			name:   "not an integer",
			values: map[string]string{"EMAIL_TO": "ops", "EMAIL_MAILPORT": "25.0"},
			errs:   []string{`plugin "email": EMAIL_MAILPORT ("Mailport"): value "25.0" is not an integer`},
		},
		{
			name:   "passwords are not echoed",
			values: map[string]string{"EMAIL_TO": "ops", "EMAIL_PASSWORD": "hunter2"},
			errs:   []string{`plugin "email": EMAIL_PASSWORD ("Password"): value is 7 characters long, longer than the maximum length 4`},
		},
		{
			name:   "NUL",
			values: map[string]string{"EMAIL_TO": "ops", "EMAIL_FOOTER": "a\x00b"},
			errs:   []string{`plugin "email": EMAIL_FOOTER ("Footer"): value "a\x00b" contains a NUL character, which an environment variable cannot hold`},
		},
	}
	p := mailPlugin(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := p.ValidateValues(c.values)
			if diff := cmp.Diff(got, c.want); diff != "" {
				t.Errorf("values (-got +want):\n%s", diff)
			}
			if diff := cmp.Diff(errorLines(err), c.errs); diff != "" {
				t.Errorf("errors (-got +want):\n%s", diff)
			}
		})
	}
}

func TestValidateOverrides(t *testing.T) {
	cases := []struct {
		name      string
		overrides map[string]string
		want      map[string]string
		errs      []string
	}{
		{name: "none", overrides: nil, want: map[string]string{}},
		{
			name:      "allowed fields",
			overrides: map[string]string{"EMAIL_TO": "noc", "EMAIL_MAILPORT": "2525"},
			want:      map[string]string{"EMAIL_TO": "noc", "EMAIL_MAILPORT": "2525"},
		},
		{name: "empty means no override", overrides: map[string]string{"EMAIL_TO": ""}, want: map[string]string{}},
		{
			name:      "not overridable",
			overrides: map[string]string{"EMAIL_PASSWORD": "pw", "EMAIL_TLS": "true"},
			errs: []string{
				`plugin "email": EMAIL_PASSWORD ("Password"): cannot be overridden by a policy (allowOverride is false); set it on the plugin instance`,
				`plugin "email": EMAIL_TLS ("TLS"): cannot be overridden by a policy (allowOverride is false); set it on the plugin instance`,
			},
		},
		{
			name:      "unknown and invalid",
			overrides: map[string]string{"X": "1", "EMAIL_MAILPORT": "-5"},
			errs: []string{
				`plugin "email": "X": is not a configuration key of this plugin; its keys are EMAIL_TO, EMAIL_PASSWORD, EMAIL_MAILPORT, EMAIL_TLS, EMAIL_FOOTER`,
				`plugin "email": EMAIL_MAILPORT ("Mailport"): override value "-5" is less than the minimum 1`,
			},
		},
	}
	p := mailPlugin(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := p.ValidateOverrides(c.overrides)
			if diff := cmp.Diff(got, c.want); diff != "" {
				t.Errorf("overrides (-got +want):\n%s", diff)
			}
			if diff := cmp.Diff(errorLines(err), c.errs); diff != "" {
				t.Errorf("errors (-got +want):\n%s", diff)
			}
		})
	}
}

func TestInvalidPluginValues(t *testing.T) {
	p := LoadDir("testdata/plugins/missing")
	for name, validate := range map[string]func(map[string]string) (map[string]string, error){
		"values": p.ValidateValues, "overrides": p.ValidateOverrides,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := validate(nil)
			if !errors.Is(err, p.Err) {
				t.Fatalf("got %v, want an error wrapping the plugin's own", err)
			}
			var pe *Error
			if !errors.As(err, &pe) || pe.Plugin != "missing" {
				t.Errorf("got %v, want the *Error of plugin \"missing\"", err)
			}
		})
	}
}

func TestSupports(t *testing.T) {
	spec, _, err := ParseSpec("t", []byte(`{"label": "T", "buildDate": 1, "version": 1, "executable": "x",
		"supportedAlertTypes": ["ddos_flood", "threshold_exceeded"], "configurationFields": []}`))
	if err != nil {
		t.Fatal(err)
	}
	some := &Plugin{Name: "t", Spec: spec}
	all := mailPlugin(t)
	for _, c := range []struct {
		p    *Plugin
		typ  string
		want bool
	}{
		{some, "ddos_flood", true}, {some, "threshold_exceeded", true}, {some, "exfil", false}, {all, "exfil", true},
	} {
		t.Run(c.p.Name+"/"+c.typ, func(t *testing.T) {
			if got := c.p.Supports(c.typ); got != c.want {
				t.Errorf("Supports(%q) = %v, want %v", c.typ, got, c.want)
			}
		})
	}
}
