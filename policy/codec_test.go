package policy_test

import (
	"encoding/json"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"

	"github.com/flowsentry/flowsentry/config/check"
	"github.com/flowsentry/flowsentry/policy"
)

func TestJSONRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name   string
		policy func(p *policy.Policy) // changes to fakePolicy()
		want   string
		back   func(p *policy.Policy) // changes to the policy for what UnmarshalJSON gives; nil: the same
	}{
		{
			"common keys and the family's in one object",
			func(p *policy.Policy) { p.Override = 5 },
			`{"id":7,"name":"lab","cid":2,"family":"test_fake","target":"traffic_groups","object_type":"TGRP+IP","severity":4,"tgrp":3,"override":5,` +
				`"actions":[{"instance":9,"overrides":{"EMAIL_BODY":"flood"},"approval":true}],"limit":42,"mode":"fast"}`,
			nil,
		},
		{
			"an interface",
			func(p *policy.Policy) {
				p.Target, p.Object, p.Group = policy.TargetInterfaces, policy.ObjectInterface, 0
				p.Exporter, p.IfIndex = netip.MustParseAddr("192.0.2.1"), 4
				p.Actions, p.Params = nil, &fakeParams{Limit: 1, Mode: "slow"}
			},
			`{"id":7,"name":"lab","cid":2,"family":"test_fake","target":"interfaces","object_type":"EXPORTER_ADDR+IFINDEX","severity":4,` +
				`"exporter_addr":"192.0.2.1","ifindex":4,"actions":null,"limit":1,"mode":"slow"}`,
			nil,
		},
		{
			"a family without parameter keys",
			func(p *policy.Policy) { p.Family, p.Params = bareFamily, &bareParams{} },
			`{"id":7,"name":"lab","cid":2,"family":"test_bare","target":"traffic_groups","object_type":"TGRP+IP","severity":4,"tgrp":3,` +
				`"actions":[{"instance":9,"overrides":{"EMAIL_BODY":"flood"},"approval":true}]}`,
			nil,
		},
		{
			"no parameters yet: read back with the family's defaults",
			func(p *policy.Policy) { p.Params = nil },
			`{"id":7,"name":"lab","cid":2,"family":"test_fake","target":"traffic_groups","object_type":"TGRP+IP","severity":4,"tgrp":3,` +
				`"actions":[{"instance":9,"overrides":{"EMAIL_BODY":"flood"},"approval":true}]}`,
			func(p *policy.Policy) { p.Params = fakeDefaults() },
		},
		{
			"a typed nil is no parameters",
			func(p *policy.Policy) { p.Params = (*fakeParams)(nil) },
			`{"id":7,"name":"lab","cid":2,"family":"test_fake","target":"traffic_groups","object_type":"TGRP+IP","severity":4,"tgrp":3,` +
				`"actions":[{"instance":9,"overrides":{"EMAIL_BODY":"flood"},"approval":true}]}`,
			func(p *policy.Policy) { p.Params = fakeDefaults() },
		},
		{
			"a list and a map among the parameters",
			func(p *policy.Policy) {
				p.Params = &fakeParams{Limit: 1, Ports: []int{53, 123}, Tags: map[string]string{"team": "noc"}}
			},
			`{"id":7,"name":"lab","cid":2,"family":"test_fake","target":"traffic_groups","object_type":"TGRP+IP","severity":4,"tgrp":3,` +
				`"actions":[{"instance":9,"overrides":{"EMAIL_BODY":"flood"},"approval":true}],"limit":1,"mode":"","ports":[53,123],"tags":{"team":"noc"}}`,
			nil,
		},
		{
			"keys left out read back as their zero values",
			func(p *policy.Policy) { p.Params = &fakeParams{} },
			`{"id":7,"name":"lab","cid":2,"family":"test_fake","target":"traffic_groups","object_type":"TGRP+IP","severity":4,"tgrp":3,` +
				`"actions":[{"instance":9,"overrides":{"EMAIL_BODY":"flood"},"approval":true}],"limit":0,"mode":""}`,
			nil,
		},
		{
			"an unknown family without parameters",
			func(p *policy.Policy) { p.Family, p.Params = "nope", nil },
			`{"id":7,"name":"lab","cid":2,"family":"nope","target":"traffic_groups","object_type":"TGRP+IP","severity":4,"tgrp":3,` +
				`"actions":[{"instance":9,"overrides":{"EMAIL_BODY":"flood"},"approval":true}]}`,
			nil,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := fakePolicy()
			tc.policy(&p)
			doc, err := json.Marshal(p)
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			if diff := cmp.Diff(string(doc), tc.want); diff != "" {
				t.Errorf("Marshal (-got +want):\n%s", diff)
			}
			want := fakePolicy()
			tc.policy(&want)
			if tc.back != nil {
				tc.back(&want)
			}
			var got policy.Policy
			if err := json.Unmarshal(doc, &got); err != nil {
				t.Fatalf("Unmarshal: %v", err)
			}
			if diff := cmp.Diff(got, want, equateAddr); diff != "" {
				t.Errorf("Unmarshal(Marshal(p)) (-got +want):\n%s", diff)
			}
		})
	}
}

