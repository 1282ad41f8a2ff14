package plugin

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// FieldType is the type of a configuration field's value.
type FieldType string

// The field types of the fieldspec.
const (
	TypeInt      FieldType = "int"
	TypeText     FieldType = "text"
	TypeBoolean  FieldType = "boolean"
	TypePassword FieldType = "password"
)

// Spec is a plugin's gui.json, parsed and validated. Its JSON form uses the
// gui.json names, so the API can hand it to the Plugins page; defaults are
// written as strings.
type Spec struct {
	// Label is the name shown on the plugins page.
	Label string `json:"label"`
	// BuildDate is in milliseconds since the UNIX epoch.
	BuildDate int64 `json:"buildDate"`
	// Version is the plugin's integer version.
	Version int64 `json:"version"`
	// Description holds the description's lines (gui.json may give one
	// string or an array).
	Description []string `json:"description,omitempty"`
	URL         string   `json:"url,omitempty"`
	Author      string   `json:"author,omitempty"`
	Mailto      string   `json:"mailto,omitempty"`
	// Executable is the program's path relative to the plugin folder.
	Executable string `json:"executable"`
	// SupportedAlertTypes lists alert types, or holds "*" for all.
	SupportedAlertTypes []string `json:"supportedAlertTypes"`
	// ConfigurationFields are the values an instance of the plugin sets,
	// passed to the plugin as environment variables named by their keys.
	ConfigurationFields []Field `json:"configurationFields"`
	// Containers and UpdateFields say how to graph the annotations.
	Containers   []string      `json:"containers,omitempty"`
	UpdateFields []UpdateField `json:"update_fields,omitempty"`
}

// Field is one entry of configurationFields.
type Field struct {
	Label string `json:"label"`
	// Key is the name of the environment variable passed to the plugin.
	Key      string `json:"key"`
	HelpText string `json:"helptext,omitempty"`
	// AllowOverride says whether a policy may set its own value.
	AllowOverride bool      `json:"allowOverride"`
	Spec          FieldSpec `json:"fieldspec"`
}

// FieldSpec is the rule a configuration value must satisfy.
type FieldSpec struct {
	Type FieldType `json:"type"`
	// Min and Max bound int values; nil means no bound.
	Min *int64 `json:"min,omitempty"`
	Max *int64 `json:"max,omitempty"`
	// MinLength and MaxLength bound the length in characters of text and
	// password values; nil means no bound.
	MinLength *int64 `json:"minlength,omitempty"`
	MaxLength *int64 `json:"maxlength,omitempty"`
	// Required fields must be given a value; they have no default.
	Required bool `json:"required"`
	// Default is the value used when none is given (gui.json "value").
	Default *string `json:"value,omitempty"`
}

// UpdateField is one entry of update_fields: an annotation key and the
// container it is graphed in. Members other than label, key, container
// and record are kept in Extra and written back by MarshalJSON.
type UpdateField struct {
	Label     string
	Key       string
	Container string
	// Record is "always" when the plugin reports the key even when 0.
	Record string
	Extra  map[string]json.RawMessage
}

// MarshalJSON writes the field as gui.json has it, Extra members included.
func (u UpdateField) MarshalJSON() ([]byte, error) {
	m := make(map[string]any, len(u.Extra)+4)
	for k, v := range u.Extra {
		m[k] = v
	}
	m["label"], m["key"], m["container"] = u.Label, u.Key, u.Container
	if u.Record != "" {
		m["record"] = u.Record
	}
	return json.Marshal(m)
}

// Error is a problem with a plugin: its gui.json, its executable, or
// values given for its configuration.
type Error struct {
	// Plugin is the plugin's folder name.
	Plugin string
	// Field locates the problem, e.g. `configurationFields[2] "EMAIL_MAILPORT"`;
	// empty when it concerns the whole plugin.
	Field string
	// Key is the configuration key of an instance value or a policy
	// override the problem concerns; empty for problems of gui.json.
	Key string
	// Rule says which rule is broken and how to fix it.
	Rule string
}

// Error formats the problem as `plugin "NAME": FIELD: RULE`.
func (e *Error) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("plugin %q: %s", e.Plugin, e.Rule)
	}
	return fmt.Sprintf("plugin %q: %s: %s", e.Plugin, e.Field, e.Rule)
}

// envName is what a configuration key must look like to be an environment
// variable a shell script can read.
var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// reserved are variables the server sets on every call; a configuration
// key of the same name would be shadowed.
var reserved = map[string]bool{
	"ID": true, "AID": true, "TKN": true, "CID": true, "CID_NAME": true, "SEVERITY": true,
	"ALERT_TYPE": true, "EARLIEST_UTC": true, "LATEST_UTC": true, "PATH": true, "FLOWSENTRY_URL": true,
}

