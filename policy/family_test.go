package policy_test

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/flowsentry/flowsentry/config/check"
	"github.com/flowsentry/flowsentry/policy"
)

// The families below exist only in this test binary. They show that a
// family is its own parameters type and one registration: nothing in the
// policy package knows them.
const (
	// fakeFamily has parameters, a Validate that looks at the policy, and
	// a Normalizer.
	fakeFamily policy.Family = "test_fake"
	// bareFamily has no parameter keys and no Normalizer.
	bareFamily policy.Family = "test_bare"
)

// fakeParams are the parameters of fakeFamily. Mode has a default other
// than its zero value, so it is always written; Ports and Tags may be left
// out, and show that Clone copies what the parameters point to.
type fakeParams struct {
	Limit int               `json:"limit" yaml:"limit"`
	Mode  string            `json:"mode" yaml:"mode"`
	Ports []int             `json:"ports,omitempty" yaml:"ports,omitempty"`
	Tags  map[string]string `json:"tags,omitempty" yaml:"tags,omitempty"`
}

// Validate rejects a limit not above 0, and mode per_host on objects other
// than hosts (to show it is handed the policy).
func (f *fakeParams) Validate(p *policy.Policy) error {
	if f.Limit <= 0 {
		return check.Errorf("limit", "%d is not above 0", f.Limit)
	}
	if f.Mode == "per_host" && p.Object != policy.ObjectHost {
		return check.Errorf("mode", "per_host needs object type %s, not %s", policy.ObjectHost, p.Object)
	}
	return nil
}

// Normalize lower-cases the mode.
func (f *fakeParams) Normalize() { f.Mode = strings.ToLower(f.Mode) }

// bareParams are the parameters of bareFamily: none.
type bareParams struct{}

func (*bareParams) Validate(*policy.Policy) error { return nil }

// fakeDefaults are what fakeFamily's NewParams returns; Mode is not in
// normal form, so that a test sees whether Normalize ran.
func fakeDefaults() *fakeParams { return &fakeParams{Limit: 10, Mode: "Auto"} }

func init() {
	// fakeFamily first: Families sorts by name, not by registration.
	policy.RegisterFamily(policy.Spec{
		Name:      fakeFamily,
		Objects:   []string{policy.ObjectGroup, policy.ObjectHost},
		NewParams: func() policy.Params { return fakeDefaults() },
	})
	policy.RegisterFamily(policy.Spec{
		Name:      bareFamily,
		Objects:   []string{policy.ObjectInterface},
		NewParams: func() policy.Params { return &bareParams{} },
	})
}

// equateAddr lets cmp compare policies, whose exporter is a netip.Addr.
var equateAddr = cmpopts.EquateComparable(netip.Addr{})

// commonKeys are the json keys of every policy, in the order UnmarshalJSON
// lists them.
const commonKeys = "id, name, cid, family, target, object_type, severity, tgrp, exporter_addr, ifindex, override, actions"

func TestLookup(t *testing.T) {
	for _, tc := range []struct {
		name       string
		family     policy.Family
		want       policy.Spec // NewParams and Defaults left out
		wantParams policy.Params
		wantOK     bool
	}{
		{"registered", fakeFamily, policy.Spec{Name: fakeFamily, Objects: []string{policy.ObjectGroup, policy.ObjectHost}}, fakeDefaults(), true},
		{"registered without parameters", bareFamily, policy.Spec{Name: bareFamily, Objects: []string{policy.ObjectInterface}}, &bareParams{}, true},
		{"not registered", "nope", policy.Spec{}, nil, false},
		{"empty name", "", policy.Spec{}, nil, false},
		{"case matters", "TEST_FAKE", policy.Spec{}, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := policy.Lookup(tc.family)
			if ok != tc.wantOK {
				t.Fatalf("Lookup(%q) ok = %v, want %v", tc.family, ok, tc.wantOK)
			}
			if diff := cmp.Diff(got, tc.want, cmpopts.IgnoreFields(policy.Spec{}, "NewParams", "Defaults")); diff != "" {
				t.Errorf("Lookup(%q) (-got +want):\n%s", tc.family, diff)
			}
			var params policy.Params
			if got.NewParams != nil {
				params = got.NewParams()
			}
			if diff := cmp.Diff(params, tc.wantParams); diff != "" {
				t.Errorf("Lookup(%q).NewParams() (-got +want):\n%s", tc.family, diff)
			}
		})
	}
}

