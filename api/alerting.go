package api

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/flowsentry/flowsentry/action"
	"github.com/flowsentry/flowsentry/alert"
	"github.com/flowsentry/flowsentry/alertindex"
	"github.com/flowsentry/flowsentry/annotate"
	"github.com/flowsentry/flowsentry/detect"
	"github.com/flowsentry/flowsentry/plugin"
	"github.com/flowsentry/flowsentry/policy"
	"github.com/flowsentry/flowsentry/store"
)

// Principal is an authenticated API user.
type Principal struct {
	// Name is the user name.
	Name string
	// Admin users see and change everything.
	Admin bool
	// Manager users (partition managers) change policies and plugin
	// instances of their partitions; the others only read them.
	Manager bool
	// CIDs are the partitions a non-admin user may see.
	CIDs []uint32
	// Groups, when not empty, are the only traffic groups of its
	// partitions a non-admin user sees the rates of.
	Groups []uint32
}

// may reports whether the principal sees partition cid.
func (p Principal) may(cid uint32) bool { return p.Admin || slices.Contains(p.CIDs, cid) }

// seesGroup reports whether the principal sees traffic group id of
// partition cid.
func (p Principal) seesGroup(cid, id uint32) bool {
	return p.Admin || p.may(cid) && (len(p.Groups) == 0 || slices.Contains(p.Groups, id))
}

// mayChange reports whether the principal may change objects of cid.
func (p Principal) mayChange(cid uint32) bool { return p.Admin || (p.Manager && p.may(cid)) }

// Alerting are the alerting components the API exposes; nil in Deps
// leaves those endpoints out.
type Alerting struct {
	// Policies holds the policies.
	Policies *policy.Manager
	// Plugins is the plugin folder.
	Plugins *plugin.Registry
	// Instances are the plugin instances.
	Instances *plugin.Instances
	// Actions drives the actions of alerts.
	Actions *action.Dispatcher
	// Alerts reads one alert.
	Alerts interface {
		Get(ctx context.Context, id uint64) (alert.Alert, error)
	}
	// Annotator takes `ftnbi -val` annotations (authenticated by token).
	Annotator http.Handler
	// Reader serves alert lists and annotations in the FlowTraq format.
	Reader *annotate.Reader
	// Baselines returns the learned baselines.
	Baselines func() []detect.Baseline
	// Search is the alert index behind the alert search and the notes;
	// nil answers them with 404.
	Search *alertindex.Index
	// ConfigFile is the configuration file's path, which the answer to a
	// change of one of its policies names ("" for the embedded default).
	ConfigFile string
	// AlertCounts counts the alerts of the two hours before now by
	// policy and object, for the policy matrix; nil counts none.
	AlertCounts func(ctx context.Context, now time.Time) ([]store.AlertCount, error)
}

// maxBody caps the size of a JSON request body.
const maxBody = 1 << 20

func (s *Server) mountAlerting(mux *http.ServeMux, a *Alerting) {
	mux.Handle("POST /api/v1/annotations", a.Annotator)
	mux.HandleFunc("GET /api/v1/alerts", viaReader(a.Reader.Alerts))
	mux.HandleFunc("GET /api/v1/alerts/{id}/annotations", viaReader(a.Reader.Annotations))
	mux.HandleFunc("GET /api/v1/alerts/{id}", s.auth(a, s.getAlert))
	mux.HandleFunc("GET /api/v1/alerts/search", s.auth(a, searching(s.searchAlerts)))
	mux.HandleFunc("GET /api/v1/alerts/{id}/notes", s.auth(a, searching(s.listNotes)))
	mux.HandleFunc("POST /api/v1/alerts/{id}/notes", s.auth(a, searching(s.addNote)))
	mux.HandleFunc("GET /api/v1/policies", s.auth(a, s.listPolicies))
	mux.HandleFunc("POST /api/v1/policies", s.auth(a, s.putPolicy))
	mux.HandleFunc("GET /api/v1/policies/{id}", s.auth(a, s.getPolicy))
	mux.HandleFunc("PUT /api/v1/policies/{id}", s.auth(a, s.putPolicy))
	mux.HandleFunc("DELETE /api/v1/policies/{id}", s.auth(a, s.deletePolicy))
	mux.HandleFunc("GET /api/v1/plugins", s.auth(a, s.listPlugins))
	mux.HandleFunc("GET /api/v1/instances", s.auth(a, s.listInstances))
	mux.HandleFunc("POST /api/v1/instances", s.auth(a, s.putInstance))
	mux.HandleFunc("GET /api/v1/instances/{id}", s.auth(a, s.getInstance))
	mux.HandleFunc("PUT /api/v1/instances/{id}", s.auth(a, s.putInstance))
	mux.HandleFunc("DELETE /api/v1/instances/{id}", s.auth(a, s.deleteInstance))
	mux.HandleFunc("POST /api/v1/instances/{id}/test", s.auth(a, newPluginTester().test))
	mux.HandleFunc("GET /api/v1/actions", s.auth(a, s.listActions))
	mux.HandleFunc("GET /api/v1/actions/{id}", s.auth(a, s.getAction))
	mux.HandleFunc("POST /api/v1/actions/{id}/{op}", s.auth(a, s.actionOp))
	mux.HandleFunc("GET /api/v1/baselines", s.auth(a, s.listBaselines))
	mux.HandleFunc("GET /api/v1/policy/matrix", s.auth(a, s.policyMatrix))
	mux.HandleFunc("GET /api/v1/families", s.auth(a, s.listFamilies))
}

