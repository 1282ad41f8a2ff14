package plugin

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Instance is a configured plugin: the values of its configuration fields,
// bound to one partition. Policies attach instances as actions.
type Instance struct {
	ID     uint64            `json:"id" yaml:"id"`
	CID    uint32            `json:"cid" yaml:"cid"`
	Plugin string            `json:"plugin" yaml:"plugin"` // folder name under plugin_dir
	Name   string            `json:"name" yaml:"name"`
	Values map[string]string `json:"values" yaml:"values"` // configuration key -> value, validated against the fieldspec
	// Source is where the instance comes from: SourceConfig (the
	// configuration file: read-only in the API) or SourceAPI. Instances
	// set it; a value in a request or a file is ignored.
	Source string `json:"source" yaml:"-"`
}

// The sources of an instance.
const (
	SourceConfig = "config"
	SourceAPI    = "api"
)

// InstanceStore persists plugin instances.
type InstanceStore interface {
	// SaveInstance inserts (ID 0: the store assigns the ID and sets it in
	// in) or replaces an instance.
	SaveInstance(ctx context.Context, in *Instance) error
	// DeleteInstance removes an instance.
	DeleteInstance(ctx context.Context, id uint64) error
	// Instances returns every instance.
	Instances(ctx context.Context) ([]Instance, error)
}

// check returns what is wrong with v as a value of this field ("" when
// nothing is), without repeating v, so that passwords are not echoed.
func (fs *FieldSpec) check(v string) string {
	switch fs.Type {
	case TypeInt:
		n, err := strconv.ParseInt(v, 10, 64)
		switch {
		case err != nil:
			return "is not an integer"
		case fs.Min != nil && n < *fs.Min:
			return fmt.Sprintf("is less than the minimum %d", *fs.Min)
		case fs.Max != nil && n > *fs.Max:
			return fmt.Sprintf("is greater than the maximum %d", *fs.Max)
		}
	case TypeText, TypePassword:
		n := int64(utf8.RuneCountInString(v))
		switch {
		case strings.IndexByte(v, 0) >= 0:
			return "contains a NUL character, which an environment variable cannot hold"
		case fs.MinLength != nil && n < *fs.MinLength:
			return fmt.Sprintf("is %s long, shorter than the minimum length %d", characters(n), *fs.MinLength)
		case fs.MaxLength != nil && n > *fs.MaxLength:
			return fmt.Sprintf("is %s long, longer than the maximum length %d", characters(n), *fs.MaxLength)
		}
	case TypeBoolean:
		if v != "true" && v != "false" {
			return "is not a boolean; use true or false"
		}
	}
	return ""
}

func characters(n int64) string {
	if n == 1 {
		return "1 character"
	}
	return fmt.Sprintf("%d characters", n)
}

// describe names a value in messages: quoted, except for passwords.
func (fs *FieldSpec) describe(v string) string {
	if fs.Type == TypePassword {
		return "value"
	}
	return fmt.Sprintf("value %q", v)
}

// where names a configuration field in value messages.
func (f *Field) where() string {
	return fmt.Sprintf("%s (%q)", f.Key, f.Label)
}

// usable returns an error when the plugin cannot be configured or called.
func (p *Plugin) usable() error {
	if p.Err != nil {
		return fmt.Errorf("plugin %q cannot be used until its problems are fixed: %w", p.Name, p.Err)
	}
	return nil
}

// ValidateValues checks the values of an instance against the fieldspecs:
// every key must be a configuration key, required fields must have a
// value, ints must lie within min and max, texts and passwords within the
// lengths, booleans be "true" or "false". An empty value counts as not
// given. It returns the values with the defaults of the fields not given
// applied, and an error joining one *Error per problem, naming the field
// and the rule (password values are never repeated).
func (p *Plugin) ValidateValues(values map[string]string) (map[string]string, error) {
	if err := p.usable(); err != nil {
		return nil, err
	}
	errs := p.unknownKeys(values)
	out := make(map[string]string, len(p.Spec.ConfigurationFields))
	for i := range p.Spec.ConfigurationFields {
		f := &p.Spec.ConfigurationFields[i]
		v := values[f.Key]
		switch {
		case v == "" && f.Spec.Required:
			errs = append(errs, &Error{Plugin: p.Name, Key: f.Key, Field: f.where(), Rule: "is required; give a value"})
		case v == "" && f.Spec.Default != nil:
			out[f.Key] = *f.Spec.Default
		case v == "":
		default:
			if problem := f.Spec.check(v); problem != "" {
				errs = append(errs, &Error{Plugin: p.Name, Key: f.Key, Field: f.where(), Rule: f.Spec.describe(v) + " " + problem})
				continue
			}
			out[f.Key] = v
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// ValidateOverrides checks the values a policy sets for the instance it
// attaches: only fields with allowOverride may be set, and each value must
// satisfy the field's rules. An empty value means no override and is left
// out of the result. The caller applies the result over the instance's
// values.
func (p *Plugin) ValidateOverrides(overrides map[string]string) (map[string]string, error) {
	if err := p.usable(); err != nil {
		return nil, err
	}
	errs := p.unknownKeys(overrides)
	out := make(map[string]string, len(overrides))
	for _, key := range slices.Sorted(maps.Keys(overrides)) {
		f, ok := p.Spec.Field(key)
		v := overrides[key]
		switch {
		case !ok || v == "":
		case !f.AllowOverride:
			errs = append(errs, &Error{Plugin: p.Name, Key: f.Key, Field: f.where(), Rule: "cannot be overridden by a policy (allowOverride is false); set it on the plugin instance"})
		default:
			if problem := f.Spec.check(v); problem != "" {
				errs = append(errs, &Error{Plugin: p.Name, Key: f.Key, Field: f.where(), Rule: "override " + f.Spec.describe(v) + " " + problem})
				continue
			}
			out[key] = v
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// unknownKeys reports the keys that are not configuration keys, in order.
func (p *Plugin) unknownKeys(values map[string]string) []error {
	var errs []error
	for _, key := range slices.Sorted(maps.Keys(values)) {
		if _, ok := p.Spec.Field(key); !ok {
			errs = append(errs, &Error{Plugin: p.Name, Key: key, Field: strconv.Quote(key),
				Rule: "is not a configuration key of this plugin; its keys are " + p.Spec.keys()})
		}
	}
	return errs
}

// Supports reports whether the plugin may be attached to alerts of the
// given type (supportedAlertTypes lists it, or "*").
func (p *Plugin) Supports(alertType string) bool {
	return slices.Contains(p.Spec.SupportedAlertTypes, "*") || slices.Contains(p.Spec.SupportedAlertTypes, alertType)
}
