package config

import (
	"encoding"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// decoder sets Go values from a YAML node tree. It checks every key against
// the yaml tags of the target struct and every scalar against the Go type,
// collecting all problems rather than stopping at the first, and remembers
// the line of every key path so that validation errors can point into the
// file.
//
// Values written in the file replace the value already there (the default)
// as a whole, except mappings decoded into structs, which replace only the
// keys they name. A null value empties a list or a scalar and leaves a
// struct alone.
type decoder struct {
	file  string
	errs  []*Error
	lines map[string]int // key path → line of the key or list item
	// budget is how many more nodes may be visited; aliases can expand a
	// small file into an enormous tree.
	budget int
}

var durationType = reflect.TypeFor[time.Duration]()

func (d *decoder) fail(line int, format string, args ...any) {
	d.errs = append(d.errs, &Error{File: d.file, Line: line, Msg: fmt.Sprintf(format, args...)})
}

// mark records the line of path unless already known.
func (d *decoder) mark(path string, line int) {
	if _, ok := d.lines[path]; !ok {
		d.lines[path] = line
	}
}

// value decodes n into v, which must be addressable.
func (d *decoder) value(n *yaml.Node, v reflect.Value, path string) {
	d.budget--
	if d.budget < 0 {
		if d.budget == -1 {
			d.fail(n.Line, "%s: aliases expand to too many values; write the values out or use fewer aliases", label(path))
		}
		return
	}
	if n.Kind == yaml.AliasNode {
		if n.Alias == nil {
			d.fail(n.Line, "%s: alias %q names no anchor", label(path), n.Value)
			return
		}
		n = n.Alias
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		if v.Kind() != reflect.Struct {
			v.SetZero()
		}
		return
	}
	if u, ok := v.Addr().Interface().(encoding.TextUnmarshaler); ok {
		if n.Kind != yaml.ScalarNode {
			d.fail(n.Line, "%s: expected a value, not %s", label(path), describe(n))
			return
		}
		if err := u.UnmarshalText([]byte(n.Value)); err != nil {
			d.fail(n.Line, "%s: %q is not valid: %v", label(path), n.Value, err)
		}
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		d.structure(n, v, path)
	case reflect.Slice:
		d.list(n, v, path)
	case reflect.Map:
		d.mapping(n, v, path)
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.value(n, v.Elem(), path)
	case reflect.Interface, reflect.Array:
		// No config uses these; let the YAML library decode them.
		if err := n.Decode(v.Addr().Interface()); err != nil {
			d.fail(n.Line, "%s: %v", label(path), err)
		}
	default:
		d.scalar(n, v, path)
	}
}

// field is a YAML key of a struct and where it lands.
type field struct {
	key   string
	index []int
}

// fields lists the keys of struct type t in declaration order, inline
// structs expanded in place.
func fields(t reflect.Type) []field {
	var out []field
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if strings.Contains(","+opts+",", ",inline,") && f.Type.Kind() == reflect.Struct {
			for _, sub := range fields(f.Type) {
				out = append(out, field{sub.key, append([]int{i}, sub.index...)})
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out = append(out, field{name, []int{i}})
	}
	return out
}

func keyList(fs []field) string {
	keys := make([]string, len(fs))
	for i, f := range fs {
		keys[i] = f.key
	}
	return strings.Join(keys, ", ")
}

// extensible is a struct some of whose keys belong to a value it picks
// once its own keys are decoded: a policy's family parameters. Extension
// returns a pointer to that value, or an error saying why it has none;
// ExtensionKey names the key whose value picks it (family).
type extensible interface {
	Extension() (any, error)
	ExtensionKey() string
}

func (d *decoder) structure(n *yaml.Node, v reflect.Value, path string) {
	ext, _ := v.Addr().Interface().(extensible)
	fs := fields(v.Type())
	if n.Kind != yaml.MappingNode {
		d.fail(n.Line, "%s: expected a mapping with the keys %s, not %s", label(path), keyList(fs), describe(n))
		return
	}
	// Merged mappings ("<<: *anchor") first: keys written out override
	// them wherever they stand.
	for i := 0; i+1 < len(n.Content); i += 2 {
		if isMerge(n.Content[i]) {
			d.merge(n.Content[i+1], v, path)
		}
	}
	seen := make(map[string]int, len(n.Content)/2)
	var rest []*yaml.Node // keys and values for the extension
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if isMerge(k) {
			continue
		}
		if k.Kind != yaml.ScalarNode {
			d.fail(k.Line, "%s: a key must be a name, not %s", label(path), describe(k))
			continue
		}
		if first, dup := seen[k.Value]; dup {
			d.fail(k.Line, "key %q is repeated %s (first on line %d); keep one", k.Value, in(path), first)
			continue
		}
		seen[k.Value] = k.Line
		i := indexOf(fs, k.Value)
		if i < 0 && ext != nil {
			rest = append(rest, k, val)
			continue
		}
		if i < 0 {
			d.fail(k.Line, "unknown key %q %s; valid keys: %s", k.Value, in(path), keyList(fs))
			continue
		}
		sub := k.Value
		if path != "" {
			sub = path + "." + k.Value
		}
		d.mark(sub, k.Line)
		d.value(val, v.FieldByIndex(fs[i].index), sub)
	}
	if ext != nil {
		d.extension(ext, rest, n, path, keyList(fs))
	}
}

// extension decodes the keys of an extensible struct that are not its own
// into the value it picks; unknown keys are reported with both lists.
func (d *decoder) extension(ext extensible, rest []*yaml.Node, n *yaml.Node, path, own string) {
	target, err := ext.Extension()
	if err != nil {
		if len(rest) > 0 {
			keys := make([]string, 0, len(rest)/2)
			for i := 0; i < len(rest); i += 2 {
				keys = append(keys, rest[i].Value)
			}
			d.fail(d.keyLine(n, path, ext.ExtensionKey(), rest[0].Line), "%s: %v (it says what the keys %s mean)", label(path), err, strings.Join(keys, ", "))
		}
		return
	}
	tv := reflect.ValueOf(target).Elem()
	fs := fields(tv.Type())
	var known []*yaml.Node
	for i := 0; i+1 < len(rest); i += 2 {
		if indexOf(fs, rest[i].Value) < 0 {
			d.fail(rest[i].Line, "unknown key %q %s; valid keys: %s, %s", rest[i].Value, in(path), own, keyList(fs))
			continue
		}
		known = append(known, rest[i], rest[i+1])
	}
	d.structure(&yaml.Node{Kind: yaml.MappingNode, Line: n.Line, Column: n.Column, Content: known}, tv, path)
}

// keyLine returns the line of key in mapping n at path: where n writes it,
// else where a merged mapping did, else line.
func (d *decoder) keyLine(n *yaml.Node, path, key string, line int) int {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := n.Content[i]; k.Kind == yaml.ScalarNode && !isMerge(k) && k.Value == key {
			return k.Line
		}
	}
	if path != "" {
		key = path + "." + key
	}
	if l, ok := d.lines[key]; ok {
		return l
	}
	return line
}

