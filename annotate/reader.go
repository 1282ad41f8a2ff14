package annotate

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/flowsentry/flowsentry/alert"
)

// AlertSource lists alerts; the store implements it.
type AlertSource interface {
	// Alerts returns the alerts matching q, newest first.
	Alerts(ctx context.Context, q alert.Query) ([]alert.Alert, error)
}

// ErrBadCredentials is wrapped by the errors an Authenticator returns for
// an unknown user or a wrong password.
var ErrBadCredentials = errors.New("unknown user or wrong password")

// Authenticator checks the credentials of a user; an adapter over the
// store's users implements it.
type Authenticator interface {
	// Authenticate returns the partitions (CIDs) the user may see, or
	// admin true when the user may see every partition. For an unknown
	// user or a wrong password the error wraps ErrBadCredentials.
	Authenticate(ctx context.Context, name, password string) (cids []uint32, admin bool, err error)
}

// ActionRef names an action of an alert and the plugin it calls.
type ActionRef struct {
	// ID is the AID.
	ID uint64
	// Plugin is the plugin's folder name.
	Plugin string
}

// ActionLister lists the actions of an alert; an adapter over the action
// package implements it.
type ActionLister interface {
	// AlertActions returns the actions of an alert, in creation order.
	AlertActions(ctx context.Context, alertID uint64) ([]ActionRef, error)
}

// UpdateField is one entry of a plugin's gui.json "update_fields": how to
// graph the values of one annotation key.
type UpdateField struct {
	// Label is the name of the graph line.
	Label string `json:"label"`
	// Key is the annotation key graphed.
	Key string `json:"key"`
	// Container is the graph (one of the plugin's containers) it is in.
	Container string `json:"container"`
	// Record "always" asks for the key to be shown even when the plugin
	// never stored a value for it.
	Record string `json:"record,omitempty"`
}

// Grapher returns what a plugin's gui.json says about graphing its
// annotations; an adapter over the plugin registry implements it. An
// unknown plugin has neither containers nor fields.
type Grapher interface {
	// Graphs returns the "containers" and "update_fields" of the gui.json
	// of the plugin in the folder named plugin.
	Graphs(plugin string) (containers []string, fields []UpdateField)
}

// ReaderDeps are what a Reader reads from; all are required.
type ReaderDeps struct {
	// Alerts lists the alerts.
	Alerts AlertSource
	// Users checks the credentials of every request.
	Users Authenticator
	// Values reads the annotation values.
	Values Store
	// Actions names the actions of an alert and their plugins.
	Actions ActionLister
	// Graphs reads the plugins' graph descriptions.
	Graphs Grapher
	// Log receives the errors of the dependencies; nil discards them.
	Log *slog.Logger
}

// Reader serves alerts and their annotations to users authenticated with
// HTTP basic authentication. Admins see every partition, other users the
// partitions they are bound to. It is safe for concurrent use.
type Reader struct {
	deps ReaderDeps
}

// NewReader checks deps and returns a Reader.
func NewReader(deps ReaderDeps) (*Reader, error) {
	if deps.Alerts == nil || deps.Users == nil || deps.Values == nil || deps.Actions == nil || deps.Graphs == nil {
		return nil, errors.New("annotate: new reader: the alert source, authenticator, value store, action lister and grapher are all required")
	}
	if deps.Log == nil {
		deps.Log = slog.New(slog.DiscardHandler)
	}
	return &Reader{deps: deps}, nil
}

// GroupScoper is implemented by a Users that restricts some users to
// some traffic groups of their partitions: they see only the alerts about
// those (alert.Alert.Group).
type GroupScoper interface {
	// Groups returns the traffic groups user name is restricted to, for
	// the request's context; nil for none.
	Groups(ctx context.Context, name string) []uint32
}

// scope is what a user may read: the partitions (nil: all) and, when not
// nil, only the alerts about these traffic groups.
type scope struct {
	cids, groups []uint32
}

