// Package config composes the configuration of every component into the
// root configuration of flowsentry, loads it from YAML with errors that name
// the file, line and key, and prints the effective configuration.
//
// A file replaces the defaults key by key: a key written in the file
// replaces the default value as a whole (a list is not merged with the
// default list), a key left out keeps its default.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/flowsentry/flowsentry/config/check"
)

// Error is one problem in a configuration file. Load returns them joined
// with errors.Join, in line order, so that printing the error shows one
// problem a line.
type Error struct {
	// File is the configuration file as given to Load.
	File string
	// Line is the 1-based line of the problem; 0 when it is on no line:
	// a default value the file does not set, or YAML too broken to tell.
	Line int
	// Msg names the key, says what is wrong and what would be valid.
	Msg string
}

// Error formats the problem as "FILE:LINE: MSG", or "FILE: MSG" without a
// line.
func (e *Error) Error() string {
	if e.Line == 0 {
		return e.File + ": " + e.Msg
	}
	return e.File + ":" + strconv.Itoa(e.Line) + ": " + e.Msg
}

// File is a configuration as loaded: the values, and where in the file
// each key was written, so that problems found after loading (references
// between policies, instances and traffic groups; plugin values) can be
// reported at their file and line too.
type File struct {
	// Config is the loaded configuration.
	Config Config
	// path is the file ("" for the embedded default); lines maps key
	// paths to their lines.
	path  string
	lines map[string]int
}

// Embedded returns the embedded default configuration as a File, its
// relative paths made absolute against the working directory.
func Embedded() *File {
	cfg := Default()
	cfg.DataDir, cfg.PluginDir = resolve(".", cfg.DataDir), resolve(".", cfg.PluginDir)
	return &File{Config: cfg}
}

// Load reads the configuration file at path over Default and validates the
// result. Relative paths in it (data_dir, plugin_dir, blacklist files) are
// taken relative to the file's folder and made absolute. Every problem
// found is reported, each as an *Error.
func Load(path string) (Config, error) {
	f, err := Read(path)
	if err != nil {
		return Config{}, err
	}
	return f.Config, nil
}

// Read is Load keeping the lines of the keys for File.Locate.
func Read(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read configuration: %w; give an existing file, or no file to run on the defaults", err)
	}
	return parseFile(path, data)
}

// parse is Load on the file's contents.
func parse(file string, data []byte) (Config, error) {
	f, err := parseFile(file, data)
	if err != nil {
		return Config{}, err
	}
	return f.Config, nil
}

func parseFile(file string, data []byte) (*File, error) {
	cfg := Default()
	d, err := decodeFile(file, data, &cfg)
	if err != nil {
		return nil, err
	}
	dir := filepath.Dir(file)
	cfg.DataDir = resolve(dir, cfg.DataDir)
	cfg.PluginDir = resolve(dir, cfg.PluginDir)
	for i := range cfg.Model.Blacklists {
		b := &cfg.Model.Blacklists[i]
		b.File = resolve(dir, b.File)
	}
	if err := cfg.Validate(); err != nil {
		for _, e := range check.Flatten(err) {
			d.locate(e)
		}
		return nil, d.joined()
	}
	return &File{Config: cfg, path: file, lines: d.lines}, nil
}

// resolve makes a relative path absolute against dir, the folder of the
// configuration file; empty and absolute paths stay as they are.
func resolve(dir, path string) string {
	if path == "" || filepath.IsAbs(path) {
		return path
	}
	p := filepath.Join(dir, path)
	if abs, err := filepath.Abs(p); err == nil {
		return abs
	}
	return p
}

// Locate turns the *check.Error values in err (key paths from the top of
// the file, joined at any depth) into *Error values at the line of their
// key, in line order; other errors get the file's name. For the embedded
// default it returns err with each problem on its own line.
func (f *File) Locate(err error) error {
	if err == nil {
		return nil
	}
	if f.path == "" {
		return errors.Join(check.Flatten(err)...)
	}
	d := &decoder{file: f.path, lines: f.lines}
	for _, e := range check.Flatten(err) {
		d.locate(e)
	}
	return d.joined()
}

