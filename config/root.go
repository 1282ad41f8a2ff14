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

// Load reads the configuration file at path over Default and validates the
// result. Relative blacklist files are taken relative to the file's folder
// and made absolute. Every problem found is reported, each as an *Error.
func Load(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("read configuration: %w; give an existing file, or no file to run on the defaults", err)
	}
	return parse(path, data)
}

// parse is Load on the file's contents.
func parse(file string, data []byte) (Config, error) {
	cfg := Default()
	d := &decoder{file: file, lines: make(map[string]int)}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var root yaml.Node
	if err := dec.Decode(&root); err != nil && !errors.Is(err, io.EOF) {
		return Config{}, syntaxError(file, err)
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case err == nil:
		return Config{}, &Error{File: file, Line: next.Line, Msg: "a second YAML document starts here; a configuration file holds one, remove the \"---\""}
	case !errors.Is(err, io.EOF):
		return Config{}, syntaxError(file, err)
	}
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		d.budget = 4*countNodes(&root) + 10_000
		d.value(root.Content[0], reflect.ValueOf(&cfg).Elem(), "")
	}
	if len(d.errs) > 0 {
		return Config{}, d.joined()
	}
	dir := filepath.Dir(file)
	for i := range cfg.Model.Blacklists {
		b := &cfg.Model.Blacklists[i]
		if b.File == "" || filepath.IsAbs(b.File) {
			continue
		}
		b.File = filepath.Join(dir, b.File)
		if abs, err := filepath.Abs(b.File); err == nil {
			b.File = abs
		}
	}
	if err := cfg.Validate(); err != nil {
		for _, e := range check.Flatten(err) {
			d.locate(e)
		}
		return Config{}, d.joined()
	}
	return cfg, nil
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

var yamlLine = regexp.MustCompile(`(?s)^yaml: line (\d+): (.*)$`)

// syntaxError turns an error of the YAML parser into an *Error.
func syntaxError(file string, err error) error {
	msg := err.Error()
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &Error{File: file, Line: line, Msg: "invalid YAML: " + m[2]}
	}
	return &Error{File: file, Msg: "invalid YAML: " + strings.TrimPrefix(msg, "yaml: ")}
}

// Dump writes cfg as YAML that Load accepts and turns back into cfg.
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