func TestFamilies(t *testing.T) {
	var got []policy.Family
	for _, s := range policy.Families() {
		got = append(got, s.Name)
	}
	if diff := cmp.Diff(got, []policy.Family{bareFamily, fakeFamily}); diff != "" {
		t.Errorf("Families() (-got +want):\n%s", diff)
	}
}

// clashParams has a key of the common fields.
type clashParams struct {
	Name string `json:"name"`
}

func (*clashParams) Validate(*policy.Policy) error { return nil }

// clashYAMLParams has a common key in its yaml tag only.
type clashYAMLParams struct {
	Limit int `json:"limit2" yaml:"name"`
}

func (*clashYAMLParams) Validate(*policy.Policy) error { return nil }

// mismatchParams names a key differently in json and yaml.
type mismatchParams struct {
	Limit int `json:"limit" yaml:"max"`
}

func (*mismatchParams) Validate(*policy.Policy) error { return nil }

// untaggedParams has a field without a yaml tag, whose yaml key (the
// name in lower case) is not its json key.
type untaggedParams struct {
	MaxRate int `json:"MaxRate"`
}

func (*untaggedParams) Validate(*policy.Policy) error { return nil }

// leftOutParams may leave out keys whose defaults are not zero: a policy
// without them would read back with the default, not what it held.
type leftOutParams struct {
	Limit int    `json:"limit,omitzero" yaml:"limit"`
	Mode  string `json:"mode" yaml:"mode,omitempty"`
}

func (*leftOutParams) Validate(*policy.Policy) error { return nil }

// valueParams are not behind a pointer.
type valueParams struct{}

func (valueParams) Validate(*policy.Policy) error { return nil }

// clashOptsParams has a common key behind tag options.
type clashOptsParams struct {
	Limit  int    `json:"limit"`
	Object string `json:"object_type,omitempty"`
}

func (*clashOptsParams) Validate(*policy.Policy) error { return nil }