// decodeFile decodes the YAML document in data into the struct v points
// to, returning the decoder, which knows the line of every key.
func decodeFile(file string, data []byte, v any) (*decoder, error) {
	d := &decoder{file: file, lines: make(map[string]int)}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var root yaml.Node
	if err := dec.Decode(&root); err != nil && !errors.Is(err, io.EOF) {
		return nil, syntaxError(file, data, err)
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case err == nil:
		return nil, &Error{File: file, Line: next.Line, Msg: "a second YAML document begins here; a configuration file holds one document, so remove this \"---\""}
	case !errors.Is(err, io.EOF):
		return nil, syntaxError(file, data, err)
	}
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		d.budget = 4*countNodes(&root) + 10_000
		d.value(root.Content[0], reflect.ValueOf(v).Elem(), "")
	}
	if len(d.errs) > 0 {
		return nil, d.joined()
	}
	return d, nil
}

// locate records a validation error at the line of its key path, or of the
// closest enclosing key the file sets.
func (d *decoder) locate(err error) {
	var ce *check.Error
	if !errors.As(err, &ce) {
		d.errs = append(d.errs, &Error{File: d.file, Msg: err.Error()})
		return
	}
	for p := ce.Path; p != ""; p = p[:max(strings.LastIndexAny(p, ".["), 0)] {
		if line, ok := d.lines[p]; ok {
			d.errs = append(d.errs, &Error{File: d.file, Line: line, Msg: ce.Error()})
			return
		}
	}
	msg := ce.Msg
	if ce.Path != "" {
		msg = ce.Path + " (a default, not set in the file): " + ce.Msg
	}
	d.errs = append(d.errs, &Error{File: d.file, Msg: msg})
}

// joined returns the errors in line order, joined.
func (d *decoder) joined() error {
	slices.SortStableFunc(d.errs, func(a, b *Error) int { return a.Line - b.Line })
	errs := make([]error, len(d.errs))
	for i, e := range d.errs {
		errs[i] = e
	}
	return errors.Join(errs...)
}

var (
	yamlLine      = regexp.MustCompile(`(?s)^yaml: line (\d+): (.*)$`)
	unknownAnchor = regexp.MustCompile(`^unknown anchor '(.*)' referenced$`)
)

// parserProblems are the messages of the YAML parser (as opposed to its
// scanner), whose "line N" go-yaml v3 reports 0-based, and omits for 0.
var parserProblems = map[string]bool{
	"did not find expected ',' or ']'":       true,
	"did not find expected ',' or '}'":       true,
	"did not find expected '-' indicator":    true,
	"did not find expected <document start>": true,
	"did not find expected <stream-start>":   true,
	"did not find expected key":              true,
	"did not find expected node content":     true,
	"found duplicate %TAG directive":         true,
	"found duplicate %YAML directive":        true,
	"found incompatible YAML document":       true,
	"found undefined tag handle":             true,
}

// syntaxError turns an error of the YAML library into an *Error at the
// right line of data.
func syntaxError(file string, data []byte, err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
	}
	if parserProblems[msg] {
		line++
	}
	if m := unknownAnchor.FindStringSubmatch(msg); m != nil {
		for i, l := range bytes.Split(data, []byte("\n")) {
			if bytes.Contains(l, []byte("*"+m[1])) {
				line = i + 1
				break
			}
		}
	}
	// At the end of the input the library may point past the last line.
	return &Error{File: file, Line: min(line, max(countLines(data), 1)), Msg: "invalid YAML: " + msg}
}

// countLines counts the lines of data as YAML does: "\n", "\r\n", "\r",
// NEL, LS and PS end a line; a last line without an end counts.
func countLines(data []byte) int {
	s := strings.ReplaceAll(string(data), "\r\n", "\n")
	n := 0
	last := '\n'
	for _, r := range s {
		switch r {
		case '\n', '\r', '\u0085', '\u2028', '\u2029':
			n++
			last = '\n'
		default:
			last = r
		}
	}
	if last != '\n' {
		n++
	}
	return n
}

// Dump writes cfg as YAML that Load accepts and turns back into cfg (for a
// cfg that validates; Load makes relative paths absolute, so a cfg from
// Load round-trips wherever the dump is written).
func Dump(w io.Writer, cfg Config) error {
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(cfg); err != nil {
		return fmt.Errorf("dump configuration: %w", err)
	}
	if err := enc.Close(); err != nil {
		return fmt.Errorf("dump configuration: %w", err)
	}
	return nil
}
