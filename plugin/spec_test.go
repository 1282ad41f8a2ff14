package plugin

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// guiJSON returns a valid gui.json with the given configurationFields and
// extra top-level members (each starting with a comma).
func guiJSON(fields, extra string) string {
	return `{"label": "Test", "buildDate": 1466615162000, "version": 3, "executable": "run.sh",
"supportedAlertTypes": ["*"], "configurationFields": [` + fields + `]` + extra + `}`
}

// errorLines splits a joined error into its lines; nil for nil.
func errorLines(err error) []string {
	if err == nil {
		return nil
	}
	return strings.Split(err.Error(), "\n")
}

func TestRepair(t *testing.T) {
	cases := []struct {
		name string
		in   string
		// want is the repaired text: a missing comma goes right before
		// the value it separates.
		want     string
		warnings []Warning
	}{
		{name: "strict JSON is unchanged", in: `{"a": [1, {"b": "x,}]"}], "c": true}`, want: `{"a": [1, {"b": "x,}]"}], "c": true}`},
		{name: "escaped quote in a string", in: `{"a": "say \"hi\", }", "b": 1}`, want: `{"a": "say \"hi\", }", "b": 1}`},
		{
			name:     "missing comma between objects in an array",
			in:       "[{\"a\": 1}\n {\"b\": 2}]",
			want:     "[{\"a\": 1}\n ,{\"b\": 2}]",
			warnings: []Warning{{Line: 2, Column: 2, Msg: "missing ',' between '}' and '{'; assumed one"}},
		},
		{
			name:     "missing comma between strings in an array",
			in:       `["a" "b"]`,
			want:     `["a" ,"b"]`,
			warnings: []Warning{{Line: 1, Column: 6, Msg: `missing ',' between a string and '"'; assumed one`}},
		},
		{
			name:     "missing comma between numbers in an array",
			in:       `[1 -2]`,
			want:     `[1 ,-2]`,
			warnings: []Warning{{Line: 1, Column: 4, Msg: "missing ',' between a value and a value; assumed one"}},
		},
		{
			name:     "missing comma between members of an object",
			in:       `{"a": [1] "b": {}}`,
			want:     `{"a": [1] ,"b": {}}`,
			warnings: []Warning{{Line: 1, Column: 11, Msg: `missing ',' between ']' and '"'; assumed one`}},
		},
		{
			name:     "trailing comma in an object",
			in:       `{"a": 1, }`,
			want:     `{"a": 1 }`,
			warnings: []Warning{{Line: 1, Column: 8, Msg: "trailing ',' before '}'; ignored"}},
		},
		{
			name:     "trailing comma in an array",
			in:       "[1,\n]",
			want:     "[1\n]",
			warnings: []Warning{{Line: 1, Column: 3, Msg: "trailing ',' before ']'; ignored"}},
		},
		{
			name: "both, nested",
			in:   `{"x": [{"a": 1,} {"b": 2}],}`,
			want: `{"x": [{"a": 1} ,{"b": 2}]}`,
			warnings: []Warning{
				{Line: 1, Column: 15, Msg: "trailing ',' before '}'; ignored"},
				{Line: 1, Column: 18, Msg: "missing ',' between '}' and '{'; assumed one"},
				{Line: 1, Column: 27, Msg: "trailing ',' before '}'; ignored"},
			},
		},
		{name: "a missing colon is left to the decoder", in: `{"a" 1,}`, want: `{"a" 1,}`},
		{name: "a value where a key belongs is left alone", in: `{"a": 1 2}`, want: `{"a": 1 2}`},
		{name: "an unterminated string is left alone", in: `["a" "b`, want: `["a" ,"b`, warnings: []Warning{{Line: 1, Column: 6, Msg: `missing ',' between a string and '"'; assumed one`}}},
		{name: "two top-level values are left alone", in: `{} {}`, want: `{} {}`},
		{name: "empty", in: ``, want: ``},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, warnings := Repair([]byte(c.in))
			if diff := cmp.Diff(string(got), c.want); diff != "" {
				t.Errorf("text (-got +want):\n%s", diff)
			}
			if diff := cmp.Diff(warnings, c.warnings); diff != "" {
				t.Errorf("warnings (-got +want):\n%s", diff)
			}
		})
	}
}

