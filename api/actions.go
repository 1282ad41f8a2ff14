package api

import (
	"net/http"
	"strconv"

	"github.com/flowsentry/flowsentry/action"
)

// PolicyRef names a policy: its ID, and its name, "" when the policy no
// longer exists.
type PolicyRef struct {
	ID   uint64 `json:"id"`
	Name string `json:"name"`
}

// policyRef resolves the name of policy id.
func policyRef(a *Alerting, id uint64) PolicyRef {
	ref := PolicyRef{ID: id}
	if pol := a.Policies.Set().ByID(id); pol != nil {
		ref.Name = pol.Name
	}
	return ref
}

// ActionItem is an action of GET /api/v1/actions.
type ActionItem struct {
	action.Listed
	// Policy is the policy that raised the alert, in place of the
	// action's policy ID (encoding/json takes the shallower field).
	Policy PolicyRef `json:"policy"`
	// InstanceName is the plugin instance's name, "" when it was deleted.
	InstanceName string `json:"instance_name"`
}

// ActionCounts are the actions per state of a list's filters, whatever
// its state filter and page: the badges of the list.
type ActionCounts struct {
	Waiting int `json:"waiting"`
	Running int `json:"running"`
	// Ended counts ended and rejected actions.
	Ended int `json:"ended"`
}

// ActionList is the answer of GET /api/v1/actions.
type ActionList struct {
	// Actions are waiting for approval first, then in progress, then
	// ended or rejected, newest first inside each.
	Actions []ActionItem `json:"actions"`
	Counts  ActionCounts `json:"counts"`
	// Total is how many actions the filters select, beyond this page.
	Total  int `json:"total"`
	Limit  int `json:"limit"`
	Offset int `json:"offset"`
}

// actionStates are the values of ?state= of the actions list.
var actionStates = map[string][]action.State{
	"waiting": {action.StateWaiting},
	"running": {action.StateInProgress},
	"ended":   {action.StateEnded, action.StateRejected},
}

// defaultActionLimit is the page size of the actions list without ?limit=.
const defaultActionLimit = 100

// listActions answers GET /api/v1/actions?state=&alert=&limit=&offset=:
// the actions of the partitions the user sees.
func (s *Server) listActions(w http.ResponseWriter, r *http.Request, a *Alerting, p Principal) {
	q := action.Query{All: p.Admin, CIDs: p.CIDs, Groups: p.Groups, Limit: defaultActionLimit}
	v := r.URL.Query()
	if raw := v.Get("state"); raw != "" {
		states, ok := actionStates[raw]
		if !ok {
			writeError(w, http.StatusBadRequest, "state=%q is not valid; use waiting, running or ended, or leave it out for every state", raw)
			return
		}
		q.States = states
	}
	var ok bool
	if q.Alert, ok = queryUint(w, v.Get("alert"), "alert", "an alert ID", 1, 1<<63-1, 0); !ok {
		return
	}
	limit, ok := queryUint(w, v.Get("limit"), "limit", "a number", 1, action.MaxList, defaultActionLimit)
	if !ok {
		return
	}
	offset, ok := queryUint(w, v.Get("offset"), "offset", "a number", 0, 1<<31-1, 0)
	if !ok {
		return
	}
	q.Limit, q.Offset = int(limit), int(offset)
	page, err := a.Actions.List(r.Context(), q)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "listing actions: %v", err)
		return
	}
	out := ActionList{Actions: make([]ActionItem, 0, len(page.Actions)), Total: page.Total, Limit: q.Limit, Offset: q.Offset,
		Counts: ActionCounts{
			Waiting: page.Counts[action.StateWaiting],
			Running: page.Counts[action.StateInProgress],
			Ended:   page.Counts[action.StateEnded] + page.Counts[action.StateRejected],
		}}
	for _, l := range page.Actions {
		item := ActionItem{Listed: l, Policy: policyRef(a, l.Policy)}
		if in, ok := a.Instances.Get(l.Instance); ok {
			item.InstanceName = in.Name
		}
		out.Actions = append(out.Actions, item)
	}
	writeJSON(w, http.StatusOK, out)
}

// queryUint parses the query parameter name, raw, as a number from lo to
// hi (def when raw is empty), writing the error response when it is not.
func queryUint(w http.ResponseWriter, raw, name, what string, lo, hi, def uint64) (uint64, bool) {
	if raw == "" {
		return def, true
	}
	n, err := strconv.ParseUint(raw, 10, 64)
	if err != nil || n < lo || n > hi {
		writeError(w, http.StatusBadRequest, "%s=%q is not valid; use %s from %d to %d", name, raw, what, lo, hi)
		return 0, false
	}
	return n, true
}
