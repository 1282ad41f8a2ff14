package plugin

import "fmt"

// Warning is a repair the tolerant gui.json reader made: where (1-based
// line and byte column in the original file) and what it assumed.
type Warning struct {
	Line   int
	Column int
	// Msg says what was wrong and what was assumed.
	Msg string
}

// String formats the warning as "line L, column C: MSG".
func (w Warning) String() string {
	return fmt.Sprintf("line %d, column %d: %s", w.Line, w.Column, w.Msg)
}

// States of the repair scanner, per open container.
const (
	stValue = iota // a value may come (or, at the start of an array, "]")
	stKey          // an object key may come (or, at the start, "}")
	stColon        // a key was read, ":" must come
	stAfter        // a value was read: "," or the closing bracket must come
)

type frame struct {
	obj   bool
	state int
}

// edit is one change the repair made: at offset out of the repaired text,
// delta bytes were inserted (+1) or deleted (-1).
type edit struct {
	out   int
	delta int
}

// repair is the result of Repair, with what is needed to map offsets of the
// repaired text back to the original.
type repair struct {
	out      []byte
	warnings []Warning
	edits    []edit
}

// Repair fixes the two mistakes of the gui.json example printed in the
// FlowTraq manual, which real plugins copied: a missing "," between two
// values of an array or two members of an object, and a "," right before
// "]" or "}". It returns the repaired text and one warning per repair.
// Input that is valid JSON is returned unchanged with no warnings. Repair
// stops repairing at the first problem of another kind and leaves it for
// the JSON decoder to report.
func Repair(data []byte) ([]byte, []Warning) {
	r := repairJSON(data)
	return r.out, r.warnings
}

func repairJSON(data []byte) repair {
	var r repair
	out := make([]byte, 0, len(data)+8)
	stack := []frame{{state: stValue}} // the top level
	// prev describes the end of the last value, for warnings.
	prev := ""
	i := 0
	bail := func() repair {
		out = append(out, data[i:]...)
		if len(r.edits) == 0 {
			r.out = data
		} else {
			r.out = out
		}
		return r
	}
	warn := func(at int, format string, args ...any) {
		line, col := position(data, at)
		r.warnings = append(r.warnings, Warning{Line: line, Column: col, Msg: fmt.Sprintf(format, args...)})
	}
	// comma inserts a missing "," when a value (in an array) or a key (in
	// an object) starts right after a value.
	comma := func(next string) {
		top := &stack[len(stack)-1]
		if top.state != stAfter || len(stack) == 1 {
			return
		}
		if top.obj && next != `'"'` {
			return
		}
		warn(i, "missing ',' between %s and %s; assumed one", prev, next)
		r.edits = append(r.edits, edit{out: len(out), delta: 1})
		out = append(out, ',')
		if top.obj {
			top.state = stKey
		} else {
			top.state = stValue
		}
	}
	for i < len(data) {
		c := data[i]
		top := &stack[len(stack)-1]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			out = append(out, c)
			i++
		case c == '"':
			comma(`'"'`)
			end := stringEnd(data, i)
			if end < 0 {
				return bail()
			}
			switch top.state {
			case stKey:
				top.state = stColon
			case stValue:
				top.state = stAfter
				prev = "a string"
			default:
				return bail()
			}
			out = append(out, data[i:end]...)
			i = end
		case c == ':':
			if top.state != stColon {
				return bail()
			}
			top.state = stValue
			out = append(out, c)
			i++
		case c == ',':
			if top.state != stAfter || len(stack) == 1 {
				return bail()
			}
			j := skipSpace(data, i+1)
			if j < len(data) && (data[j] == '}' || data[j] == ']') {
				warn(i, "trailing ',' before '%c'; ignored", data[j])
				r.edits = append(r.edits, edit{out: len(out), delta: -1})
				i++
				continue
			}
			if top.obj {
				top.state = stKey
			} else {
				top.state = stValue
			}
			out = append(out, c)
			i++
		case c == '{' || c == '[':
			comma(fmt.Sprintf("'%c'", c))
			top = &stack[len(stack)-1]
			if top.state != stValue {
				return bail()
			}
			top.state = stAfter
			if c == '{' {
				stack = append(stack, frame{obj: true, state: stKey})
			} else {
				stack = append(stack, frame{state: stValue})
			}
			out = append(out, c)
			i++
		case c == '}' || c == ']':
			closesObj := c == '}'
			ok := len(stack) > 1 && top.obj == closesObj &&
				(top.state == stAfter || (closesObj && top.state == stKey) || (!closesObj && top.state == stValue))
			if !ok {
				return bail()
			}
			stack = stack[:len(stack)-1]
			prev = fmt.Sprintf("'%c'", c)
			out = append(out, c)
			i++
		case c == '-' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z'):
			comma("a value")
			top = &stack[len(stack)-1]
			if top.state != stValue {
				return bail()
			}
			end := i
			for end < len(data) && isWordByte(data[end]) {
				end++
			}
			top.state = stAfter
			prev = "a value"
			out = append(out, data[i:end]...)
			i = end
		default:
			return bail()
		}
	}
	return bail()
}

// stringEnd returns the offset just past the string that starts at i, or
// -1 when it does not end.
func stringEnd(data []byte, i int) int {
	for j := i + 1; j < len(data); j++ {
		switch data[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return -1
}

func skipSpace(data []byte, i int) int {
	for i < len(data) && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r') {
		i++
	}
	return i
}

func isWordByte(c byte) bool {
	return c == '-' || c == '+' || c == '.' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

// original maps an offset in the repaired text to the original text.
func (r *repair) original(off int) int {
	orig := off
	for _, e := range r.edits {
		// An inserted byte shifts what follows it; a deleted one shifts
		// what now stands in its place too.
		if e.out < off || (e.delta < 0 && e.out == off) {
			orig -= e.delta
		}
	}
	return orig
}

// position returns the 1-based line and byte column of offset off.
func position(data []byte, off int) (line, col int) {
	off = min(max(off, 0), len(data))
	line, col = 1, 1
	for _, c := range data[:off] {
		if c == '\n' {
			line++
			col = 1
		} else {
			col++
		}
	}
	return line, col
}