// authenticate checks the request's basic credentials and returns the
// query scope of the user: nil CIDs for an admin. It writes the error
// answer and returns false when the user may not read.
func (r *Reader) authenticate(w http.ResponseWriter, req *http.Request) (scope, bool) {
	name, pass, has := req.BasicAuth()
	if !has {
		w.Header().Set("WWW-Authenticate", `Basic realm="flowsentry"`)
		writeError(w, http.StatusUnauthorized, "authentication required: give a flowsentry user and password with HTTP basic authentication (ftnbi -un USER -up PASS)")
		return scope{}, false
	}
	cids, admin, err := r.deps.Users.Authenticate(req.Context(), name, pass)
	switch {
	case errors.Is(err, ErrBadCredentials):
		w.Header().Set("WWW-Authenticate", `Basic realm="flowsentry"`)
		writeError(w, http.StatusUnauthorized, "user %q is unknown or the password is wrong: check the user name and password (ftnbi -un USER -up PASS)", name)
		return scope{}, false
	case err != nil:
		r.deps.Log.Error("authentication failed", "user", name, "err", err)
		writeError(w, http.StatusInternalServerError, "the credentials could not be checked (server error, see its log); try again")
		return scope{}, false
	case admin:
		return scope{}, true
	case len(cids) == 0:
		writeError(w, http.StatusForbidden, "user %q is bound to no partition and may see no alert: ask an administrator to bind it to a partition", name)
		return scope{}, false
	}
	sc := scope{cids: cids}
	if g, ok := r.deps.Users.(GroupScoper); ok {
		sc.groups = g.Groups(req.Context(), name)
	}
	return sc, true
}

// alerts runs q, keeping only what sc allows.
func (r *Reader) alerts(w http.ResponseWriter, req *http.Request, q alert.Query, sc scope) ([]Alert, bool) {
	q.CIDs = sc.cids
	list, err := r.deps.Alerts.Alerts(req.Context(), q)
	if err != nil {
		r.deps.Log.Error("reading alerts failed", "err", err)
		writeError(w, http.StatusInternalServerError, "the alerts could not be read (server error, see its log); try again")
		return nil, false
	}
	out := make([]Alert, 0, len(list))
	for _, a := range list {
		if (sc.cids == nil || slices.Contains(sc.cids, a.CID)) && (sc.groups == nil || slices.Contains(sc.groups, a.Group())) {
			out = append(out, Alert(a))
		}
	}
	return out, true
}

// Alerts serves GET /api/v1/alerts: the alerts the user may see, newest
// first, as a JSON array in the manual's format (see Alert). The query
// parameters created_since (created at or after) and active_since (open,
// or seen at or after) are RFC 3339 times; without them every alert is
// listed, up to 10,000.
func (r *Reader) Alerts(w http.ResponseWriter, req *http.Request) {
	sc, ok := r.authenticate(w, req)
	if !ok {
		return
	}
	var q alert.Query
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"created_since", &q.CreatedSince}, {"active_since", &q.ActiveSince}} {
		raw := req.URL.Query().Get(p.name)
		if raw == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, raw)
		if err != nil {
			writeError(w, http.StatusBadRequest, "%s=%q is not an RFC 3339 time: write e.g. 2015-12-03T21:24:03Z", p.name, raw)
			return
		}
		*p.dst = t
	}
	out, ok := r.alerts(w, req, q, sc)
	if ok {
		writeJSON(w, http.StatusOK, out)
	}
}

// Annotations serves GET /api/v1/alerts/{id}/annotations: the annotation
// values of one alert the user may see (see Annotations). The route must
// name the alert ID's path segment {id}.
func (r *Reader) Annotations(w http.ResponseWriter, req *http.Request) {
	sc, ok := r.authenticate(w, req)
	if !ok {
		return
	}
	raw := req.PathValue("id")
	id, err := strconv.ParseUint(raw, 10, 64)
	if err != nil {
		writeError(w, http.StatusBadRequest, "alert ID %q is not a number: use the numeric ID from GET /api/v1/alerts", raw)
		return
	}
	list, ok := r.alerts(w, req, alert.Query{IDs: []uint64{id}, Limit: 1}, sc)
	if !ok {
		return
	}
	if len(list) == 0 {
		writeError(w, http.StatusNotFound, "no alert with ID %d in the partitions you may see: GET /api/v1/alerts lists them", id)
		return
	}
	a := alert.Alert(list[0])
	ann, err := r.AlertAnnotations(req.Context(), &a)
	if err != nil {
		r.deps.Log.Error("reading annotations failed", "alert", id, "err", err)
		writeError(w, http.StatusInternalServerError, "the annotations could not be read (server error, see its log); try again")
		return
	}
	writeJSON(w, http.StatusOK, ann)
}

// Annotations are the annotation values of an alert, per action.
type Annotations struct {
	// Alert is the alert ID.
	Alert uint64 `json:"alert"`
	// Actions are the alert's actions, by ID.
	Actions []ActionAnnotations `json:"actions"`
}