// The gui.json as written, before validation: pointers tell absent keys.
type rawSpec struct {
	Label               *string                      `json:"label"`
	BuildDate           json.RawMessage              `json:"buildDate"`
	Version             json.RawMessage              `json:"version"`
	Description         json.RawMessage              `json:"description"`
	URL                 string                       `json:"url"`
	Author              string                       `json:"author"`
	Mailto              string                       `json:"mailto"`
	Executable          *string                      `json:"executable"`
	SupportedAlertTypes *[]string                    `json:"supportedAlertTypes"`
	ConfigurationFields *[]rawField                  `json:"configurationFields"`
	Containers          []string                     `json:"containers"`
	UpdateFields        []map[string]json.RawMessage `json:"update_fields"`
}

type rawField struct {
	Label         *string       `json:"label"`
	Key           *string       `json:"key"`
	HelpText      string        `json:"helptext"`
	AllowOverride bool          `json:"allowOverride"`
	FieldSpec     *rawFieldSpec `json:"fieldspec"`
}

type rawFieldSpec struct {
	Type      *string         `json:"type"`
	Min       json.RawMessage `json:"min"`
	Max       json.RawMessage `json:"max"`
	MinLength json.RawMessage `json:"minlength"`
	MaxLength json.RawMessage `json:"maxlength"`
	Required  bool            `json:"required"`
	Value     json.RawMessage `json:"value"`
}

// ParseSpec parses and validates the gui.json of the plugin named name.
// It repairs the manual's mistakes (see Repair) and reports each repair as
// a warning. The error joins one *Error per problem; the Spec holds what
// could be read even when there are problems.
func ParseSpec(name string, data []byte) (Spec, []Warning, error) {
	rep := repairJSON(data)
	var raw rawSpec
	if err := json.Unmarshal(rep.out, &raw); err != nil {
		return Spec{}, rep.warnings, &Error{Plugin: name, Field: "gui.json", Rule: decodeProblem(data, &rep, err)}
	}
	v := validator{plugin: name}
	spec := v.spec(&raw)
	return spec, rep.warnings, errors.Join(v.errs...)
}

// decodeProblem describes a JSON error with its place in the original text.
func decodeProblem(data []byte, rep *repair, err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		line, col := position(data, rep.original(int(syn.Offset)-1))
		return fmt.Sprintf("line %d, column %d: %s", line, col, strings.TrimPrefix(syn.Error(), "json: "))
	case errors.As(err, &typ):
		line, col := position(data, rep.original(int(typ.Offset)-1))
		field := typ.Field
		if field == "" {
			field = "the top level"
		}
		return fmt.Sprintf("line %d, column %d: %s is %s, want %s", line, col, field, article(typ.Value), kind(typ.Type))
	}
	return err.Error()
}

func article(v string) string {
	switch v {
	case "array", "object":
		return "an " + v
	case "bool":
		return "true or false"
	}
	return "a " + v
}

func kind(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t.Kind() == reflect.String:
		return "a string"
	case t.Kind() == reflect.Bool:
		return "true or false"
	case t.Kind() == reflect.Slice:
		return "an array"
	}
	return "an object"
}

// validator collects the problems of one gui.json.
type validator struct {
	plugin string
	errs   []error
}

func (v *validator) fail(field, format string, args ...any) {
	v.errs = append(v.errs, &Error{Plugin: v.plugin, Field: field, Rule: fmt.Sprintf(format, args...)})
}

func (v *validator) spec(raw *rawSpec) Spec {
	s := Spec{URL: raw.URL, Author: raw.Author, Mailto: raw.Mailto, Containers: raw.Containers}
	s.Label = v.text("label", raw.Label, "the name shown on the plugins page")
	s.Executable = v.text("executable", raw.Executable, `the program's file name in the plugin folder, e.g. "plugin.sh"`)
	if s.Executable != "" && !filepath.IsLocal(s.Executable) {
		v.fail("executable", "%q is not inside the plugin folder; give a file name relative to it, e.g. \"plugin.sh\"", s.Executable)
	}
	if n, ok := v.integer("buildDate", raw.BuildDate, "the build time in milliseconds since the UNIX epoch"); ok {
		s.BuildDate = n
	}
	if n, ok := v.integer("version", raw.Version, "the plugin's integer version"); ok {
		s.Version = n
	}
	s.Description = v.description(raw.Description)
	switch {
	case raw.SupportedAlertTypes == nil:
		v.fail("supportedAlertTypes", `is required; give the alert types the plugin handles, or ["*"] for all`)
	case len(*raw.SupportedAlertTypes) == 0:
		v.fail("supportedAlertTypes", `is empty; give the alert types the plugin handles, or ["*"] for all`)
	default:
		for i, t := range *raw.SupportedAlertTypes {
			if t == "" {
				v.fail(fmt.Sprintf("supportedAlertTypes[%d]", i), "is empty; give an alert type such as \"threshold_exceeded\", or \"*\"")
			}
		}
		s.SupportedAlertTypes = *raw.SupportedAlertTypes
	}
	if raw.ConfigurationFields == nil {
		v.fail("configurationFields", "is required (it may be an empty array)")
	} else {
		s.ConfigurationFields = v.fields(*raw.ConfigurationFields)
	}
	v.containers(raw.Containers)
	s.UpdateFields = v.updateFields(raw.UpdateFields, raw.Containers)
	return s
}