// TestManualExample loads the manual's gui.json example, as printed (a
// missing comma, a trailing comma), with its containers and update_fields.
func TestManualExample(t *testing.T) {
	data, err := os.ReadFile("../examples/email/gui.json")
	if err != nil {
		t.Fatal(err)
	}
	spec, warnings, err := ParseSpec("email", data)
	if err != nil {
		t.Fatalf("the manual's example does not load: %v", err)
	}
	wantWarnings := []Warning{
		{Line: 30, Column: 5, Msg: "missing ',' between '}' and '{'; assumed one"},
		{Line: 47, Column: 208, Msg: "trailing ',' before '}'; ignored"},
	}
	if diff := cmp.Diff(warnings, wantWarnings); diff != "" {
		t.Errorf("warnings (-got +want):\n%s", diff)
	}
	// The places named are where the manual's mistakes are.
	lines := strings.Split(string(data), "\n")
	if got := strings.TrimSpace(lines[28]); got != "}" {
		t.Errorf("line 29 is %q, want the object the comma is missing after", got)
	}
	if got := lines[46][207:]; !strings.HasPrefix(got, ", }") {
		t.Errorf("line 47, column 208 is %q, want the trailing comma", got)
	}
	i := func(n int64) *int64 { return &n }
	s := func(v string) *string { return &v }
	want := Spec{
		Label:               "Send Email",
		BuildDate:           1466615162000,
		Version:             11,
		Description:         []string{"Send an email to a selected recipient.", "Sends an email on alert CREATE and DESTROY."},
		URL:                 "http://www.flowtraq.com",
		Author:              "FlowTraq, Inc",
		Mailto:              "support@flowtraq.com",
		Executable:          "plugin.sh",
		SupportedAlertTypes: []string{"*"},
		ConfigurationFields: []Field{
			{Label: "Username", Key: "EMAIL_USERNAME", Spec: FieldSpec{Type: TypeText, MinLength: i(2), MaxLength: i(64)}},
			{Label: "Password", Key: "EMAIL_PASSWORD", Spec: FieldSpec{Type: TypePassword, MinLength: i(2), MaxLength: i(64)}},
			{Label: "Mailport", Key: "EMAIL_MAILPORT", Spec: FieldSpec{Type: TypeInt, Min: i(0), Max: i(65000), Default: s("587")}},
			{Label: "Message Body", Key: "EMAIL_BODY", HelpText: "Text to include at the top this email", AllowOverride: true,
				Spec: FieldSpec{Type: TypeText, MinLength: i(0), MaxLength: i(1024)}},
			{Label: "Message Footer", Key: "EMAIL_FOOTER", HelpText: "Text to include at the bottom of this email (cannot be overridden)",
				Spec: FieldSpec{Type: TypeText, MinLength: i(0), MaxLength: i(1024)}},
		},
		Containers: []string{"Volume (Bytes)", "Volume (Packets)", "Volume (Sessions)", "Anomalies"},
		UpdateFields: []UpdateField{
			{Label: "UDP Egress Packets", Key: "udp_egress_packets", Container: "Volume (Packets)", Record: "always"},
			{Label: "TCP Total Dropped", Key: "tcp_total_drop", Container: "Volume (Packets)"},
			{Label: "IPv4 Bytes Received", Key: "ip_rcv", Container: "Volume (Bytes)"},
		},
	}
	if diff := cmp.Diff(spec, want); diff != "" {
		t.Errorf("spec (-got +want):\n%s", diff)
	}
}