func indexOf(fs []field, key string) int {
	for i, f := range fs {
		if f.key == key {
			return i
		}
	}
	return -1
}

func isMerge(k *yaml.Node) bool {
	return k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge"
}

// merge applies a merge key's value: a mapping or a list of mappings, of
// which the earlier win.
func (d *decoder) merge(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n.Kind != yaml.SequenceNode {
		d.value(n, v, path)
		return
	}
	for i := len(n.Content) - 1; i >= 0; i-- {
		d.value(n.Content[i], v, path)
	}
}

func (d *decoder) list(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.SequenceNode {
		d.fail(n.Line, "%s: expected a list, not %s; write each item on its own line after \"- \", or [a, b]", label(path), describe(n))
		return
	}
	if len(n.Content) == 0 {
		v.SetZero()
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		sub := fmt.Sprintf("%s[%d]", path, i)
		d.mark(sub, item.Line)
		d.value(item, s.Index(i), sub)
	}
	v.Set(s)
}

func (d *decoder) mapping(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.fail(n.Line, "%s: expected a mapping, not %s", label(path), describe(n))
		return
	}
	m := reflect.MakeMapWithSize(v.Type(), len(n.Content)/2)
	seen := make(map[string]int, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.fail(k.Line, "%s: a key must be a value, not %s", label(path), describe(k))
			continue
		}
		if first, dup := seen[k.Value]; dup {
			d.fail(k.Line, "key %q is repeated %s (first on line %d); keep one", k.Value, in(path), first)
			continue
		}
		seen[k.Value] = k.Line
		sub := k.Value
		if path != "" {
			sub = path + "." + k.Value
		}
		d.mark(sub, k.Line)
		key := reflect.New(v.Type().Key()).Elem()
		d.value(k, key, sub)
		elem := reflect.New(v.Type().Elem()).Elem()
		d.value(val, elem, sub)
		m.SetMapIndex(key, elem)
	}
	v.Set(m)
}

