package policy

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
)

// Params are the parameters a detector family owns: the keys of a policy
// beyond the common ones (id, name, cid, family, target, object_type,
// severity, tgrp, exporter_addr, ifindex, override, actions). A family's
// Params is a pointer to a struct whose json and yaml tags name its keys;
// the keys sit flat beside the common ones in the configuration file, the
// API and the stored documents.
type Params interface {
	// Validate checks the parameters of p, which holds them, after the
	// common fields passed. Errors are check.Errorf values at the keys.
	Validate(p *Policy) error
}

// Normalizer is implemented by Params that convert user units when a
// policy is read (bits to bytes, say); Normalize is idempotent.
type Normalizer interface {
	Normalize()
}

// Spec is what the policies need to know of a detector family. A family
// registers it through detect.Register, together with its stage.
type Spec struct {
	// Name is the value of a policy's family key.
	Name Family
	// Objects are the object types (OBJECT_TYPE) its policies may watch.
	Objects []string
	// NewParams returns the family's parameters with their defaults.
	NewParams func() Params
	// Defaults are the templates a partition gets on first start when it
	// has no template of the family; nil for none.
	Defaults func(cid uint32) []Policy
}

var (
	familiesMu sync.RWMutex
	families   = map[Family]Spec{}
)

// RegisterFamily adds a family. It panics on a duplicate name and on
// parameters that would not read back what they write: a key that clashes
// with a common key, a field whose json and yaml keys differ (the API and
// the configuration file speak the same keys), or a key that may be left
// out (omitempty) with a default other than its zero value (decoding starts
// from the defaults, so the key left out would read back as the default).
// All are programming errors caught by every test run.
func RegisterFamily(s Spec) {
	familiesMu.Lock()
	defer familiesMu.Unlock()
	if _, dup := families[s.Name]; dup {
		panic(fmt.Sprintf("policy: detector family %q registered twice", s.Name))
	}
	checkParams(s)
	families[s.Name] = s
}

// checkParams panics when the parameters of s break a rule of
// RegisterFamily.
func checkParams(s Spec) {
	if s.NewParams == nil {
		panic(fmt.Sprintf("policy: family %q has no NewParams", s.Name))
	}
	ps := s.NewParams()
	v := reflect.ValueOf(ps)
	if ps == nil || v.Kind() != reflect.Pointer || v.Type().Elem().Kind() != reflect.Struct {
		panic(fmt.Sprintf("policy: family %q NewParams returns %T, not a pointer to a struct", s.Name, ps))
	}
	if v.IsNil() {
		panic(fmt.Sprintf("policy: family %q NewParams returns a nil %T", s.Name, ps))
	}
	t := v.Elem().Type()
	for _, tag := range []string{"json", "yaml"} {
		common := tagKeys(reflect.TypeFor[plain](), tag)
		for _, k := range tagKeys(t, tag) {
			if slices.Contains(common, k) {
				panic(fmt.Sprintf("policy: family %q parameter %q clashes with a common key", s.Name, k))
			}
		}
	}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		jk, jopts := tagKey(f, "json")
		yk, yopts := tagKey(f, "yaml")
		if jk != yk {
			panic(fmt.Sprintf("policy: family %q parameter field %s has json key %q but yaml key %q; give both tags the same name", s.Name, f.Name, jk, yk))
		}
		leftOut := slices.Contains(jopts, "omitempty") || slices.Contains(jopts, "omitzero") || slices.Contains(yopts, "omitempty")
		if leftOut && jk != "-" && !v.Elem().Field(i).IsZero() {
			panic(fmt.Sprintf("policy: family %q parameter %q defaults to %#v: a key that may be left out must default to its zero value (drop omitempty, or the default)", s.Name, jk, v.Elem().Field(i).Interface()))
		}
	}
}

// Lookup returns the registered family named name.
func Lookup(name Family) (Spec, bool) {
	familiesMu.RLock()
	defer familiesMu.RUnlock()
	s, ok := families[name]
	return s, ok
}

// Families returns every registered family, by name.
func Families() []Spec {
	familiesMu.RLock()
	defer familiesMu.RUnlock()
	out := make([]Spec, 0, len(families))
	for _, s := range families {
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b Spec) int { return strings.Compare(string(a.Name), string(b.Name)) })
	return out
}

// familyNames lists the registered names for error messages.
func familyNames() string {
	var names []string
	for _, s := range Families() {
		names = append(names, string(s.Name))
	}
	return strings.Join(names, ", ")
}

// jsonKeys lists the json keys of struct type t.
func jsonKeys(t reflect.Type) []string { return tagKeys(t, "json") }

// tagKeys lists the keys of struct type t in the encoding whose struct tag
// is tag (json or yaml).
func tagKeys(t reflect.Type, tag string) []string {
	var keys []string
	for i := range t.NumField() {
		f := t.Field(i)
		if name, _ := tagKey(f, tag); f.IsExported() && name != "-" {
			keys = append(keys, name)
		}
	}
	return keys
}

// tagKey returns the key of field f in the encoding whose struct tag is
// tag (json or yaml), with the tag's options; "-" when the field is left
// out. Without a name in the tag, json uses the field's name and yaml its
// name in lower case.
func tagKey(f reflect.StructField, tag string) (string, []string) {
	name, opts, _ := strings.Cut(f.Tag.Get(tag), ",")
	if name == "" {
		name = f.Name
		if tag == "yaml" {
			name = strings.ToLower(f.Name)
		}
	}
	return name, strings.Split(opts, ",")
}
