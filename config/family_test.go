package config

import (
	"bytes"
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/flowsentry/flowsentry/config/check"
	"github.com/flowsentry/flowsentry/detect"
	"github.com/flowsentry/flowsentry/flow"
	"github.com/flowsentry/flowsentry/model"
	"github.com/flowsentry/flowsentry/policy"
)

// configFake is a detector family that exists only in this test binary:
// the configuration file takes its policies with no change to this
// package.
const configFake policy.Family = "test_config_fake"

// configFakeParams are its parameters. Mode defaults to "auto", so it
// may not be left out when written (RegisterFamily would panic).
type configFakeParams struct {
	Limit int    `json:"limit" yaml:"limit"`
	Mode  string `json:"mode" yaml:"mode"`
}

// Validate rejects a limit not above 0, and mode per_host on objects other
// than hosts.
func (f *configFakeParams) Validate(p *policy.Policy) error {
	if f.Limit <= 0 {
		return check.Errorf("limit", "%d is not above 0", f.Limit)
	}
	if f.Mode == "per_host" && p.Object != policy.ObjectHost {
		return check.Errorf("mode", "per_host needs object type %s, not %s", policy.ObjectHost, p.Object)
	}
	return nil
}

// Normalize lower-cases the mode.
func (f *configFakeParams) Normalize() { f.Mode = strings.ToLower(f.Mode) }

// configFakeStage is a stage that does nothing.
type configFakeStage struct{}

func (configFakeStage) SetModel(*model.Model)        {}
func (configFakeStage) Add(*flow.Record)             {}
func (configFakeStage) AddCounters(*flow.IfCounters) {}
func (configFakeStage) Tick(int64)                   {}
func (configFakeStage) Start(context.Context) error  { return nil }
func (configFakeStage) Stop()                        {}

func init() {
	detect.Register(detect.Family{
		Policy: policy.Spec{Name: configFake, Objects: []string{policy.ObjectGroup, policy.ObjectHost},
			NewParams: func() policy.Params { return &configFakeParams{Limit: 10, Mode: "auto"} }},
		New: func(detect.Deps) (detect.Stage, error) { return configFakeStage{}, nil },
	})
}

// fakeHead is a policy of the fake family without its own keys, on lines
// 1 to 8; cases add lines from 9 on.
const fakeHead = `policies:
  - id: 10
    name: lab
    cid: 0
    family: test_config_fake
    target: traffic_groups
    object_type: TGRP
    severity: 3
`

// fakeLab is the policy of fakeHead with params.
func fakeLab(params *configFakeParams) policy.Policy {
	return policy.Policy{ID: 10, Name: "lab", CID: 0, Family: configFake, Target: policy.TargetGroups,
		Object: policy.ObjectGroup, Severity: 3, Params: params}
}

