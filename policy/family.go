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

// RegisterFamily adds a family. It panics on a duplicate name or on a
// parameter key that clashes with a common key: both are programming
// errors caught by every test run.
func RegisterFamily(s Spec) {
	familiesMu.Lock()
	defer familiesMu.Unlock()
	if _, dup := families[s.Name]; dup {
		panic(fmt.Sprintf("policy: detector family %q registered twice", s.Name))
	}
	common := jsonKeys(reflect.TypeFor[plain]())
	for _, k := range jsonKeys(reflect.TypeOf(s.NewParams()).Elem()) {
		if slices.Contains(common, k) {
			panic(fmt.Sprintf("policy: family %q parameter %q clashes with a common key", s.Name, k))
		}
	}
	families[s.Name] = s
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
func jsonKeys(t reflect.Type) []string {
	var keys []string
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if !f.IsExported() || name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		keys = append(keys, name)
	}
	return keys
}