func TestRegisterFamilyPanics(t *testing.T) {
	for _, tc := range []struct {
		name string
		spec policy.Spec
		want string
	}{
		{
			"duplicate name",
			policy.Spec{Name: fakeFamily, Objects: []string{policy.ObjectInterface}, NewParams: func() policy.Params { return &bareParams{} }},
			`policy: detector family "test_fake" registered twice`,
		},
		{
			"parameter named like a common key",
			policy.Spec{Name: "test_clash", NewParams: func() policy.Params { return &clashParams{} }},
			`policy: family "test_clash" parameter "name" clashes with a common key`,
		},
		{
			"common key behind tag options",
			policy.Spec{Name: "test_clash_opts", NewParams: func() policy.Params { return &clashOptsParams{} }},
			`policy: family "test_clash_opts" parameter "object_type" clashes with a common key`,
		},
		{
			"common key in the yaml tag",
			policy.Spec{Name: "test_clash_yaml", NewParams: func() policy.Params { return &clashYAMLParams{} }},
			`policy: family "test_clash_yaml" parameter "name" clashes with a common key`,
		},
		{
			"json and yaml keys differ",
			policy.Spec{Name: "test_mismatch", NewParams: func() policy.Params { return &mismatchParams{} }},
			`policy: family "test_mismatch" parameter field Limit has json key "limit" but yaml key "max"; give both tags the same name`,
		},
		{
			"no yaml tag, and yaml's default key differs",
			policy.Spec{Name: "test_untagged", NewParams: func() policy.Params { return &untaggedParams{} }},
			`policy: family "test_untagged" parameter field MaxRate has json key "MaxRate" but yaml key "maxrate"; give both tags the same name`,
		},
		{
			"a json key left out when zero defaults to another value",
			policy.Spec{Name: "test_left_out", NewParams: func() policy.Params { return &leftOutParams{Limit: 10} }},
			`policy: family "test_left_out" parameter "limit" defaults to 10: a key that may be left out must default to its zero value (drop omitempty, or the default)`,
		},
		{
			"a yaml key left out when empty defaults to another value",
			policy.Spec{Name: "test_left_out", NewParams: func() policy.Params { return &leftOutParams{Mode: "Auto"} }},
			`policy: family "test_left_out" parameter "mode" defaults to "Auto": a key that may be left out must default to its zero value (drop omitempty, or the default)`,
		},
		{
			"no NewParams",
			policy.Spec{Name: "test_no_params"},
			`policy: family "test_no_params" has no NewParams`,
		},
		{
			"NewParams returns a typed nil",
			policy.Spec{Name: "test_nil_params", NewParams: func() policy.Params { return (*bareParams)(nil) }},
			`policy: family "test_nil_params" NewParams returns a nil *policy_test.bareParams`,
		},
		{
			"NewParams returns a struct",
			policy.Spec{Name: "test_value_params", NewParams: func() policy.Params { return valueParams{} }},
			`policy: family "test_value_params" NewParams returns policy_test.valueParams, not a pointer to a struct`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, _ := policy.Lookup(tc.spec.Name)
			got := panicOf(func() { policy.RegisterFamily(tc.spec) })
			if diff := cmp.Diff(got, tc.want); diff != "" {
				t.Errorf("RegisterFamily panic (-got +want):\n%s", diff)
			}
			// A rejected registration leaves the registry as it was.
			after, _ := policy.Lookup(tc.spec.Name)
			if diff := cmp.Diff(after, before, cmpopts.IgnoreFields(policy.Spec{}, "NewParams", "Defaults")); diff != "" {
				t.Errorf("Lookup after the panic (-got +want):\n%s", diff)
			}
			if len(policy.Families()) != 2 {
				t.Errorf("Families() = %d families after the panic, want 2", len(policy.Families()))
			}
		})
	}
}

// panicOf runs fn and returns what it panicked with, formatted; "" when it
// returned.
func panicOf(fn func()) (msg string) {
	defer func() {
		if r := recover(); r != nil {
			msg = fmt.Sprint(r)
		}
	}()
	fn()
	return ""
}