func TestFamilyPolicies(t *testing.T) {
	for _, tc := range []struct {
		name   string
		yaml   string
		want   []policy.Policy // of the fake family
		others []policy.Family // the families of the other policies
		inDump []string        // lines the dump holds
	}{
		{"the family's keys", fakeHead + "    limit: 5\n    mode: fast\n",
			[]policy.Policy{fakeLab(&configFakeParams{Limit: 5, Mode: "fast"})}, nil, nil},
		{"the family's keys before the family", `policies:
  - limit: 5
    mode: fast
    id: 10
    name: lab
    family: test_config_fake
    target: traffic_groups
    object_type: TGRP
    severity: 3
`, []policy.Policy{fakeLab(&configFakeParams{Limit: 5, Mode: "fast"})}, nil, nil},
		{"keys left out keep the family's defaults", fakeHead + "    limit: 5\n",
			[]policy.Policy{fakeLab(&configFakeParams{Limit: 5, Mode: "auto"})}, nil, nil},
		{"no key of the family", fakeHead,
			[]policy.Policy{fakeLab(&configFakeParams{Limit: 10, Mode: "auto"})}, nil, nil},
		{"a merge key carries the family's keys", `policies:
  - &lab {id: 10, name: lab, cid: 0, family: test_config_fake, target: traffic_groups, object_type: TGRP, severity: 3, limit: 5, mode: fast}
  - <<: *lab
    id: 11
    limit: 6
`, []policy.Policy{
			fakeLab(&configFakeParams{Limit: 5, Mode: "fast"}),
			func() policy.Policy { p := fakeLab(&configFakeParams{Limit: 6, Mode: "fast"}); p.ID = 11; return p }(),
		}, nil, nil},
		{"beside a policy of another family", fakeHead + `    limit: 5
  - id: 11
    name: web
    family: port_threshold
    target: traffic_groups
    object_type: TGRP
    threshold_type: packets_in
    threshold: 1000
    severity: 2
`, []policy.Policy{fakeLab(&configFakeParams{Limit: 5, Mode: "auto"})}, []policy.Family{"port_threshold"}, nil},
		{"validation converts no unit of the loaded policies", fakeHead + `    limit: 5
    mode: FAST
  - id: 11
    name: web
    family: port_threshold
    target: traffic_groups
    object_type: TGRP
    threshold_type: bits_in
    threshold: 800
    severity: 2
`, []policy.Policy{fakeLab(&configFakeParams{Limit: 5, Mode: "FAST"})}, []policy.Family{"port_threshold"},
			[]string{"    mode: FAST\n", "    threshold_type: bits_in\n", "    threshold: 800\n"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inTempDir(t, map[string]string{"flowsentry.yaml": tc.yaml})
			cfg, err := Load("flowsentry.yaml")
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			var got []policy.Policy
			var others []policy.Family
			for _, p := range cfg.Policies {
				if p.Family == configFake {
					got = append(got, p)
					continue
				}
				// Its parameters are checked by its family's tests.
				others = append(others, p.Family)
				if _, mine := p.Params.(*configFakeParams); mine || p.Params == nil {
					t.Errorf("policy %d of family %s has parameters %#v", p.ID, p.Family, p.Params)
				}
			}
			if diff := cmp.Diff(others, tc.others); diff != "" {
				t.Errorf("other policies (-got +want):\n%s", diff)
			}
			if diff := cmp.Diff(got, tc.want, cmpopts.EquateComparable(netip.Addr{})); diff != "" {
				t.Errorf("policies (-got +want):\n%s", diff)
			}
			for i := range cfg.Policies {
				for j := range i {
					if cfg.Policies[i].Params == cfg.Policies[j].Params {
						t.Errorf("policies %d and %d share their parameters", j, i)
					}
				}
			}
			// Validation (Load's too) changes nothing: it normalizes copies.
			before := slices.Clone(cfg.Policies)
			for i := range before {
				before[i] = before[i].Clone()
			}
			if err := cfg.Validate(); err != nil {
				t.Errorf("Validate: %v", err)
			}
			if diff := cmp.Diff(cfg.Policies, before, cmpopts.EquateComparable(netip.Addr{})); diff != "" {
				t.Errorf("policies after Validate (-got +want):\n%s", diff)
			}
			// --dump writes the family's keys flat, as written, and they
			// load back.
			var dump bytes.Buffer
			if err := Dump(&dump, cfg); err != nil {
				t.Fatalf("Dump: %v", err)
			}
			for _, line := range tc.inDump {
				if !strings.Contains(dump.String(), line) {
					t.Errorf("the dump lacks %q:\n%s", line, dump.String())
				}
			}
			back, err := parse("dump.yaml", dump.Bytes())
			if err != nil {
				t.Fatalf("Load of the dump: %v\n%s", err, dump.String())
			}
			if diff := cmp.Diff(back.Policies, cfg.Policies, cmpopts.EquateComparable(netip.Addr{})); diff != "" {
				t.Errorf("policies of the dump (-got +want):\n%s", diff)
			}
		})
	}
}