func TestUnmarshalJSON(t *testing.T) {
	for _, tc := range []struct {
		name     string
		into     policy.Policy // decoded over
		doc      string
		want     policy.Policy
		wantErr  string // contained in the error
		wantPath string // of the *check.Error; "" when not one
	}{
		{
			name: "family keys before the family; keys left out keep the defaults",
			doc:  `{"limit":3,"family":"test_fake","name":"x"}`,
			want: policy.Policy{Name: "x", Family: fakeFamily, Params: &fakeParams{Limit: 3, Mode: "Auto"}},
		},
		{
			name: "nothing is kept of the policy decoded over",
			into: fakePolicy(),
			doc:  `{"name":"y","family":"test_bare"}`,
			want: policy.Policy{Name: "y", Family: bareFamily, Params: &bareParams{}},
		},
		{
			name: "null leaves the policy as it is",
			into: fakePolicy(),
			doc:  ` null `,
			want: fakePolicy(),
		},
		{
			name: "an unknown family without other keys is left to Validate",
			doc:  `{"name":"x","family":"nope"}`,
			want: policy.Policy{Name: "x", Family: "nope"},
		},
		{
			name:     "an unknown key names the family's keys and the common ones",
			doc:      `{"name":"x","family":"test_fake","limit":1,"colour":"red"}`,
			wantErr:  "colour: is not a key of a test_fake policy; its keys are limit, mode, ports, tags besides " + commonKeys,
			wantPath: "colour",
		},
		{
			name:     "the first unknown key by name",
			doc:      `{"family":"test_fake","zeta":1,"alpha":2}`,
			wantErr:  "alpha: is not a key of a test_fake policy",
			wantPath: "alpha",
		},
		{
			name:     "a key of another family",
			doc:      `{"family":"test_bare","limit":1}`,
			wantErr:  "limit: is not a key of a test_bare policy; it takes no keys besides " + commonKeys,
			wantPath: "limit",
		},
		{
			name:     "a key in the wrong case",
			doc:      `{"family":"test_fake","Limit":1}`,
			wantErr:  "Limit: is not a key of a test_fake policy",
			wantPath: "Limit",
		},
		{
			name:     "an unknown family with other keys names them",
			doc:      `{"name":"x","family":"nope","mode":"a","limit":1}`,
			wantErr:  `family: family "nope" is not a detector family; use one of test_bare, test_fake (it says what the keys limit, mode mean)`,
			wantPath: "family",
		},
		{
			name:     "no family with other keys",
			doc:      `{"name":"x","limit":1}`,
			wantErr:  `family: family "" is not a detector family; use one of test_bare, test_fake (it says what the keys limit mean)`,
			wantPath: "family",
		},
		{
			name:    "a wrong type for a family key",
			doc:     `{"family":"test_fake","limit":"ten"}`,
			wantErr: "test_fake parameters: json: cannot unmarshal string into Go struct field fakeParams.limit of type int",
		},
		{
			name:    "a wrong type for a common key",
			doc:     `{"family":"test_fake","cid":-1}`,
			wantErr: "cannot unmarshal number -1 into Go struct field",
		},
		{
			name:    "not an object",
			doc:     `[1]`,
			wantErr: "cannot unmarshal array",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.into
			err := json.Unmarshal([]byte(tc.doc), &got)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Unmarshal: %v", err)
				}
				if diff := cmp.Diff(got, tc.want, equateAddr); diff != "" {
					t.Errorf("Unmarshal (-got +want):\n%s", diff)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Unmarshal error %v, want it to contain %q", err, tc.wantErr)
			}
			path := ""
			if ce := (*check.Error)(nil); errors.As(err, &ce) {
				path = ce.Path
			}
			if path != tc.wantPath {
				t.Errorf("error at key %q, want %q", path, tc.wantPath)
			}
		})
	}
}

