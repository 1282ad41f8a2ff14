package action

import (
	"context"
	"log/slog"
	"testing"

	"github.com/flowsentry/flowsentry/alert"
	"github.com/flowsentry/flowsentry/plugin"
)

// nopStore keeps nothing and hands out action IDs.
type nopStore struct{ *memStore }

func (nopStore) SaveAction(context.Context, *Action) error { return nil }
func (nopStore) AddCall(context.Context, *Call) error      { return nil }

// nopCaller returns at once and signals each call.
type nopCaller chan struct{}

func (c nopCaller) Call(context.Context, string, alert.Op, []string) plugin.Result {
	c <- struct{}{}
	return plugin.Result{}
}

// BenchmarkDispatch measures the dispatcher's own cost per plugin call:
// an UPDATE event handed over, routed to its action, the token and the
// environment built, the (no-op) call made and recorded (in a store that
// keeps nothing), one event at a time.
//
//	go test -run '^$' -bench Dispatch -benchmem -count=6 -cpu 1,2 ./action/ | benchstat -
func BenchmarkDispatch(b *testing.B) {
	calls := make(nopCaller, 1)
	al := tgrpAlert(1004, 7, 1500)
	d, err := New(Deps{
		Store: nopStore{newMemStore()}, Policies: testPolicies, Instances: instances{},
		Alerts: newAlerts(), Caller: calls, Log: slog.New(slog.DiscardHandler),
		URL: "http://127.0.0.1:8080", BinDir: "/opt/flowsentry/bin",
	})
	if err != nil {
		b.Fatal(err)
	}
	if err := d.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer d.Stop()
	d.Alert(alert.Event{Op: alert.OpCreate, Alert: al})
	<-calls
	for b.Loop() {
		d.Alert(alert.Event{Op: alert.OpUpdate, Alert: al})
		<-calls
	}
}