// text checks a required non-empty string.
func (v *validator) text(field string, p *string, what string) string {
	switch {
	case p == nil:
		v.fail(field, "is required; give %s", what)
		return ""
	case *p == "":
		v.fail(field, "is empty; give %s", what)
	}
	return *p
}

// absent reports a key that is missing or null.
func absent(raw json.RawMessage) bool {
	return len(raw) == 0 || string(raw) == "null"
}

// integer checks a required integer.
func (v *validator) integer(field string, raw json.RawMessage, what string) (int64, bool) {
	if absent(raw) {
		v.fail(field, "is required; give %s", what)
		return 0, false
	}
	n, ok := toInt(raw)
	if !ok {
		v.fail(field, "%s is not an integer; give %s", raw, what)
	}
	return n, ok
}

// toInt accepts an integer, also written with a zero fraction or an
// exponent (1.466615162e12), or as a string holding one.
func toInt(raw json.RawMessage) (int64, bool) {
	text := string(raw)
	var s string
	if json.Unmarshal(raw, &s) == nil {
		text = s
	}
	if i, err := strconv.ParseInt(text, 10, 64); err == nil {
		return i, true
	}
	f, err := strconv.ParseFloat(text, 64)
	if err != nil || f != math.Trunc(f) || math.Abs(f) >= 1<<63 {
		return 0, false
	}
	return int64(f), true
}

func (v *validator) description(raw json.RawMessage) []string {
	if absent(raw) {
		return nil
	}
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return []string{one}
	}
	var list []string
	if json.Unmarshal(raw, &list) == nil {
		return list
	}
	v.fail("description", "must be a string or an array of strings")
	return nil
}

func (v *validator) fields(raws []rawField) []Field {
	out := make([]Field, 0, len(raws))
	where := map[string]int{}
	for i, rf := range raws {
		loc := fmt.Sprintf("configurationFields[%d]", i)
		f := Field{HelpText: rf.HelpText, AllowOverride: rf.AllowOverride}
		switch {
		case rf.Key == nil:
			v.fail(loc, "key is required; give the name of the environment variable the plugin reads")
		case !envName.MatchString(*rf.Key):
			v.fail(loc, "key %q is not a valid environment variable name; use letters, digits and '_', not starting with a digit", *rf.Key)
		default:
			f.Key = *rf.Key
			loc += fmt.Sprintf(" %q", f.Key)
			if j, dup := where[f.Key]; dup {
				v.fail(loc, "key is also used by configurationFields[%d]; keys must be unique", j)
			} else if reserved[f.Key] {
				v.fail(loc, "key is a variable the server sets on every call; choose another name")
			}
			where[f.Key] = i
		}
		f.Label = v.text(loc+": label", rf.Label, "the name shown on the configuration form")
		if rf.FieldSpec == nil {
			v.fail(loc, "fieldspec is required; give at least {\"type\": \"text\"}")
		} else {
			f.Spec = v.fieldSpec(loc, rf.FieldSpec)
		}
		out = append(out, f)
	}
	return out
}