func TestExtension(t *testing.T) {
	mine := &fakeParams{Limit: 1}
	for _, tc := range []struct {
		name    string
		policy  policy.Policy
		want    policy.Params // returned and left in Params
		same    bool          // want is the very value Params held
		wantErr string
	}{
		{"no parameters: the family's defaults", policy.Policy{Family: fakeFamily}, fakeDefaults(), false, ""},
		{"parameters of the family are decoded into", policy.Policy{Family: fakeFamily, Params: mine}, mine, true, ""},
		{"parameters of another family are replaced", policy.Policy{Family: fakeFamily, Params: &bareParams{}}, fakeDefaults(), false, ""},
		{"a typed nil is replaced", policy.Policy{Family: fakeFamily, Params: (*fakeParams)(nil)}, fakeDefaults(), false, ""},
		{"an unknown family", policy.Policy{Family: "nope", Params: mine}, mine, true,
			`family "nope" is not a detector family; use one of test_bare, test_fake`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.policy
			got, err := p.Extension()
			gotErr := ""
			if err != nil {
				gotErr = err.Error()
				if got != nil {
					t.Errorf("Extension returned %#v with its error", got)
				}
			} else if got != p.Params {
				t.Errorf("Extension returned %p, not the policy's parameters %p", got, p.Params)
			}
			if gotErr != tc.wantErr {
				t.Errorf("Extension error %q, want %q", gotErr, tc.wantErr)
			}
			if diff := cmp.Diff(p.Params, tc.want); diff != "" {
				t.Errorf("Params (-got +want):\n%s", diff)
			}
			if same := p.Params == tc.policy.Params; same != tc.same {
				t.Errorf("Params kept = %v, want %v", same, tc.same)
			}
		})
	}
}

// deepParams nest what Clone must copy: a pointer, an array of slices and
// an interface. They need no family: Clone works on any parameters.
type deepParams struct {
	Inner *fakeParams
	Lists [2][]int
	Any   any
	note  []int // unexported: copied as it is
}

func (*deepParams) Validate(*policy.Policy) error { return nil }

func newDeepParams() *deepParams {
	return &deepParams{
		Inner: &fakeParams{Limit: 1, Ports: []int{53}, Tags: map[string]string{"team": "noc"}},
		Lists: [2][]int{{1, 2}, {3}},
		Any:   []string{"a"},
		note:  []int{1},
	}
}