type authedHandler func(w http.ResponseWriter, r *http.Request, a *Alerting, p Principal)

// auth calls h with the request's principal, which the server's guard
// authenticated.
func (s *Server) auth(a *Alerting, h authedHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { h(w, r, a, principal(r)) }
}

// pathID parses the {id} path value, writing the error response when it
// is not a number.
func pathID(w http.ResponseWriter, r *http.Request, what string) (uint64, bool) {
	raw := r.PathValue("id")
	id, err := strconv.ParseUint(raw, 10, 64)
	if err != nil {
		writeError(w, http.StatusBadRequest, "%s ID %q is not a number", what, raw)
		return 0, false
	}
	return id, true
}

// readJSON decodes a request body strictly into v. A body over maxBody
// gets 413, without reading more of it than the limit.
func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	tooLarge := func() bool {
		writeError(w, http.StatusRequestEntityTooLarge, "request body is larger than the limit of %d bytes (1 MiB); send a smaller JSON body", maxBody)
		return false
	}
	if r.ContentLength > maxBody {
		return tooLarge()
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return tooLarge()
		}
		writeError(w, http.StatusBadRequest, "request body is not valid JSON for this endpoint: %v", err)
		return false
	}
	return true
}

// AlertDetail is one alert with its actions and annotations.
type AlertDetail struct {
	// Alert is the alert in the FlowTraq JSON format.
	Alert annotate.Alert `json:"alert"`
	// Policy is the policy that raised the alert (the FlowTraq format of
	// Alert has no field for it).
	Policy PolicyRef `json:"policy"`
	// Actions are the alert's actions with their calls.
	Actions []ActionDetail `json:"actions"`
	// Annotations are the values plugins stored with `ftnbi -val`.
	Annotations annotate.Annotations `json:"annotations"`
}

// ActionDetail is an action with its calls.
type ActionDetail struct {
	action.Action
	// Calls are the plugin calls, oldest first.
	Calls []action.Call `json:"calls"`
}

// visibleAlert reads the alert of the request's {id} that p may see; it
// answers the request itself (404, 500) and returns false otherwise.
func visibleAlert(w http.ResponseWriter, r *http.Request, a *Alerting, p Principal) (alert.Alert, uint64, bool) {
	id, ok := pathID(w, r, "alert")
	if !ok {
		return alert.Alert{}, 0, false
	}
	al, err := a.Alerts.Get(r.Context(), id)
	if errors.Is(err, alert.ErrNotFound) || (err == nil && !p.seesGroup(al.CID, al.Group())) {
		writeError(w, http.StatusNotFound, "no alert %d that user %s may see", id, p.Name)
		return alert.Alert{}, 0, false
	}
	if err != nil {
		writeError(w, http.StatusInternalServerError, "reading alert %d: %v", id, err)
		return alert.Alert{}, 0, false
	}
	return al, id, true
}

func (s *Server) getAlert(w http.ResponseWriter, r *http.Request, a *Alerting, p Principal) {
	al, id, ok := visibleAlert(w, r, a, p)
	if !ok {
		return
	}
	acts, err := a.Actions.Actions(r.Context(), id)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "reading the actions of alert %d: %v", id, err)
		return
	}
	detail := AlertDetail{Alert: annotate.Alert(al), Policy: policyRef(a, al.Policy), Actions: []ActionDetail{}}
	for _, ac := range acts {
		calls, err := a.Actions.Calls(r.Context(), ac.ID)
		if err != nil {
			writeError(w, http.StatusInternalServerError, "reading the calls of action %d: %v", ac.ID, err)
			return
		}
		detail.Actions = append(detail.Actions, ActionDetail{Action: ac, Calls: calls})
	}
	if detail.Annotations, err = a.Reader.AlertAnnotations(r.Context(), &al); err != nil {
		writeError(w, http.StatusInternalServerError, "reading the annotations of alert %d: %v", id, err)
		return
	}
	writeJSON(w, http.StatusOK, detail)
}

