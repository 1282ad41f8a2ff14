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
	if noParams(p.Params) || reflect.TypeOf(p.Params) != reflect.TypeOf(s.NewParams()) {
		p.Params = s.NewParams()
	}
	return p.Params, nil
}

// ExtensionKey is the key whose value picks the Extension, for the
// configuration decoder's messages.
func (*Policy) ExtensionKey() string { return "family" }

// noParams reports whether ps holds no parameters: nil, or a nil pointer
// (a typed nil is no parameters either).
func noParams(ps Params) bool {
	if ps == nil {
		return true
	}
	v := reflect.ValueOf(ps)
	return v.Kind() == reflect.Pointer && v.IsNil()
}

// Clone returns a deep copy of p: copies of a Policy share its Params
// otherwise. The slices, maps and pointers of the Params are copied too
// (but not what unexported fields point to); a typed nil stays as it is.
// It is not for the hot path: the policy manager clones what it stores
// and hands out.
func (p Policy) Clone() Policy {
	c := p
	c.Actions = slices.Clone(p.Actions)
	c.Allow = slices.Clone(p.Allow)
	for i := range c.Actions {
		c.Actions[i].Overrides = maps.Clone(c.Actions[i].Overrides)
	}
	if !noParams(p.Params) {
		c.Params = deepCopy(reflect.ValueOf(p.Params)).Interface().(Params)
	}
	return c
}

// deepCopy returns a copy of v that shares no pointer, slice or map with
// it, down through exported struct fields; unexported fields are copied as
// they are. Params hold no cycles.
func deepCopy(v reflect.Value) reflect.Value {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return v
		}
		c := reflect.New(v.Type().Elem())
		c.Elem().Set(deepCopy(v.Elem()))
		return c
	case reflect.Interface:
		if v.IsNil() {
			return v
		}
		c := reflect.New(v.Type()).Elem()
		c.Set(deepCopy(v.Elem()))
		return c
	case reflect.Slice:
		if v.IsNil() {
			return v
		}
		c := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
		for i := range v.Len() {
			c.Index(i).Set(deepCopy(v.Index(i)))
		}
		return c
	case reflect.Map:
		if v.IsNil() {
			return v
		}
		c := reflect.MakeMapWithSize(v.Type(), v.Len())
		for it := v.MapRange(); it.Next(); {
			c.SetMapIndex(it.Key(), deepCopy(it.Value()))
		}
		return c
	case reflect.Array:
		c := reflect.New(v.Type()).Elem()
		for i := range v.Len() {
			c.Index(i).Set(deepCopy(v.Index(i)))
		}
		return c
	case reflect.Struct:
		c := reflect.New(v.Type()).Elem()
		c.Set(v)
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				c.Field(i).Set(deepCopy(v.Field(i)))
			}
		}
		return c
	}
	return v
}

// MarshalJSON writes the common fields and the family's parameters as one
// flat object.
func (p Policy) MarshalJSON() ([]byte, error) {
	common, err := json.Marshal(plain(p))
	if err != nil {
		return nil, err
	}
	if noParams(p.Params) {
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
// the keys the family takes. A JSON null leaves p as it is.
func (p *Policy) UnmarshalJSON(doc []byte) error {
	if string(bytes.TrimSpace(doc)) == "null" {
		return nil
	}
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
		if slices.Contains(valid, k) {
			continue
		}
		if len(valid) == 0 {
			return check.Errorf(k, "is not a key of a %s policy; it takes no keys besides %s", p.Family, strings.Join(commonKeys, ", "))
		}
		return check.Errorf(k, "is not a key of a %s policy; its keys are %s besides %s", p.Family, strings.Join(valid, ", "), strings.Join(commonKeys, ", "))
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
	if !noParams(p.Params) {
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