// ActionAnnotations are the values one action stored, with its plugin's
// gui.json "containers" and "update_fields" so that a UI can graph them.
type ActionAnnotations struct {
	// Action is the AID.
	Action uint64 `json:"action"`
	// Plugin is the plugin's folder name; "" for an action no longer
	// known.
	Plugin string `json:"plugin"`
	// Containers and UpdateFields are those of the plugin's gui.json.
	Containers   []string      `json:"containers"`
	UpdateFields []UpdateField `json:"update_fields"`
	// Keys are the series of the action's keys.
	Keys []Series `json:"keys"`
}

// Series are the values of one key, oldest first. Label and Container
// come from the plugin's update_fields (Label is the key for keys it does
// not list).
type Series struct {
	Key       string `json:"key"`
	Label     string `json:"label"`
	Container string `json:"container,omitempty"`
	// Points are the values, oldest first.
	Points []Point `json:"values"`
}

// Point is one value and when it was stored.
type Point struct {
	// Time is when the value was stored (RFC 3339 in JSON).
	Time time.Time `json:"time"`
	// Value is the value; 0 only in the series of a record "always" key.
	Value uint64 `json:"value"`
}

// AlertAnnotations collects the annotations of a: one entry per action
// (those without values too), keys in the order of the plugin's
// update_fields and then by name. A key of update_fields with record
// "always" that the action never stored gets a series of zeros at the
// times the action stored other keys (at the alert's first and last
// sighting when it stored none), so it is graphed all the same.
func (r *Reader) AlertAnnotations(ctx context.Context, a *alert.Alert) (Annotations, error) {
	vals, err := r.deps.Values.Values(ctx, a.ID)
	if err != nil {
		return Annotations{}, err
	}
	refs, err := r.deps.Actions.AlertActions(ctx, a.ID)
	if err != nil {
		return Annotations{}, err
	}
	slices.SortStableFunc(vals, func(x, y Value) int { return x.Time.Compare(y.Time) })
	byAction := make(map[uint64][]Value)
	for _, v := range vals {
		byAction[v.Action] = append(byAction[v.Action], v)
	}
	// Values of an action the lister no longer knows are shown too.
	refs = slices.Clone(refs)
	for id := range byAction {
		if !slices.ContainsFunc(refs, func(r ActionRef) bool { return r.ID == id }) {
			refs = append(refs, ActionRef{ID: id})
		}
	}
	out := Annotations{Alert: a.ID, Actions: make([]ActionAnnotations, 0, len(refs))}
	for _, ref := range refs {
		out.Actions = append(out.Actions, r.actionAnnotations(ref, byAction[ref.ID], a))
	}
	slices.SortStableFunc(out.Actions, func(x, y ActionAnnotations) int { return cmp.Compare(x.Action, y.Action) })
	return out, nil
}

// actionAnnotations builds the series of one action from its values,
// oldest first.
func (r *Reader) actionAnnotations(ref ActionRef, vals []Value, a *alert.Alert) ActionAnnotations {
	containers, fields := r.deps.Graphs.Graphs(ref.Plugin)
	out := ActionAnnotations{Action: ref.ID, Plugin: ref.Plugin, Containers: containers, UpdateFields: fields, Keys: []Series{}}
	if out.Containers == nil {
		out.Containers = []string{}
	}
	if out.UpdateFields == nil {
		out.UpdateFields = []UpdateField{}
	}
	series := make(map[string]*Series)
	var times []time.Time
	for _, v := range vals {
		s, ok := series[v.Key]
		if !ok {
			s = &Series{Key: v.Key, Label: v.Key}
			series[v.Key] = s
		}
		s.Points = append(s.Points, Point{Time: v.Time, Value: v.Value})
		if len(times) == 0 || !times[len(times)-1].Equal(v.Time) {
			times = append(times, v.Time)
		}
	}
	if len(times) == 0 {
		times = []time.Time{a.Earliest}
		if !a.Latest.Equal(a.Earliest) {
			times = append(times, a.Latest)
		}
	}
	shown := make(map[string]bool, len(fields))
	for _, f := range fields {
		s, ok := series[f.Key]
		if shown[f.Key] || !ok && !strings.EqualFold(f.Record, "always") {
			continue
		}
		shown[f.Key] = true
		if !ok {
			s = &Series{Key: f.Key}
			for _, t := range times {
				s.Points = append(s.Points, Point{Time: t})
			}
		}
		s.Label, s.Container = f.Label, f.Container
		out.Keys = append(out.Keys, *s)
		delete(series, f.Key)
	}
	for _, k := range slices.Sorted(maps.Keys(series)) {
		out.Keys = append(out.Keys, *series[k])
	}
	return out
}
