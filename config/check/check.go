// Package check holds the error type that configuration validation returns,
// so that the loader can point at the file, line and key of every problem.
// Component packages use it in their Config.Validate methods.
package check

import (
	"errors"
	"fmt"
)

// Error is a validation problem at a key path such as
// "traffic_groups[2].cidrs[0]", relative to the component's own config.
type Error struct {
	// Path is the dotted key path; list items are written "[i]".
	Path string
	// Msg says what is wrong and what would be valid.
	Msg string
}

// Error formats the problem as "PATH: MSG".
func (e *Error) Error() string {
	if e.Path == "" {
		return e.Msg
	}
	return e.Path + ": " + e.Msg
}

// Errorf returns an *Error at path.
func Errorf(path, format string, args ...any) error {
	return &Error{Path: path, Msg: fmt.Sprintf(format, args...)}
}

// Prefix puts prefix in front of the path of every *Error in err (which may
// be a join of several, nested or not), so a parent config can validate its
// children. Other errors become an *Error at prefix.
func Prefix(prefix string, err error) error {
	if err == nil {
		return nil
	}
	list := Flatten(err)
	out := make([]error, 0, len(list))
	for _, e := range list {
		var ce *Error
		if errors.As(e, &ce) {
			p := prefix
			if ce.Path != "" {
				if ce.Path[0] == '[' {
					p += ce.Path
				} else {
					p += "." + ce.Path
				}
			}
			out = append(out, &Error{Path: p, Msg: ce.Msg})
			continue
		}
		out = append(out, &Error{Path: prefix, Msg: e.Error()})
	}
	return errors.Join(out...)
}

// Flatten returns the errors joined in err, at any depth of errors.Join, in
// order; nil for nil.
func Flatten(err error) []error {
	if err == nil {
		return nil
	}
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return []error{err}
	}
	var out []error
	for _, e := range j.Unwrap() {
		out = append(out, Flatten(e)...)
	}
	return out
}