func (d *decoder) scalar(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.ScalarNode {
		d.fail(n.Line, "%s: expected a value, not %s", label(path), describe(n))
		return
	}
	s := n.Value
	if v.Type() == durationType {
		dur, err := time.ParseDuration(s)
		if err != nil {
			d.fail(n.Line, "%s: %q is not a duration; write a number and a unit, e.g. \"30s\", \"5m\" or \"1h\"", path, s)
			return
		}
		v.SetInt(int64(dur))
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Bool:
		switch s {
		case "true", "True", "TRUE":
			v.SetBool(true)
		case "false", "False", "FALSE":
			v.SetBool(false)
		default:
			d.fail(n.Line, "%s: %q is not valid; use true or false", path, s)
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		bits := v.Type().Bits()
		i, err := strconv.ParseInt(s, intBase(s), bits)
		switch {
		case errors.Is(err, strconv.ErrRange):
			d.fail(n.Line, "%s: %q is out of range; use an integer from %d to %d", path, s, int64(-1)<<(bits-1), int64(1)<<(bits-1)-1)
		case err != nil:
			d.fail(n.Line, "%s: %q is not an integer", path, s)
		default:
			v.SetInt(i)
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		bits := v.Type().Bits()
		u, err := strconv.ParseUint(strings.TrimPrefix(s, "+"), intBase(s), bits)
		if err != nil {
			if _, ierr := strconv.ParseInt(s, intBase(s), 64); errors.Is(err, strconv.ErrRange) || ierr == nil {
				d.fail(n.Line, "%s: %q is out of range; use an integer from 0 to %d", path, s, uint64(math.MaxUint64)>>(64-bits))
			} else {
				d.fail(n.Line, "%s: %q is not an integer", path, s)
			}
			return
		}
		v.SetUint(u)
	case reflect.Float32, reflect.Float64:
		f, err := strconv.ParseFloat(s, v.Type().Bits())
		if err != nil {
			d.fail(n.Line, "%s: %q is not a number", path, s)
			return
		}
		v.SetFloat(f)
	default:
		d.fail(n.Line, "%s: values of Go type %s cannot be configured; this is a bug in flowsentry", path, v.Type())
	}
}

// intBase is 10, unless s has a 0x, 0o or 0b prefix: a leading 0 alone does
// not make an octal number of an ifIndex.
func intBase(s string) int {
	s = strings.TrimLeft(s, "+-")
	if len(s) > 1 && s[0] == '0' && strings.ContainsRune("xXoObB", rune(s[1])) {
		return 0
	}
	return 10
}

// describe names what a node is, for messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	}
	return strconv.Quote(n.Value)
}

// label is a key path for messages.
func label(path string) string {
	if path == "" {
		return "top level"
	}
	return path
}

// in says where a key is, for messages.
func in(path string) string {
	if path == "" {
		return "at the top level"
	}
	return "in " + path
}

// countNodes counts the nodes of the tree under n without following
// aliases, to size the visiting budget.
func countNodes(n *yaml.Node) int {
	c := 1
	for _, sub := range n.Content {
		c += countNodes(sub)
	}
	return c
}