func (s *Server) listPolicies(w http.ResponseWriter, _ *http.Request, a *Alerting, p Principal) {
	out := []policy.Policy{}
	for _, pol := range a.Policies.List() {
		if p.may(pol.CID) {
			out = append(out, pol)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) getPolicy(w http.ResponseWriter, r *http.Request, a *Alerting, p Principal) {
	id, ok := pathID(w, r, "policy")
	if !ok {
		return
	}
	pol, err := a.Policies.Get(id)
	if err != nil || !p.may(pol.CID) {
		writeError(w, http.StatusNotFound, "no policy %d that user %s may see", id, p.Name)
		return
	}
	writeJSON(w, http.StatusOK, pol)
}

// putPolicy creates (POST) or replaces (PUT /{id}) a policy.
func (s *Server) putPolicy(w http.ResponseWriter, r *http.Request, a *Alerting, p Principal) {
	var pol policy.Policy
	if !readJSON(w, r, &pol) {
		return
	}
	id, status, ok := writeTarget(w, r, p, "policy", "policies", pol.ID, policyCID(a))
	if !ok {
		return
	}
	pol.ID = id
	if !p.mayChange(pol.CID) {
		writeError(w, http.StatusForbidden, "user %s may not change policies of partition %d", p.Name, pol.CID)
		return
	}
	saved, err := a.Policies.Put(r.Context(), pol)
	if readOnly(w, a, err) {
		return
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, "policy not saved: %v", err)
		return
	}
	writeJSON(w, status, saved)
}

// policyCID gives the partition of an existing policy.
func policyCID(a *Alerting) func(uint64) (uint32, bool) {
	return func(id uint64) (uint32, bool) {
		pol, err := a.Policies.Get(id)
		return pol.CID, err == nil
	}
}

// instanceCID gives the partition of an existing plugin instance.
func instanceCID(a *Alerting) func(uint64) (uint32, bool) {
	return func(id uint64) (uint32, bool) {
		in, ok := a.Instances.Get(id)
		return in.CID, ok
	}
}

// writeTarget decides the ID a POST or PUT writes: POST creates (the body
// must carry no ID), PUT /{id} replaces an existing object the principal
// may change. It writes the error response when there is none.
func writeTarget(w http.ResponseWriter, r *http.Request, p Principal, what, collection string, bodyID uint64, cidOf func(uint64) (uint32, bool)) (id uint64, status int, ok bool) {
	if r.Method != http.MethodPut {
		if bodyID != 0 {
			writeError(w, http.StatusBadRequest, "a new %s gets its ID from the server; leave id out, or PUT /api/v1/%s/%d to replace one", what, collection, bodyID)
			return 0, 0, false
		}
		return 0, http.StatusCreated, true
	}
	id, ok = changeable(w, r, p, what, cidOf)
	return id, http.StatusOK, ok
}

// changeable reads the {id} path value of an existing object the principal
// may change, writing the error response when there is none.
func changeable(w http.ResponseWriter, r *http.Request, p Principal, what string, cidOf func(uint64) (uint32, bool)) (uint64, bool) {
	id, ok := pathID(w, r, what)
	if !ok {
		return 0, false
	}
	if cid, found := cidOf(id); !found || !p.mayChange(cid) {
		writeError(w, http.StatusNotFound, "no %s %d that user %s may change", what, id, p.Name)
		return 0, false
	}
	return id, true
}

func (s *Server) deletePolicy(w http.ResponseWriter, r *http.Request, a *Alerting, p Principal) {
	id, ok := changeable(w, r, p, "policy", policyCID(a))
	if !ok {
		return
	}
	err := a.Policies.Delete(r.Context(), id)
	if readOnly(w, a, err) {
		return
	}
	if err != nil {
		writeError(w, http.StatusInternalServerError, "deleting policy %d: %v", id, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// readOnly answers 409 when err is a change to a policy of the
// configuration file, naming the file and how to change it there.
func readOnly(w http.ResponseWriter, a *Alerting, err error) bool {
	ro, ok := errors.AsType[*policy.ReadOnlyError](err)
	if !ok {
		return false
	}
	file := cmp.Or(a.ConfigFile, "the configuration file")
	what := fmt.Sprintf("policy %d %q is defined in %s (source: config), so the API cannot change it", ro.ID, ro.Name, file)
	if ro.Via != 0 {
		what = fmt.Sprintf("policy %d %q, which overrides template %d, is defined in %s (source: config), so the API cannot delete the template", ro.ID, ro.Name, ro.Via, file)
	}
	writeError(w, http.StatusConflict, "%s; edit %s and send SIGHUP (systemctl reload flowsentry)", what, file)
	return true
}

// fileErr names the configuration file in err, a change refused because
// its object comes from the file.
func fileErr(a *Alerting, err error) string {
	file := cmp.Or(a.ConfigFile, "the configuration file")
	return strings.Replace(err.Error(), "the configuration file", file+" (source: config)", 1)
}

// PluginInfo is an installed plugin as the API shows it.
type PluginInfo struct {
	Name     string       `json:"name"`
	Spec     *plugin.Spec `json:"spec,omitempty"`
	Warnings []string     `json:"warnings"`
	Error    string       `json:"error,omitempty"`
}

func (s *Server) listPlugins(w http.ResponseWriter, _ *http.Request, a *Alerting, _ Principal) {
	out := []PluginInfo{}
	for _, pl := range a.Plugins.List() {
		info := PluginInfo{Name: pl.Name, Warnings: []string{}}
		if pl.Err == nil {
			spec := pl.Spec
			info.Spec = &spec
		} else {
			info.Error = pl.Err.Error()
		}
		for _, wn := range pl.Warnings {
			info.Warnings = append(info.Warnings, wn.String())
		}
		out = append(out, info)
	}
	writeJSON(w, http.StatusOK, out)
}

// masked returns an instance with its password values hidden.
// passwordMask stands for a password value in the instances the API
// returns.
const passwordMask = "********"

// keepPasswords gives in, a changed instance, the stored values of the
// password fields it leaves out or sends back masked: the API never
// returns them, so a client editing an instance cannot send them again.
func keepPasswords(a *Alerting, in *plugin.Instance) {
	old, ok := a.Instances.Get(in.ID)
	pl, found := a.Plugins.Get(in.Plugin)
	if !ok || !found || old.Plugin != in.Plugin {
		return
	}
	for k, v := range old.Values {
		f, isField := pl.Spec.Field(k)
		if !isField || f.Spec.Type != plugin.TypePassword {
			continue
		}
		if sent, given := in.Values[k]; !given || sent == passwordMask {
			if in.Values == nil {
				in.Values = map[string]string{}
			}
			in.Values[k] = v
		}
	}
}

func masked(a *Alerting, in plugin.Instance) plugin.Instance {
	pl, ok := a.Plugins.Get(in.Plugin)
	if !ok {
		return in
	}
	vals := make(map[string]string, len(in.Values))
	for k, v := range in.Values {
		if f, ok := pl.Spec.Field(k); ok && f.Spec.Type == plugin.TypePassword {
			v = passwordMask
		}
		vals[k] = v
	}
	in.Values = vals
	return in
}

func (s *Server) listInstances(w http.ResponseWriter, _ *http.Request, a *Alerting, p Principal) {
	out := []plugin.Instance{}
	for _, in := range a.Instances.List() {
		if p.may(in.CID) {
			out = append(out, masked(a, in))
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) getInstance(w http.ResponseWriter, r *http.Request, a *Alerting, p Principal) {
	if in, ok := visibleInstance(w, r, a, p); ok {
		writeJSON(w, http.StatusOK, masked(a, in))
	}
}

// visibleInstance reads the {id} plugin instance if p may see it; it
// answers the request itself (400, 404) and returns false otherwise.
func visibleInstance(w http.ResponseWriter, r *http.Request, a *Alerting, p Principal) (plugin.Instance, bool) {
	id, ok := pathID(w, r, "plugin instance")
	if !ok {
		return plugin.Instance{}, false
	}
	in, found := a.Instances.Get(id)
	if !found || !p.may(in.CID) {
		writeError(w, http.StatusNotFound, "no plugin instance %d that user %s may see", id, p.Name)
		return plugin.Instance{}, false
	}
	return in, true
}

func (s *Server) putInstance(w http.ResponseWriter, r *http.Request, a *Alerting, p Principal) {
	var in plugin.Instance
	if !readJSON(w, r, &in) {
		return
	}
	id, status, ok := writeTarget(w, r, p, "plugin instance", "instances", in.ID, instanceCID(a))
	if !ok {
		return
	}
	in.ID = id
	if !p.mayChange(in.CID) {
		writeError(w, http.StatusForbidden, "user %s may not change plugin instances of partition %d", p.Name, in.CID)
		return
	}
	if id != 0 {
		keepPasswords(a, &in)
	}
	saved, err := a.Instances.Put(r.Context(), in)
	if errors.Is(err, plugin.ErrFromConfig) {
		writeError(w, http.StatusConflict, "%v", fileErr(a, err))
		return
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, "plugin instance not saved: %v", err)
		return
	}
	writeJSON(w, status, masked(a, saved))
}

func (s *Server) deleteInstance(w http.ResponseWriter, r *http.Request, a *Alerting, p Principal) {
	id, ok := changeable(w, r, p, "plugin instance", instanceCID(a))
	if !ok {
		return
	}
	for _, pol := range a.Policies.List() {
		for _, at := range pol.Actions {
			if at.Instance == id {
				writeError(w, http.StatusConflict, "plugin instance %d is attached to policy %d %q; detach it first", id, pol.ID, pol.Name)
				return
			}
		}
	}
	if err := a.Instances.Delete(r.Context(), id); err != nil {
		if errors.Is(err, plugin.ErrFromConfig) {
			writeError(w, http.StatusConflict, "%v", fileErr(a, err))
			return
		}
		writeError(w, http.StatusInternalServerError, "%v", err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// action reads the {id} action and checks the principal may see its alert.
func (s *Server) action(w http.ResponseWriter, r *http.Request, a *Alerting, p Principal) (action.Action, bool) {
	id, ok := pathID(w, r, "action")
	if !ok {
		return action.Action{}, false
	}
	ac, err := a.Actions.Action(r.Context(), id)
	if err == nil {
		var al alert.Alert
		if al, err = a.Alerts.Get(r.Context(), ac.Alert); err == nil && !p.may(al.CID) {
			err = action.ErrNotFound
		}
	}
	if err != nil {
		writeError(w, http.StatusNotFound, "no action %d that user %s may see", id, p.Name)
		return action.Action{}, false
	}
	return ac, true
}

func (s *Server) getAction(w http.ResponseWriter, r *http.Request, a *Alerting, p Principal) {
	ac, ok := s.action(w, r, a, p)
	if !ok {
		return
	}
	calls, err := a.Actions.Calls(r.Context(), ac.ID)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "reading the calls of action %d: %v", ac.ID, err)
		return
	}
	writeJSON(w, http.StatusOK, ActionDetail{Action: ac, Calls: calls})
}

// actionOp approves, rejects, stops or restarts an action.
func (s *Server) actionOp(w http.ResponseWriter, r *http.Request, a *Alerting, p Principal) {
	ops := map[string]func(context.Context, uint64) error{
		"approve": a.Actions.Approve, "reject": a.Actions.Reject,
		"stop": a.Actions.StopAction, "restart": a.Actions.Restart,
	}
	op := r.PathValue("op")
	f, ok := ops[op]
	if !ok {
		writeError(w, http.StatusNotFound, "no action operation %q; use approve, reject, stop or restart", op)
		return
	}
	ac, ok := s.action(w, r, a, p)
	if !ok {
		return
	}
	al, err := a.Alerts.Get(r.Context(), ac.Alert)
	if err != nil || !p.mayChange(al.CID) {
		writeError(w, http.StatusForbidden, "user %s may not %s actions of partition %d", p.Name, op, al.CID)
		return
	}
	if err := f(r.Context(), ac.ID); err != nil {
		var se *action.StateError
		if errors.As(err, &se) || errors.Is(err, action.ErrAlertEnded) {
			writeError(w, http.StatusConflict, "%v", err)
			return
		}
		writeError(w, http.StatusInternalServerError, "%s action %d: %v", op, ac.ID, err)
		return
	}
	now, err := a.Actions.Action(r.Context(), ac.ID)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "%v", err)
		return
	}
	writeJSON(w, http.StatusOK, now)
}

func (s *Server) listBaselines(w http.ResponseWriter, _ *http.Request, a *Alerting, p Principal) {
	out := []detect.Baseline{}
	for _, b := range a.Baselines() {
		if pol := a.Policies.Set().ByID(b.Policy); pol != nil && p.may(pol.CID) {
			out = append(out, b)
		}
	}
	writeJSON(w, http.StatusOK, out)
}
