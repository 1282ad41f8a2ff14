// Package plugin implements FlowTraq plugins: a folder holding gui.json
// and the executable it names.
//
// gui.json is read tolerantly (the manual's own example lacks a comma and
// has a trailing one; each repair is a Warning) and validated: required
// keys, fieldspec types int, text, boolean and password, min/max,
// minlength/maxlength, defaults, allowOverride, containers and
// update_fields. Every problem is an *Error naming the plugin, the field
// and the rule.
//
// A Registry holds the plugins of the plugin folder and rescans it on
// reload. Instances configure a plugin for a partition; ValidateValues and
// ValidateOverrides check their values. Env, Number and Path build the
// plugin's side of a call's environment; the action package adds the
// alert's variables.
//
// The Runner calls a plugin's executable directly, never through a shell,
// with the operation as its only argument, in the plugin's folder, with
// exactly the environment given; under a time limit (SIGTERM to the whole
// process group, then SIGKILL), with bounded concurrency, keeping the exit
// code, the duration and the first 64 KiB of output. When a call returns,
// the processes it left behind are killed: the rest of its process group,
// and those that left the group (setsid) but carry the call's TKN.
package plugin

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// SpecFile is the name of the plugin definition in a plugin folder.
const SpecFile = "gui.json"

// Plugin is one plugin folder. A Plugin is immutable once loaded and safe
// for concurrent use; a rescan makes new ones.
type Plugin struct {
	// Name is the folder's name, which instances refer to.
	Name string
	// Dir is the folder's absolute path, the working folder of calls.
	Dir string
	// Executable is the absolute path of the program to run.
	Executable string
	// Spec is the gui.json, as far as it could be read.
	Spec Spec
	// Warnings are the repairs made to read gui.json.
	Warnings []Warning
	// Err joins the plugin's problems (each an *Error); nil when the
	// plugin is valid. Calls to an invalid plugin fail with this error.
	Err error
}

// LoadDir loads the plugin in folder dir, named after the folder. It
// always returns a Plugin; a plugin that cannot be used has Err set.
func LoadDir(dir string) *Plugin {
	abs, err := filepath.Abs(dir)
	if err != nil {
		abs = filepath.Clean(dir)
	}
	p := &Plugin{Name: filepath.Base(abs), Dir: abs}
	data, err := os.ReadFile(filepath.Join(abs, SpecFile))
	if err != nil {
		p.Err = &Error{Plugin: p.Name, Rule: fmt.Sprintf("cannot read %s: %v; a plugin folder needs one", SpecFile, unwrapPath(err))}
		return p
	}
	p.Spec, p.Warnings, p.Err = ParseSpec(p.Name, data)
	if p.Spec.Executable != "" && filepath.IsLocal(p.Spec.Executable) {
		p.Executable = filepath.Join(abs, p.Spec.Executable)
		if err := checkExecutable(p.Name, p.Executable); err != nil {
			p.Err = errors.Join(p.Err, err)
		}
	}
	return p
}

// checkExecutable reports an executable that is missing or not runnable.
func checkExecutable(name, path string) error {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return &Error{Plugin: name, Rule: fmt.Sprintf("executable missing: %s; put the program there or correct \"executable\" in %s", path, SpecFile)}
	case err != nil:
		return &Error{Plugin: name, Rule: fmt.Sprintf("executable %s: %v", path, unwrapPath(err))}
	case fi.IsDir():
		return &Error{Plugin: name, Rule: fmt.Sprintf("executable %s is a folder; \"executable\" in %s must name a program", path, SpecFile)}
	case fi.Mode().Perm()&0o111 == 0:
		return &Error{Plugin: name, Rule: fmt.Sprintf("executable %s is not executable; run chmod +x on it", path)}
	}
	return nil
}

// unwrapPath drops the path a *fs.PathError repeats.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