func TestClone(t *testing.T) {
	for _, tc := range []struct {
		name   string
		policy func(p *policy.Policy) // changes to fakePolicy()
		change func(c *policy.Policy) // on the clone
	}{
		{"parameters", func(*policy.Policy) {}, func(c *policy.Policy) { c.Params.(*fakeParams).Limit = 99 }},
		{"parameters replaced", func(*policy.Policy) {}, func(c *policy.Policy) { *c.Params.(*fakeParams) = fakeParams{} }},
		{"an action", func(*policy.Policy) {}, func(c *policy.Policy) { c.Actions[0].Instance = 100 }},
		{"an override changed", func(*policy.Policy) {}, func(c *policy.Policy) { c.Actions[0].Overrides["EMAIL_BODY"] = "changed" }},
		{"an override added", func(*policy.Policy) {}, func(c *policy.Policy) { c.Actions[0].Overrides["EMAIL_TO"] = "noc" }},
		{"an action appended in place", func(p *policy.Policy) {
			p.Actions = append(make([]policy.Attachment, 0, 4), p.Actions...)
		}, func(c *policy.Policy) {
			c.Actions = append(c.Actions, policy.Attachment{Instance: 1})
			c.Actions[0].Approval = false
		}},
		{"no parameters, no actions", func(p *policy.Policy) { p.Params, p.Actions = nil, nil }, func(c *policy.Policy) { c.Name = "other" }},
		{"a typed nil as parameters", func(p *policy.Policy) { p.Params = (*fakeParams)(nil) }, func(c *policy.Policy) { c.Name = "other" }},
		{"a list in the parameters", func(p *policy.Policy) { p.Params.(*fakeParams).Ports = []int{53, 123} },
			func(c *policy.Policy) { c.Params.(*fakeParams).Ports[0] = 54 }},
		{"a list in the parameters appended in place", func(p *policy.Policy) { p.Params.(*fakeParams).Ports = append(make([]int, 0, 4), 53) },
			func(c *policy.Policy) {
				f := c.Params.(*fakeParams)
				f.Ports = append(f.Ports, 123)
				f.Ports[0] = 54
			}},
		{"a map in the parameters changed", func(p *policy.Policy) { p.Params.(*fakeParams).Tags = map[string]string{"team": "noc"} },
			func(c *policy.Policy) { c.Params.(*fakeParams).Tags["team"] = "soc" }},
		{"a map in the parameters added to", func(p *policy.Policy) { p.Params.(*fakeParams).Tags = map[string]string{} },
			func(c *policy.Policy) { c.Params.(*fakeParams).Tags["team"] = "soc" }},
		{"a pointer in the parameters", func(p *policy.Policy) { p.Params = newDeepParams() },
			func(c *policy.Policy) { c.Params.(*deepParams).Inner.Tags["team"] = "soc" }},
		{"an array of lists in the parameters", func(p *policy.Policy) { p.Params = newDeepParams() },
			func(c *policy.Policy) { c.Params.(*deepParams).Lists[1][0] = 4 }},
		{"an interface in the parameters", func(p *policy.Policy) { p.Params = newDeepParams() },
			func(c *policy.Policy) { c.Params.(*deepParams).Any.([]string)[0] = "b" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := fakePolicy()
			tc.policy(&p)
			want := fakePolicy()
			tc.policy(&want)
			c := p.Clone()
			if diff := cmp.Diff(c, want, equateAddr, unexported); diff != "" {
				t.Fatalf("Clone (-got +want):\n%s", diff)
			}
			tc.change(&c)
			if cmp.Equal(c, want, equateAddr, unexported) {
				t.Fatal("the change did not change the clone")
			}
			if diff := cmp.Diff(p, want, equateAddr, unexported); diff != "" {
				t.Errorf("original after changing the clone (-got +want):\n%s", diff)
			}
		})
	}
}

// unexported lets cmp compare deepParams.
var unexported = cmp.AllowUnexported(deepParams{})

func TestMarshalYAML(t *testing.T) {
	const common = `id: 7
name: lab
cid: 2
family: %s
target: traffic_groups
object_type: TGRP+IP
severity: 4
tgrp: 3
exporter_addr: ""
actions:
  - instance: 9
    overrides:
      EMAIL_BODY: flood
    approval: true
`
	fake, bare := strings.Replace(common, "%s", "test_fake", 1), strings.Replace(common, "%s", "test_bare", 1)
	for _, tc := range []struct {
		name   string
		policy func(p *policy.Policy) // changes to fakePolicy()
		want   string
	}{
		{"common keys then the family's", func(*policy.Policy) {}, fake + "limit: 42\nmode: fast\n"},
		{"family keys left out", func(p *policy.Policy) { p.Params = &fakeParams{Limit: 1} }, fake + "limit: 1\nmode: \"\"\n"},
		{"a list and a map", func(p *policy.Policy) {
			p.Params = &fakeParams{Limit: 1, Mode: "x", Ports: []int{53}, Tags: map[string]string{"team": "noc"}}
		}, fake + "limit: 1\nmode: x\nports:\n  - 53\ntags:\n  team: noc\n"},
		{"no parameters", func(p *policy.Policy) { p.Params = nil }, fake},
		{"a typed nil is no parameters", func(p *policy.Policy) { p.Params = (*fakeParams)(nil) }, fake},
		{"a family without parameter keys", func(p *policy.Policy) { p.Family, p.Params = bareFamily, &bareParams{} }, bare},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := fakePolicy()
			tc.policy(&p)
			var b strings.Builder
			enc := yaml.NewEncoder(&b)
			enc.SetIndent(2)
			if err := enc.Encode(p); err != nil {
				t.Fatalf("Encode: %v", err)
			}
			if err := enc.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			if diff := cmp.Diff(b.String(), tc.want); diff != "" {
				t.Errorf("YAML (-got +want):\n%s", diff)
			}
		})
	}
}
