package policy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/flowsentry/flowsentry/config/check"
)

// plain is Policy without its methods: the common fields as encoding/json
// and yaml see them.
type plain Policy

// Extension returns the family parameters the keys of a configuration
// file's policy beyond the common ones decode into, once the common keys
// (family among them) are decoded; the configuration decoder calls it.
// It is nil, with an error naming the families, when the family is not
// registered.
func (p *Policy) Extension() (any, error) {
	s, ok := Lookup(p.Family)
	if !ok {
		return nil, fmt.Errorf("family %q is not a detector family; use one of %s", p.Family, familyNames())
	}
	if p.Params == nil || reflect.TypeOf(p.Params) != reflect.TypeOf(s.NewParams()) {
		p.Params = s.NewParams()
	}
	return p.Params, nil
}

// Clone returns a deep copy of p: copies of a Policy share its Params
// otherwise.
func (p Policy) Clone() Policy {
	c := p
	c.Actions = slices.Clone(p.Actions)
	for i := range c.Actions {
		c.Actions[i].Overrides = maps.Clone(c.Actions[i].Overrides)
	}
	if p.Params != nil {
		v := reflect.New(reflect.TypeOf(p.Params).Elem())
		v.Elem().Set(reflect.ValueOf(p.Params).Elem())
		c.Params = v.Interface().(Params)
	}
	return c
}

// MarshalJSON writes the common fields and the family's parameters as one
// flat object.
func (p Policy) MarshalJSON() ([]byte, error) {
	common, err := json.Marshal(plain(p))
	if err != nil {
		return nil, err
	}
	if p.Params == nil {
		return common, nil
	}
	params, err := json.Marshal(p.Params)
	if err != nil {
		return nil, fmt.Errorf("policy %d parameters: %w", p.ID, err)
	}
	if len(params) <= 2 { // {}
		return common, nil
	}
	out := append(common[:len(common)-1:len(common)-1], ',')
	return append(out, params[1:]...), nil
}

// UnmarshalJSON reads a flat policy object strictly: the common keys, then
// the keys of its family's parameters; any other key is an error naming
// the keys the family takes.
func (p *Policy) UnmarshalJSON(doc []byte) error {
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(doc, &keys); err != nil {
		return err
	}
	commonKeys := jsonKeys(reflect.TypeFor[plain]())
	common, rest := map[string]json.RawMessage{}, map[string]json.RawMessage{}
	for k, v := range keys {
		if slices.Contains(commonKeys, k) {
			common[k] = v
		} else {
			rest[k] = v
		}
	}
	var c plain
	if err := strictDecode(common, &c); err != nil {
		return err
	}
	*p = Policy(c)
	target, err := p.Extension()
	if err != nil {
		if len(rest) > 0 {
			return check.Errorf("family", "%v (it says what the keys %s mean)", err, strings.Join(sortedKeys(rest), ", "))
		}
		return nil // Validate names the family
	}
	valid := jsonKeys(reflect.TypeOf(target).Elem())
	for _, k := range sortedKeys(rest) {
		if !slices.Contains(valid, k) {
			return check.Errorf(k, "is not a key of a %s policy; its keys are %s besides %s", p.Family, strings.Join(valid, ", "), strings.Join(commonKeys, ", "))
		}
	}
	if err := strictDecode(rest, target); err != nil {
		return fmt.Errorf("%s parameters: %w", p.Family, err)
	}
	return nil
}

// MarshalYAML writes the policy as one flat mapping, common keys first,
// for `serve --dump`.
func (p Policy) MarshalYAML() (any, error) {
	var n yaml.Node
	if err := n.Encode(plain(p)); err != nil {
		return nil, err
	}
	if p.Params != nil {
		var params yaml.Node
		if err := params.Encode(p.Params); err != nil {
			return nil, err
		}
		n.Content = append(n.Content, params.Content...)
	}
	return &n, nil
}

func strictDecode(m map[string]json.RawMessage, into any) error {
	doc, err := json.Marshal(m)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.DisallowUnknownFields()
	return dec.Decode(into)
}

func sortedKeys(m map[string]json.RawMessage) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
