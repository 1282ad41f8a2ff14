package action

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/flowsentry/flowsentry/alert"
)

func TestCallJSON(t *testing.T) {
	for _, tc := range []struct {
		name   string
		output []byte
		want   string
	}{
		{"text", []byte("blocked 10.0.0.1\n"), `"output":"blocked 10.0.0.1\n"`},
		{"invalid bytes replaced", []byte("a\xffb\xc3"), `"output":"a\ufffdb\ufffd"`},
		{"none", nil, `"output":""`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := json.Marshal(Call{Action: 7, Op: alert.OpCreate, Output: tc.output})
			if err != nil {
				t.Fatal(err)
			}
			// encoding/json escapes U+FFFD as itself; compare decoded.
			var got, want map[string]any
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal([]byte("{"+tc.want+"}"), &want); err != nil {
				t.Fatal(err)
			}
			if got["output"] != want["output"] || got["action"] != float64(7) || got["op"] != "CREATE" {
				t.Errorf("JSON %s, want output %q", b, want["output"])
			}
			if strings.Count(string(b), `"output"`) != 1 {
				t.Errorf("JSON %s has output twice", b)
			}
		})
	}
}

// TestList checks the dispatcher's list: its bounds, and that it shows
// the actions it holds in their current state.
func TestList(t *testing.T) {
	r := newRig(t, newMemStore(), newAlerts())
	r.event(alert.OpCreate, tgrpAlert(1004, 9, 1500)) // action 7 automatic, 8 waiting
	r.settle()
	for _, q := range []Query{{All: true}, {All: true, Limit: MaxList + 1}, {All: true, Limit: 1, Offset: -1}} {
		if _, err := r.d.List(ctx, q); err == nil || !strings.Contains(err.Error(), "use a limit from 1 to 1000") {
			t.Errorf("List(%+v) error = %v, want one naming the bounds", q, err)
		}
	}
	page, err := r.d.List(ctx, Query{All: true, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	var got []State
	for _, l := range page.Actions {
		got = append(got, l.State)
	}
	if diff := cmp.Diff(got, []State{StateWaiting, StateInProgress}); diff != "" {
		t.Errorf("states, waiting first (-got +want):\n%s", diff)
	}
	if diff := cmp.Diff(page.Counts, map[State]int{StateWaiting: 1, StateInProgress: 1}); diff != "" {
		t.Errorf("counts (-got +want):\n%s", diff)
	}
}
