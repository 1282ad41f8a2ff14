package pipeline

import (
	"fmt"
	"testing"

	"github.com/flowsentry/flowsentry/model"
)

// pollRecorder is a recorder that is also a Poller.
type pollRecorder struct {
	recorder
}

func (r *pollRecorder) Poll(now int64) { r.log(fmt.Sprintf("poll %d", now)) }

// TestSynchronousPoll: Poll polls the Pollers of every shard in the
// caller's goroutine, neither the other stages nor the Tickers, and only
// once a shard's stages have a model.
func TestSynchronousPoll(t *testing.T) {
	a, b := &pollRecorder{}, &pollRecorder{}
	plain, whole := &recorder{}, &recorder{}
	p, _, _ := newPipeline(t, DefaultConfig(), model.New(nil, nil, nil), [][]Stage{{a, plain}, {b}}, whole)
	p.Poll(5) // no model yet: as serve, no poll
	p.Advance(10)
	p.Poll(11)
	p.Poll(12)
	p.Advance(20)
	for name, tc := range map[string]struct {
		r    *recorder
		want string
	}{
		"poller shard 0": {&a.recorder, "[model tick poll 11 poll 12 tick]"},
		"poller shard 1": {&b.recorder, "[model tick poll 11 poll 12 tick]"},
		"plain stage":    {plain, "[model tick tick]"},
		"ticker":         {whole, "[model tick tick]"},
	} {
		t.Run(name, func(t *testing.T) {
			if got := fmtList(tc.r.snapshot()); got != tc.want {
				t.Errorf("saw %s, want %s", got, tc.want)
			}
		})
	}
}