func (v *validator) fieldSpec(loc string, raw *rawFieldSpec) FieldSpec {
	fs := FieldSpec{Required: raw.Required}
	if raw.Type == nil {
		v.fail(loc, "fieldspec.type is required: int, text, boolean or password")
		return fs
	}
	fs.Type = FieldType(*raw.Type)
	switch fs.Type {
	case TypeInt, TypeText, TypeBoolean, TypePassword:
	default:
		v.fail(loc, "fieldspec.type %q is not one of int, text, boolean, password", *raw.Type)
		return fs
	}
	bound := func(name string, raw json.RawMessage, applies bool, appliesTo string) *int64 {
		if absent(raw) {
			return nil
		}
		if !applies {
			v.fail(loc, "fieldspec.%s applies to %s fields only, not %s; remove it", name, appliesTo, fs.Type)
			return nil
		}
		n, ok := toInt(raw)
		if !ok {
			v.fail(loc, "fieldspec.%s %s is not an integer", name, raw)
			return nil
		}
		return &n
	}
	isInt := fs.Type == TypeInt
	isText := fs.Type == TypeText || fs.Type == TypePassword
	fs.Min = bound("min", raw.Min, isInt, "int")
	fs.Max = bound("max", raw.Max, isInt, "int")
	fs.MinLength = bound("minlength", raw.MinLength, isText, "text and password")
	fs.MaxLength = bound("maxlength", raw.MaxLength, isText, "text and password")
	if fs.Min != nil && fs.Max != nil && *fs.Min > *fs.Max {
		v.fail(loc, "fieldspec.min %d is greater than max %d", *fs.Min, *fs.Max)
	}
	for _, l := range []struct {
		name string
		p    *int64
	}{{"minlength", fs.MinLength}, {"maxlength", fs.MaxLength}} {
		if l.p != nil && *l.p < 0 {
			v.fail(loc, "fieldspec.%s %d is negative", l.name, *l.p)
		}
	}
	if fs.MinLength != nil && fs.MaxLength != nil && *fs.MinLength > *fs.MaxLength {
		v.fail(loc, "fieldspec.minlength %d is greater than maxlength %d", *fs.MinLength, *fs.MaxLength)
	}
	if absent(raw.Value) {
		return fs
	}
	def, ok := scalar(raw.Value)
	switch {
	case !ok:
		v.fail(loc, "fieldspec.value must be a string, a number or true/false")
	case fs.Required:
		v.fail(loc, "fieldspec.value (a default) is not allowed on a required field; remove it or set required to false")
	default:
		if problem := fs.check(def); problem != "" {
			v.fail(loc, "fieldspec.%s %s", fs.describe(def), problem)
		} else {
			fs.Default = &def
		}
	}
	return fs
}

// scalar returns a JSON string, number or boolean as the text of a value.
func scalar(raw json.RawMessage) (string, bool) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, true
	}
	var b bool
	if json.Unmarshal(raw, &b) == nil {
		return strconv.FormatBool(b), true
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return n.String(), true
	}
	return "", false
}

func (v *validator) containers(list []string) {
	seen := map[string]bool{}
	for i, c := range list {
		switch {
		case c == "":
			v.fail(fmt.Sprintf("containers[%d]", i), "is empty; give the title of a graph, e.g. \"Volume (Packets)\"")
		case seen[c]:
			v.fail(fmt.Sprintf("containers[%d]", i), "%q is listed twice", c)
		}
		seen[c] = true
	}
}

func (v *validator) updateFields(raws []map[string]json.RawMessage, containers []string) []UpdateField {
	out := make([]UpdateField, 0, len(raws))
	where := map[string]int{}
	for i, m := range raws {
		loc := fmt.Sprintf("update_fields[%d]", i)
		str := func(name string) string {
			raw, ok := m[name]
			var s string
			if ok && json.Unmarshal(raw, &s) != nil {
				v.fail(loc, "%s must be a string", name)
				return ""
			}
			return s
		}
		u := UpdateField{Key: str("key")}
		if u.Key == "" {
			v.fail(loc, "key is required; give the annotation key the plugin stores with ftnbi -val")
		} else {
			loc += fmt.Sprintf(" %q", u.Key)
			if j, dup := where[u.Key]; dup {
				v.fail(loc, "key is also used by update_fields[%d]; keys must be unique", j)
			}
			where[u.Key] = i
		}
		u.Label, u.Container, u.Record = str("label"), str("container"), str("record")
		if u.Label == "" {
			v.fail(loc, "label is required; give the name of the graphed value")
		}
		switch {
		case u.Container == "":
			v.fail(loc, "container is required; give one of containers")
		case !slices.Contains(containers, u.Container):
			v.fail(loc, "container %q is not listed in containers %q; add it there or use one of them", u.Container, containers)
		}
		for k, raw := range m {
			switch k {
			case "label", "key", "container", "record":
			default:
				if u.Extra == nil {
					u.Extra = map[string]json.RawMessage{}
				}
				u.Extra[k] = raw
			}
		}
		out = append(out, u)
	}
	return out
}

// Field returns the configuration field with the given key.
func (s *Spec) Field(key string) (*Field, bool) {
	for i := range s.ConfigurationFields {
		if s.ConfigurationFields[i].Key == key {
			return &s.ConfigurationFields[i], true
		}
	}
	return nil, false
}

// keys lists the configuration keys, for messages.
func (s *Spec) keys() string {
	keys := make([]string, 0, len(s.ConfigurationFields))
	for _, f := range s.ConfigurationFields {
		keys = append(keys, f.Key)
	}
	if len(keys) == 0 {
		return "(none)"
	}
	return strings.Join(keys, ", ")
}