func TestParseSpec(t *testing.T) {
	cases := []struct {
		name string
		in   string
		// errs are the lines of the error, nil for none.
		errs     []string
		warnings int
	}{
		{name: "minimal", in: guiJSON(``, ``)},
		{name: "description as a string", in: guiJSON(``, `, "description": "one line"`)},
		{name: "numbers as strings and exponents", in: `{"label": "T", "buildDate": 1.466615162e12, "version": "11", "executable": "run.sh",
			"supportedAlertTypes": ["threshold_exceeded"], "configurationFields": [
			{"label": "Port", "key": "PORT", "fieldspec": {"type": "int", "min": "1", "max": 65535.0, "value": 80}},
			{"label": "Flag", "key": "FLAG", "allowOverride": true, "fieldspec": {"type": "boolean", "value": true}}]}`},
		{name: "unknown members are ignored", in: guiJSON(`{"label": "A", "key": "A", "colour": "red", "fieldspec": {"type": "text", "placeholder": "x"}}`, `, "homepage": "x"`)},
		{
			name: "required keys missing",
			in:   `{"description": ["x"]}`,
			errs: []string{
				`plugin "t": label: is required; give the name shown on the plugins page`,
				`plugin "t": executable: is required; give the program's file name in the plugin folder, e.g. "plugin.sh"`,
				`plugin "t": buildDate: is required; give the build time in milliseconds since the UNIX epoch`,
				`plugin "t": version: is required; give the plugin's integer version`,
				`plugin "t": supportedAlertTypes: is required; give the alert types the plugin handles, or ["*"] for all`,
				`plugin "t": configurationFields: is required (it may be an empty array)`,
			},
		},
		{
			name: "bad top-level values",
			in: `{"label": "", "buildDate": 1.5, "version": "eleven", "executable": "../bin/x", "description": 3,
				"supportedAlertTypes": [], "configurationFields": []}`,
			errs: []string{
				`plugin "t": label: is empty; give the name shown on the plugins page`,
				`plugin "t": executable: "../bin/x" is not inside the plugin folder; give a file name relative to it, e.g. "plugin.sh"`,
				`plugin "t": buildDate: 1.5 is not an integer; give the build time in milliseconds since the UNIX epoch`,
				`plugin "t": version: "eleven" is not an integer; give the plugin's integer version`,
				`plugin "t": description: must be a string or an array of strings`,
				`plugin "t": supportedAlertTypes: is empty; give the alert types the plugin handles, or ["*"] for all`,
			},
		},
		{
			name: "empty alert type",
			in:   strings.Replace(guiJSON(``, ``), `["*"]`, `["ddos_flood", ""]`, 1),
			errs: []string{`plugin "t": supportedAlertTypes[1]: is empty; give an alert type such as "threshold_exceeded", or "*"`},
		},
		{
			name: "field keys",
			in: guiJSON(`{"label": "A", "fieldspec": {"type": "text"}},
				{"label": "B", "key": "1ABC", "fieldspec": {"type": "text"}},
				{"label": "C", "key": "MY-KEY", "fieldspec": {"type": "text"}},
				{"label": "D", "key": "DUP", "fieldspec": {"type": "text"}},
				{"label": "E", "key": "DUP", "fieldspec": {"type": "text"}},
				{"label": "F", "key": "PATH", "fieldspec": {"type": "text"}},
				{"key": "G", "fieldspec": {"type": "text"}},
				{"label": "H", "key": "H"}`, ``),
			errs: []string{
				`plugin "t": configurationFields[0]: key is required; give the name of the environment variable the plugin reads`,
				`plugin "t": configurationFields[1]: key "1ABC" is not a valid environment variable name; use letters, digits and '_', not starting with a digit`,
				`plugin "t": configurationFields[2]: key "MY-KEY" is not a valid environment variable name; use letters, digits and '_', not starting with a digit`,
				`plugin "t": configurationFields[4] "DUP": key is also used by configurationFields[3]; keys must be unique`,
				`plugin "t": configurationFields[5] "PATH": key is a variable the server sets on every call; choose another name`,
				`plugin "t": configurationFields[6] "G": label: is required; give the name shown on the configuration form`,
				`plugin "t": configurationFields[7] "H": fieldspec is required; give at least {"type": "text"}`,
			},
		},
		{
			name: "field types",
			in: guiJSON(`{"label": "A", "key": "A", "fieldspec": {}},
				{"label": "B", "key": "B", "fieldspec": {"type": "float"}}`, ``),
			errs: []string{
				`plugin "t": configurationFields[0] "A": fieldspec.type is required: int, text, boolean or password`,
				`plugin "t": configurationFields[1] "B": fieldspec.type "float" is not one of int, text, boolean, password`,
			},
		},
		{
			name: "bounds",
			in: guiJSON(`{"label": "Mailport", "key": "EMAIL_MAILPORT", "fieldspec": {"type": "int", "min": 10, "max": 5}},
				{"label": "B", "key": "B", "fieldspec": {"type": "text", "minlength": 10, "maxlength": 5}},
				{"label": "C", "key": "C", "fieldspec": {"type": "password", "minlength": -1, "maxlength": "x"}},
				{"label": "D", "key": "D", "fieldspec": {"type": "int", "min": 1.5, "maxlength": 3}},
				{"label": "E", "key": "E", "fieldspec": {"type": "text", "max": 3}},
				{"label": "F", "key": "F", "fieldspec": {"type": "boolean", "min": 0, "minlength": 1}}`, ``),
			errs: []string{
				`plugin "t": configurationFields[0] "EMAIL_MAILPORT": fieldspec.min 10 is greater than max 5`,
				`plugin "t": configurationFields[1] "B": fieldspec.minlength 10 is greater than maxlength 5`,
				`plugin "t": configurationFields[2] "C": fieldspec.maxlength "x" is not an integer`,
				`plugin "t": configurationFields[2] "C": fieldspec.minlength -1 is negative`,
				`plugin "t": configurationFields[3] "D": fieldspec.min 1.5 is not an integer`,
				`plugin "t": configurationFields[3] "D": fieldspec.maxlength applies to text and password fields only, not int; remove it`,
				`plugin "t": configurationFields[4] "E": fieldspec.max applies to int fields only, not text; remove it`,
				`plugin "t": configurationFields[5] "F": fieldspec.min applies to int fields only, not boolean; remove it`,
				`plugin "t": configurationFields[5] "F": fieldspec.minlength applies to text and password fields only, not boolean; remove it`,
			},
		},
		{
			name: "defaults",
			in: guiJSON(`{"label": "A", "key": "A", "fieldspec": {"type": "text", "required": true, "value": "x"}},
				{"label": "Port", "key": "PORT", "fieldspec": {"type": "int", "max": 65000, "value": "70000"}},
				{"label": "C", "key": "C", "fieldspec": {"type": "int", "value": "seven"}},
				{"label": "D", "key": "D", "fieldspec": {"type": "text", "minlength": 2, "value": "x"}},
				{"label": "E", "key": "E", "fieldspec": {"type": "password", "maxlength": 3, "value": "secret"}},
				{"label": "F", "key": "F", "fieldspec": {"type": "boolean", "value": "yes"}},
				{"label": "G", "key": "G", "fieldspec": {"type": "text", "value": ["x"]}}`, ``),
			errs: []string{
				`plugin "t": configurationFields[0] "A": fieldspec.value (a default) is not allowed on a required field; remove it or set required to false`,
				`plugin "t": configurationFields[1] "PORT": fieldspec.value "70000" is greater than the maximum 65000`,
				`plugin "t": configurationFields[2] "C": fieldspec.value "seven" is not an integer`,
				`plugin "t": configurationFields[3] "D": fieldspec.value "x" is 1 character long, shorter than the minimum length 2`,
				`plugin "t": configurationFields[4] "E": fieldspec.value is 6 characters long, longer than the maximum length 3`,
				`plugin "t": configurationFields[5] "F": fieldspec.value "yes" is not a boolean; use true or false`,
				`plugin "t": configurationFields[6] "G": fieldspec.value must be a string, a number or true/false`,
			},
		},
		{
			name: "containers and update_fields",
			in: guiJSON(``, `, "containers": ["Volume", "", "Volume"], "update_fields": [
				{"label": "A", "key": "a", "container": "Volume", "record": "always", "unit": "pps"},
				{"label": "B", "key": "a", "container": "Volume"},
				{"key": "c", "container": "Anomalies"},
				{"label": 4, "container": ""}]`),
			errs: []string{
				`plugin "t": containers[1]: is empty; give the title of a graph, e.g. "Volume (Packets)"`,
				`plugin "t": containers[2]: "Volume" is listed twice`,
				`plugin "t": update_fields[1] "a": key is also used by update_fields[0]; keys must be unique`,
				`plugin "t": update_fields[2] "c": label is required; give the name of the graphed value`,
				`plugin "t": update_fields[2] "c": container "Anomalies" is not listed in containers ["Volume" "" "Volume"]; add it there or use one of them`,
				`plugin "t": update_fields[3]: key is required; give the annotation key the plugin stores with ftnbi -val`,
				`plugin "t": update_fields[3]: label must be a string`,
				`plugin "t": update_fields[3]: label is required; give the name of the graphed value`,
				`plugin "t": update_fields[3]: container is required; give one of containers`,
			},
		},
		{
			name: "syntax error placed in the original text",
			in:   "{\"label\": \"T\",\n \"version\": 1,}\n\"x\"",
			// The trailing comma is repaired, the second value is not.
			errs:     []string{`plugin "t": gui.json: line 3, column 1: invalid character '"' after top-level value`},
			warnings: 1,
		},
		{
			name: "wrong type",
			in:   "{\"label\": \"T\",\n \"supportedAlertTypes\": \"*\"}",
			errs: []string{`plugin "t": gui.json: line 2, column 27: supportedAlertTypes is a string, want an array`},
		},
		{
			name: "not an object",
			in:   `["label"]`,
			errs: []string{`plugin "t": gui.json: line 1, column 1: the top level is an array, want an object`},
		},
		{
			name: "empty file",
			in:   ``,
			errs: []string{`plugin "t": gui.json: line 1, column 1: unexpected end of JSON input`},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, warnings, err := ParseSpec("t", []byte(c.in))
			if diff := cmp.Diff(errorLines(err), c.errs); diff != "" {
				t.Errorf("errors (-got +want):\n%s", diff)
			}
			if len(warnings) != c.warnings {
				t.Errorf("warnings: got %v, want %d", warnings, c.warnings)
			}
		})
	}
}

