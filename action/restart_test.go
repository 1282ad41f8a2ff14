package action

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/flowsentry/flowsentry/alert"
)

func TestStartAfterCrash(t *testing.T) {
	ended := func(al alert.Alert) alert.Alert { al.Ended = t0.Add(time.Hour); return al }
	inProgress := Action{ID: 7, Alert: 1004, Policy: 7, Instance: 1, Plugin: "email", State: StateInProgress, Created: t0, Updated: t0}
	waiting := Action{ID: 7, Alert: 1004, Policy: 8, Instance: 2, Plugin: "mitigate", State: StateWaiting, Created: t0, Updated: t0}
	restarted := inProgress
	restarted.Updated = t0.Add(2 * time.Minute)
	create := Call{Action: 7, Op: alert.OpCreate, Start: t0}
	deleted := Call{Action: 7, Op: alert.OpDelete, Start: t0.Add(time.Minute)}
	deleting := inProgress
	deleting.Updated = deleted.Start

	for _, tc := range []struct {
		name    string
		actions []Action
		calls   []Call
		alerts  []alert.Alert
		after   func(r *rig)
		want    []string
		state   State
	}{
		{
			name:    "DELETE of the alert not sent: sent now",
			actions: []Action{inProgress}, calls: []Call{create}, alerts: []alert.Alert{ended(tgrpAlert(1004, 7, 1500))},
			want:  []string{"email DELETE alert=1004 aid=7 cur=1500.00"},
			state: StateEnded,
		},
		{
			name:    "alert open: nothing now, its next UPDATE is sent",
			actions: []Action{inProgress}, calls: []Call{create}, alerts: []alert.Alert{tgrpAlert(1004, 7, 1500)},
			after: func(r *rig) { r.event(alert.OpUpdate, tgrpAlert(1004, 7, 1600)) },
			want:  []string{"email UPDATE alert=1004 aid=7 cur=1600.00"},
			state: StateInProgress,
		},
		{
			name:    "CREATE not recorded: sent with the alert's current state",
			actions: []Action{inProgress}, alerts: []alert.Alert{tgrpAlert(1004, 7, 1700)},
			want:  []string{"email CREATE alert=1004 aid=7 cur=1700.00"},
			state: StateInProgress,
		},
		{
			name:    "CREATE not recorded and the alert ended: ended without a call",
			actions: []Action{inProgress}, alerts: []alert.Alert{ended(tgrpAlert(1004, 7, 1700))},
			state: StateEnded,
		},
		{
			name:    "DELETE recorded, the state after it not saved: ended",
			actions: []Action{deleting}, calls: []Call{create, deleted}, alerts: []alert.Alert{tgrpAlert(1004, 7, 1500)},
			state: StateEnded,
		},
		{
			name:    "restarted after a stop, CREATE not recorded: sent",
			actions: []Action{restarted}, calls: []Call{create, deleted}, alerts: []alert.Alert{tgrpAlert(1004, 7, 1800)},
			want:  []string{"email CREATE alert=1004 aid=7 cur=1800.00"},
			state: StateInProgress,
		},
		{
			name:    "waiting and the alert ended: ended",
			actions: []Action{waiting}, alerts: []alert.Alert{ended(tgrpAlert(1004, 8, 1500))},
			state: StateEnded,
		},
		{
			name:    "waiting and the alert open: still waiting, approve sends CREATE",
			actions: []Action{waiting}, alerts: []alert.Alert{tgrpAlert(1004, 8, 1500)},
			after: func(r *rig) {
				if err := r.d.Approve(ctx, 7); err != nil {
					r.t.Fatal(err)
				}
			},
			want:  []string{"mitigate CREATE alert=1004 aid=7 cur=1500.00"},
			state: StateInProgress,
		},
		{
			name:   "open alert without actions: its actions are created",
			alerts: []alert.Alert{tgrpAlert(1004, 7, 1500)},
			want:   []string{"email CREATE alert=1004 aid=7 cur=1500.00"},
			state:  StateInProgress,
		},
		{
			name:    "alert missing: ended without a call",
			actions: []Action{inProgress}, calls: []Call{create},
			state: StateEnded,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := newMemStore()
			for _, a := range tc.actions {
				store.actions[a.ID] = a
			}
			store.calls = tc.calls
			r := newRig(t, store, newAlerts(tc.alerts...))
			r.settle()
			if tc.after != nil {
				tc.after(r)
				r.settle()
			}
			if diff := cmp.Diff(r.caller.shorts(), tc.want); diff != "" {
				t.Errorf("calls (-got +want):\n%s", diff)
			}
			if got := r.store.state(7); got != tc.state {
				t.Errorf("state %s, want %s", got, tc.state)
			}
		})
	}
}