func TestFamilyPolicyErrors(t *testing.T) {
	var names []string
	for _, f := range detect.Families() {
		names = append(names, string(f.Policy.Name))
	}
	if !slices.Contains(names, string(configFake)) {
		t.Fatalf("families %v lack %s", names, configFake)
	}
	families := strings.Join(names, ", ")
	const policyKeys = "id, name, cid, family, target, object_type, severity, tgrp, exporter_addr, ifindex, override, actions, allow"
	for _, tc := range []struct {
		name string
		yaml string
		want string // every error, a line each
	}{
		{"an unknown key lists the common keys and the family's", fakeHead + "    limit: 5\n    colour: red\n",
			`flowsentry.yaml:10: unknown key "colour" in policies[0]; valid keys: ` + policyKeys + `, limit, mode`},
		{"a key of another family", fakeHead + "    threshold: 5\n",
			`flowsentry.yaml:9: unknown key "threshold" in policies[0]; valid keys: ` + policyKeys + `, limit, mode`},
		{"a key in the wrong case", fakeHead + "    Limit: 5\n",
			`flowsentry.yaml:9: unknown key "Limit" in policies[0]; valid keys: ` + policyKeys + `, limit, mode`},
		{"a wrong type for limit", fakeHead + "    limit: lots\n",
			`flowsentry.yaml:9: policies[0].limit: "lots" is not an integer`},
		{"a list for limit", fakeHead + "    limit:\n      - 1\n",
			`flowsentry.yaml:10: policies[0].limit: expected a value, not a list`},
		{"a repeated key of the family", fakeHead + "    limit: 5\n    limit: 6\n",
			`flowsentry.yaml:10: key "limit" is repeated in policies[0] (first on line 9); keep one`},
		{"the family's validation at its key", fakeHead + "    limit: 0\n",
			`flowsentry.yaml:9: policies[0].limit: 0 is not above 0`},
		{"the family is handed the policy", fakeHead + "    limit: 5\n    mode: per_host\n",
			`flowsentry.yaml:10: policies[0].mode: per_host needs object type TGRP+IP, not TGRP`},
		{"an object type not of the family", strings.Replace(strings.Replace(fakeHead,
			"traffic_groups", "interfaces", 1), "TGRP", "EXPORTER_ADDR+IFINDEX", 1),
			`flowsentry.yaml:7: policies[0].object_type: "EXPORTER_ADDR+IFINDEX" is not an object type of family test_config_fake; use one of TGRP, TGRP+IP`},
		{"an unknown family", strings.Replace(fakeHead, "test_config_fake", "nope", 1),
			`flowsentry.yaml:5: policies[0].family: "nope" is not a detector family; use one of ` + families},
		{"an unknown family with keys of a family, at the family", strings.Replace(fakeHead, "test_config_fake", "nope", 1) + "    limit: 5\n    mode: fast\n",
			`flowsentry.yaml:5: policies[0]: family "nope" is not a detector family; use one of ` + families + ` (it says what the keys limit, mode mean)`},
		{"an unknown family after keys of a family", `policies:
  - limit: 5
    id: 10
    name: lab
    family: nope
`, `flowsentry.yaml:5: policies[0]: family "nope" is not a detector family; use one of ` + families + ` (it says what the keys limit mean)`},
		{"an unknown family from a merge key, with keys of a family", `policies:
  - &lab {id: 10, name: lab, family: nope, target: traffic_groups, object_type: TGRP, severity: 3}
  - <<: *lab
    id: 11
    limit: 6
`, `flowsentry.yaml:2: policies[1]: family "nope" is not a detector family; use one of ` + families + ` (it says what the keys limit mean)`},
		{"no family, with keys of a family, at the first", `policies:
  - id: 10
    name: lab
    limit: 5
`, `flowsentry.yaml:4: policies[0]: family "" is not a detector family; use one of ` + families + ` (it says what the keys limit mean)`},
		{"errors of several policies in line order", fakeHead + `    limit: 0
  - id: 11
    name: lab2
    family: test_config_fake
    target: traffic_groups
    object_type: TGRP
    limit: two
    speed: 3
`, `flowsentry.yaml:15: policies[1].limit: "two" is not an integer
flowsentry.yaml:16: unknown key "speed" in policies[1]; valid keys: ` + policyKeys + `, limit, mode`},
		{"validation errors of several policies in line order", fakeHead + `    limit: 0
  - id: 11
    name: lab2
    family: test_config_fake
    target: traffic_groups
    object_type: TGRP
    mode: per_host
`, `flowsentry.yaml:9: policies[0].limit: 0 is not above 0
flowsentry.yaml:15: policies[1].mode: per_host needs object type TGRP+IP, not TGRP`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inTempDir(t, map[string]string{"flowsentry.yaml": tc.yaml})
			_, err := Load("flowsentry.yaml")
			if err == nil {
				t.Fatal("Load succeeded")
			}
			if diff := cmp.Diff(err.Error(), tc.want); diff != "" {
				t.Errorf("Load error (-got +want):\n%s", diff)
			}
			for _, e := range check.Flatten(err) {
				if ce, ok := e.(*Error); !ok || ce.Line == 0 {
					t.Errorf("%q is a %T without a line, want a *config.Error at a line", e, e)
				}
			}
		})
	}
}