func TestUpdateFieldJSON(t *testing.T) {
	spec, _, err := ParseSpec("t", []byte(guiJSON(``, `, "containers": ["V"], "update_fields": [
		{"label": "A", "key": "a", "container": "V", "record": "always", "unit": "pps", "scale": 2}]`)))
	if err != nil {
		t.Fatal(err)
	}
	got, err := json.Marshal(spec.UpdateFields)
	if err != nil {
		t.Fatal(err)
	}
	want := `[{"container":"V","key":"a","label":"A","record":"always","scale":2,"unit":"pps"}]`
	if diff := cmp.Diff(string(got), want); diff != "" {
		t.Errorf("JSON (-got +want):\n%s", diff)
	}
}

// FuzzParseSpec checks that any input parses without panicking, that
// valid JSON is never repaired, and that warnings point inside the input.
func FuzzParseSpec(f *testing.F) {
	for _, path := range []string{"../examples/email/gui.json", "testdata/plugins/ok/gui.json", "testdata/plugins/badspec/gui.json"} {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`[{"a": 1,} {"b": [1 2,]}]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		repaired, warnings := Repair(data)
		if json.Valid(data) && (len(warnings) > 0 || string(repaired) != string(data)) {
			t.Fatalf("valid JSON was repaired: %q -> %q, %v", data, repaired, warnings)
		}
		lines := strings.Count(string(data), "\n") + 1
		for _, w := range warnings {
			if w.Line < 1 || w.Line > lines || w.Column < 1 || w.Column > len(data)+1 {
				t.Fatalf("warning %v outside the input of %d lines", w, lines)
			}
		}
		if delta := len(repaired) - len(data); delta > len(warnings) || -delta > len(warnings) {
			t.Fatalf("%d repairs changed the length by %d", len(warnings), delta)
		}
		spec, _, err := ParseSpec("fuzz", data)
		if err == nil && (spec.Label == "" || spec.Executable == "" || len(spec.SupportedAlertTypes) == 0) {
			t.Fatalf("accepted a spec without its required keys: %+v", spec)
		}
	})
}
