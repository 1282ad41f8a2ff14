// Package detecttest holds what the detector families' tests share: a
// fake alert engine (Recorder) that records what a stage observes, the
// reading of a condition's fields (Fields, Field), and the set-up of the
// policies a stage evaluates (NewManager). It is for tests only; no
// production package imports it.
package detecttest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/flowsentry/flowsentry/alert"
	"github.com/flowsentry/flowsentry/detect"
	"github.com/flowsentry/flowsentry/policy"
)

// Observation is one condition a stage observed, with the time it gave.
type Observation struct {
	// Time is the now passed to Observe.
	Time time.Time
	alert.Condition
}

// Recorder is a fake alert engine: a detect.Observer that records every
// observation, in order, and counts the commits. Its zero value is ready
// to use. It is not safe for concurrent use: drive shards one at a time,
// as the family harnesses do.
type Recorder struct {
	// Got are the observations, in the order they were made.
	Got []Observation
	// Commits counts the calls of Commit.
	Commits int
}

var _ detect.Observer = (*Recorder)(nil)

// Observe records c as observed at now.
func (r *Recorder) Observe(now time.Time, c alert.Condition) {
	r.Got = append(r.Got, Observation{Time: now, Condition: c})
}

// Commit counts a commit.
func (r *Recorder) Commit() { r.Commits++ }

// Reset forgets the observations and the commits.
func (r *Recorder) Reset() {
	r.Got = nil
	r.Commits = 0
}

// Conditions returns the conditions observed, in order, without their
// times.
func (r *Recorder) Conditions() []alert.Condition {
	out := make([]alert.Condition, 0, len(r.Got))
	for _, o := range r.Got {
		out = append(out, o.Condition)
	}
	return out
}

// Last returns the last condition observed for each key.
func (r *Recorder) Last() map[string]alert.Condition {
	out := map[string]alert.Condition{}
	for _, o := range r.Got {
		out[o.Key] = o.Condition
	}
	return out
}

// Types returns the distinct alert types observed, in the order of their
// first observation.
func (r *Recorder) Types() []string {
	var out []string
	seen := map[string]bool{}
	for _, o := range r.Got {
		if !seen[o.Type] {
			seen[o.Type] = true
			out = append(out, o.Type)
		}
	}
	return out
}

// Fields returns c's fields by name, the values of a list joined by
// spaces (as the plugins' environment carries them).
func Fields(c alert.Condition) map[string]string {
	out := map[string]string{}
	for _, f := range c.Fields {
		out[f.Name] = value(f)
	}
	return out
}

// Field returns the value of c's first field called name, a list joined
// by spaces; "" when c has none.
func Field(c alert.Condition, name string) string {
	for _, f := range c.Fields {
		if f.Name == name {
			return value(f)
		}
	}
	return ""
}

func value(f alert.Field) string {
	if f.IsList {
		return strings.Join(f.List, " ")
	}
	return f.Value
}

// NewManager returns a policy manager, kept in memory, holding policies;
// a stage under test reads them through its Set method (detect.Deps
// Policies). It fails tb when the policies do not load.
func NewManager(tb testing.TB, policies ...policy.Policy) *policy.Manager {
	tb.Helper()
	pm := policy.NewManager(&policy.MemStore{}, nil)
	if err := pm.Load(context.Background(), policies, nil); err != nil {
		tb.Fatal(err)
	}
	return pm
}

// CheckError fails tb at once unless err is as wanted: nil when want is
// "", else an error whose text contains want (a Validate's "key: what is
// wrong; how to fix").
func CheckError(tb testing.TB, err error, want string) {
	tb.Helper()
	switch {
	case want == "" && err != nil:
		tb.Fatalf("unexpected error: %v", err)
	case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
		tb.Fatalf("error %v, want it to contain %q", err, want)
	}
}
