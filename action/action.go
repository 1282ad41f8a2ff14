package action

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/flowsentry/flowsentry/alert"
	"github.com/flowsentry/flowsentry/plugin"
	"github.com/flowsentry/flowsentry/policy"
)

// State is the state of an action.
type State string

// The states of an action. Waiting and in progress actions are open.
const (
	// StateWaiting: the policy requires approval and nobody approved or
	// rejected yet; nothing was sent.
	StateWaiting State = "waiting_approval"
	// StateInProgress: CREATE is sent or queued, DELETE is not sent yet.
	StateInProgress State = "in_progress"
	// StateEnded: DELETE was sent (or the alert ended before anything was).
	StateEnded State = "ended"
	// StateRejected: an operator rejected the action; nothing was sent.
	StateRejected State = "rejected"
)

// Action is one plugin instance attached to one alert: the calls of the
// plugin for that alert and their state.
type Action struct {
	// ID is the action's ID, the AID of the plugin environment.
	ID uint64 `json:"id"`
	// Alert is the alert's ID.
	Alert uint64 `json:"alert"`
	// Policy is the policy that raised the alert and attaches the instance.
	Policy uint64 `json:"policy"`
	// Instance is the plugin instance's ID.
	Instance uint64 `json:"instance"`
	// Plugin is the plugin's folder name.
	Plugin string `json:"plugin"`
	// State is the action's state.
	State State `json:"state"`
	// Created is when the action was created, Updated when its state or
	// token last changed.
	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`
	// Token is the annotation token (TKN) of the latest call: 128 random
	// bits in hex.
	Token string `json:"-"`
	// TokenUntil is when Token expires: 300 seconds after the latest call
	// ended (after it started while it runs).
	TokenUntil time.Time `json:"-"`
}

// Call is one plugin call of an action and its outcome.
type Call struct {
	// Action is the action's ID.
	Action uint64 `json:"action"`
	// Op is the first argument: CREATE, UPDATE or DELETE.
	Op alert.Op `json:"op"`
	// Start is when the call started.
	Start time.Time `json:"start"`
	// Duration is how long it ran.
	Duration time.Duration `json:"duration_ns"`
	// ExitCode is the exit status, -1 when killed or not started.
	ExitCode int `json:"exit_code"`
	// Err says why the call failed, when it did not exit by itself:
	// "timeout", "executable missing: ...", the signal.
	Err string `json:"error,omitempty"`
	// Output is the first 64 KiB of stdout and stderr together; JSON
	// gives it as a UTF-8 string (see MarshalJSON).
	Output []byte `json:"output"`
	// Truncated says the output was longer.
	Truncated bool `json:"truncated"`
}

// failure says why the call failed; nil when the plugin ran and exited
// with code 0.
func (c *Call) failure() error {
	switch {
	case c.Err != "":
		return errors.New(c.Err)
	case c.ExitCode != 0:
		return fmt.Errorf("exit status %d; the plugin's output, recorded with the call, may tell why", c.ExitCode)
	}
	return nil
}

// ErrNotFound is wrapped by the errors about an unknown action ID.
var ErrNotFound = errors.New("action not found")

// ErrAlertEnded is wrapped by the error of Restart when the action's alert
// has ended.
var ErrAlertEnded = errors.New("the alert has ended; restart applies only while the alert is open")

// Store persists actions and their calls; the store package implements it.
// Implementations are safe for concurrent use.
type Store interface {
	// NextActionID returns a new action ID, never returned before.
	NextActionID(ctx context.Context) (uint64, error)
	// SaveAction inserts or replaces the action with a.ID.
	SaveAction(ctx context.Context, a *Action) error
	// AddCall records a call.
	AddCall(ctx context.Context, c *Call) error
	// Actions returns the actions of an alert.
	Actions(ctx context.Context, alertID uint64) ([]Action, error)
	// Action returns one action; an unknown ID gives an error wrapping
	// ErrNotFound.
	Action(ctx context.Context, id uint64) (Action, error)
	// OpenActions returns the actions waiting for approval or in progress.
	OpenActions(ctx context.Context) ([]Action, error)
	// Calls returns the calls of an action, oldest first.
	Calls(ctx context.Context, actionID uint64) ([]Call, error)
	// ListActions returns the page of actions q selects, in the order
	// and with the counts Page documents; q is valid (see List).
	ListActions(ctx context.Context, q Query) (Page, error)
}

// Attachment is a plugin instance attached to a policy: its per-policy
// overrides and whether its actions wait for approval.
type Attachment = policy.Attachment

// Policies gives the actions attached to a policy; the policy package
// implements it. The overrides are those validated when the policy was
// saved (plugin.ValidateOverrides: only allowOverride fields).
type Policies interface {
	// Attachments returns the attachments of a policy (none for an
	// unknown or deleted policy).
	Attachments(policyID uint64) []Attachment
}

// Instances gives the plugin instances; *plugin.Instances implements it.
type Instances interface {
	// Get returns a plugin instance; false when there is none with id.
	Get(id uint64) (plugin.Instance, bool)
}

// Alerts reads alerts; the alert engine implements it.
type Alerts interface {
	// Get returns an alert in its current state; an unknown ID gives an
	// error wrapping alert.ErrNotFound.
	Get(ctx context.Context, id uint64) (alert.Alert, error)
	// Open returns the open alerts.
	Open() []alert.Alert
}

// Caller runs one plugin call, never through a shell, under its time
// limit, and bounds the calls running at once; PluginCaller is the
// production one. It is safe for concurrent use.
type Caller interface {
	// Call runs plugin with op as its argument and exactly env as its
	// environment.
	Call(ctx context.Context, plugin string, op alert.Op, env []string) plugin.Result
}

// PluginCaller calls the plugins of a registry with a runner.
type PluginCaller struct {
	Runner   *plugin.Runner
	Registry *plugin.Registry
}

// Call runs plugin name of the registry.
func (c PluginCaller) Call(ctx context.Context, name string, op alert.Op, env []string) plugin.Result {
	return c.Runner.CallNamed(ctx, c.Registry, name, op, env)
}

// StateError is the error of an operation that does not apply to an
// action in its state.
type StateError struct {
	// ID and State are the action's.
	ID    uint64
	State State
	// Op is the operation refused: "approve", "reject", "stop", "restart".
	Op string
}

// Error says what applies instead.
func (e *StateError) Error() string {
	if e.State == StateInProgress && e.Op == "stop" {
		return fmt.Sprintf("cannot stop action %d: it is already ending, its DELETE is queued", e.ID)
	}
	var hint string
	switch e.State {
	case StateWaiting:
		hint = "only approve or reject applies"
	case StateInProgress:
		hint = "only stop applies"
	case StateEnded:
		hint = "only restart applies"
	case StateRejected:
		hint = "nothing applies to a rejected action"
	}
	return fmt.Sprintf("cannot %s action %d: it is %s; %s", e.Op, e.ID, e.State, hint)
}