// fakePolicy returns a valid policy of fakeFamily; every call a new one.
func fakePolicy() policy.Policy {
	return policy.Policy{
		ID: 7, Name: "lab", CID: 2, Family: fakeFamily, Target: policy.TargetGroups, Object: policy.ObjectHost,
		Severity: 4, Group: 3,
		Actions: []policy.Attachment{{Instance: 9, Overrides: map[string]string{"EMAIL_BODY": "flood"}, Approval: true}},
		Params:  &fakeParams{Limit: 42, Mode: "fast"},
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(p *policy.Policy)
		want   string        // the whole error; "" for none
		params policy.Params // p.Params after Validate
	}{
		{"valid", func(*policy.Policy) {}, "", &fakeParams{Limit: 42, Mode: "fast"}},
		{"the family rejects its parameters", func(p *policy.Policy) { p.Params.(*fakeParams).Limit = 0 },
			"limit: 0 is not above 0", &fakeParams{Limit: 0, Mode: "fast"}},
		{"the family is handed the policy", func(p *policy.Policy) {
			p.Object = policy.ObjectGroup
			p.Params.(*fakeParams).Mode = "per_host"
		}, "mode: per_host needs object type TGRP+IP, not TGRP", &fakeParams{Limit: 42, Mode: "per_host"}},
		{"the family is asked only after the common fields pass", func(p *policy.Policy) {
			p.Name = " "
			p.Params.(*fakeParams).Limit = -1
		}, "name: is empty; give the policy a name", &fakeParams{Limit: -1, Mode: "fast"}},
		{"an object type not of the family", func(p *policy.Policy) {
			p.Object = policy.ObjectGroupPort
			p.Params.(*fakeParams).Limit = 0
		}, `object_type: "TGRP+PROTO+PORT" is not an object type of family test_fake; use one of TGRP, TGRP+IP`, &fakeParams{Limit: 0, Mode: "fast"}},
		{"an object type of another family", func(p *policy.Policy) {
			p.Target, p.Object, p.Group = policy.TargetInterfaces, policy.ObjectInterface, 0
		}, `object_type: "EXPORTER_ADDR+IFINDEX" is not an object type of family test_fake; use one of TGRP, TGRP+IP`, &fakeParams{Limit: 42, Mode: "fast"}},
		{"the other family takes that object type", func(p *policy.Policy) {
			p.Family, p.Target, p.Object, p.Group, p.Params = bareFamily, policy.TargetInterfaces, policy.ObjectInterface, 0, &bareParams{}
		}, "", &bareParams{}},
		{"an unknown family", func(p *policy.Policy) { p.Family, p.Params = "nope", nil },
			`family: "nope" is not a detector family; use one of test_bare, test_fake`, nil},
		{"no parameters: the family's defaults are checked", func(p *policy.Policy) { p.Params = nil },
			"", fakeDefaults()},
		{"a typed nil is no parameters", func(p *policy.Policy) { p.Params = (*fakeParams)(nil) },
			"", fakeDefaults()},
		{"several common errors, the family's not asked", func(p *policy.Policy) {
			p.Severity = -2
			p.Actions = append(p.Actions, policy.Attachment{Instance: 9})
			p.Params.(*fakeParams).Limit = 0
		}, "severity: -2 is negative; use 0 to mute or 1 and up\nactions[1].instance: instance 9 is attached twice", &fakeParams{Limit: 0, Mode: "fast"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := fakePolicy()
			tc.change(&p)
			got := ""
			if err := p.Validate(); err != nil {
				got = err.Error()
			}
			if diff := cmp.Diff(got, tc.want); diff != "" {
				t.Errorf("Validate error (-got +want):\n%s", diff)
			}
			if diff := cmp.Diff(p.Params, tc.params); diff != "" {
				t.Errorf("Params after Validate (-got +want):\n%s", diff)
			}
		})
	}
}

func TestNormalize(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(p *policy.Policy)
		want   func(p *policy.Policy) // applied to fakePolicy()
	}{
		{"already normal", func(*policy.Policy) {}, func(*policy.Policy) {}},
		{"the family's Normalizer runs", func(p *policy.Policy) { p.Params.(*fakeParams).Mode = "FAST" }, func(*policy.Policy) {}},
		{"no parameters: the family's defaults, normalized", func(p *policy.Policy) { p.Params = nil },
			func(p *policy.Policy) { p.Params = &fakeParams{Limit: 10, Mode: "auto"} }},
		{"no actions: an empty list", func(p *policy.Policy) { p.Actions = nil },
			func(p *policy.Policy) { p.Actions = []policy.Attachment{} }},
		{"a typed nil is no parameters: the family's defaults, normalized", func(p *policy.Policy) { p.Params = (*fakeParams)(nil) },
			func(p *policy.Policy) { p.Params = &fakeParams{Limit: 10, Mode: "auto"} }},
		{"an unknown family drops a typed nil", func(p *policy.Policy) { p.Family, p.Params = "nope", (*fakeParams)(nil) },
			func(p *policy.Policy) { p.Family, p.Params = "nope", nil }},
		{"a family without Normalizer gets its defaults", func(p *policy.Policy) { p.Family, p.Params = bareFamily, nil },
			func(p *policy.Policy) { p.Family, p.Params = bareFamily, &bareParams{} }},
		{"an unknown family keeps no parameters", func(p *policy.Policy) { p.Family, p.Params = "nope", nil },
			func(p *policy.Policy) { p.Family, p.Params = "nope", nil }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := fakePolicy()
			tc.change(&p)
			want := fakePolicy()
			tc.want(&want)
			p.Normalize()
			if diff := cmp.Diff(p, want, equateAddr); diff != "" {
				t.Errorf("Normalize (-got +want):\n%s", diff)
			}
			p.Normalize()
			if diff := cmp.Diff(p, want, equateAddr); diff != "" {
				t.Errorf("Normalize twice (-got +want):\n%s", diff)
			}
		})
	}
}
