package detecttest

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/flowsentry/flowsentry/alert"
)

func TestRecorder(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	a1 := alert.Condition{Key: "a", Type: "x", Fields: []alert.Field{{Name: "N", Value: "1"}}}
	b := alert.Condition{Key: "b", Type: "y"}
	a2 := alert.Condition{Key: "a", Type: "x", Fields: []alert.Field{{Name: "N", Value: "2"}}}
	var r Recorder
	r.Observe(t0, a1)
	r.Observe(t0, b)
	r.Commit()
	r.Observe(t0.Add(time.Second), a2)
	if len(r.Got) != 3 || r.Commits != 1 || !r.Got[2].Time.Equal(t0.Add(time.Second)) {
		t.Fatalf("got %+v, %d commits", r.Got, r.Commits)
	}
	tests := []struct {
		name      string
		got, want any
	}{
		{"conditions", r.Conditions(), []alert.Condition{a1, b, a2}},
		{"last", r.Last(), map[string]alert.Condition{"a": a2, "b": b}},
		{"types", r.Types(), []string{"x", "y"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.got, tt.want); diff != "" {
				t.Errorf("(-got +want):\n%s", diff)
			}
		})
	}
	r.Reset()
	if len(r.Got) != 0 || r.Commits != 0 {
		t.Errorf("after Reset: %d observations, %d commits", len(r.Got), r.Commits)
	}
}

func TestFields(t *testing.T) {
	c := alert.Condition{Fields: []alert.Field{
		{Name: "PORT", Value: "80", Number: true},
		{Name: "SOURCES", IsList: true, List: []string{"192.0.2.0/24", "198.51.100.0/24"}},
		{Name: "EMPTY", IsList: true},
	}}
	want := map[string]string{"PORT": "80", "SOURCES": "192.0.2.0/24 198.51.100.0/24", "EMPTY": ""}
	if diff := cmp.Diff(Fields(c), want); diff != "" {
		t.Errorf("Fields (-got +want):\n%s", diff)
	}
	for _, tt := range []struct{ name, want string }{{"PORT", "80"}, {"SOURCES", "192.0.2.0/24 198.51.100.0/24"}, {"MISSING", ""}} {
		t.Run(tt.name, func(t *testing.T) {
			if got := Field(c, tt.name); got != tt.want {
				t.Errorf("Field(%s) = %q, want %q", tt.name, got, tt.want)
			}
		})
	}
}

func TestCheckError(t *testing.T) {
	for _, tt := range []struct {
		name string
		err  error
		want string
	}{
		{"no error wanted", nil, ""},
		{"error contains want", errors.New("threshold: must be above 0; set it"), "threshold: must be above 0"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			CheckError(t, tt.err, tt.want)
		})
	}
}
