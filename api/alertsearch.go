package api

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/flowsentry/flowsentry/alertindex"
)

// The bounds of the search parameters.
const (
	defaultSearchLimit  = 100
	maxSearchLimit      = 1000
	defaultSearchSlices = 120
	maxSearchSlices     = 1000
	defaultSearchRange  = 24 * time.Hour
)

// searchParams are the query parameters GET /api/v1/alerts/search knows.
var searchParams = []string{"from", "to", "severity", "status", "type", "blacklist", "duration", "note", "cid",
	"q", "sort", "limit", "offset", "slices"}

// searching answers 404 without calling h when the server has no alert
// index.
func searching(h authedHandler) authedHandler {
	return func(w http.ResponseWriter, r *http.Request, a *Alerting, p Principal) {
		if a.Search == nil {
			writeError(w, http.StatusNotFound, "this server has no alert index: the alert search and notes are off")
			return
		}
		h(w, r, a, p)
	}
}

// searchAlerts answers GET /api/v1/alerts/search: the alerts of the
// partitions p sees matching the filters, with facets and a histogram.
func (s *Server) searchAlerts(w http.ResponseWriter, r *http.Request, a *Alerting, p Principal) {
	q, err := parseSearch(r.URL.Query(), time.Now())
	if err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	q.May = p.seesGroup
	res := a.Search.Search(q)
	names := map[uint64]string{}
	for i := range res.Alerts {
		ref := &res.Alerts[i].Policy
		name, ok := names[ref.ID]
		if !ok {
			name = policyRef(a, ref.ID).Name
			names[ref.ID] = name
		}
		ref.Name = name
	}
	writeJSON(w, http.StatusOK, res)
}

// parseSearch reads a search from the query parameters; now is the default
// end of the time range.
func parseSearch(v url.Values, now time.Time) (alertindex.Query, error) {
	q := alertindex.Query{To: now, Limit: defaultSearchLimit, Slices: defaultSearchSlices}
	for name := range v {
		if !slices.Contains(searchParams, name) {
			return q, fmt.Errorf("unknown query parameter %q: use %s", name, strings.Join(searchParams, ", "))
		}
	}
	var errs []error
	tm := func(name string, dst *time.Time) {
		if s := v.Get(name); s != "" {
			t, err := time.Parse(time.RFC3339, s)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s %q is not an RFC 3339 time: write e.g. 2026-03-14T15:09:26Z", name, s))
			}
			*dst = t
		}
	}
	tm("to", &q.To)
	q.From = q.To.Add(-defaultSearchRange)
	tm("from", &q.From)
	if len(errs) == 0 && !q.From.Before(q.To) {
		errs = append(errs, fmt.Errorf("from %s is not before to %s: give a from earlier than to", q.From.Format(time.RFC3339), q.To.Format(time.RFC3339)))
	}
	ints := func(name string, lo, hi int) []int {
		var out []int
		for _, s := range v[name] {
			n, err := strconv.Atoi(s)
			if err != nil || n < lo || n > hi {
				errs = append(errs, fmt.Errorf("%s %q is not an integer from %d to %d", name, s, lo, hi))
				continue
			}
			out = append(out, n)
		}
		return out
	}
	one := func(name string, def, lo, hi int) int {
		if len(v[name]) > 1 {
			errs = append(errs, fmt.Errorf("%s is given %d times: give it once", name, len(v[name])))
		}
		if list := ints(name, lo, hi); len(list) > 0 {
			return list[0]
		}
		return def
	}
	enum := func(name string, allowed []string) []string {
		for _, s := range v[name] {
			if !slices.Contains(allowed, s) {
				errs = append(errs, fmt.Errorf("%s %q is not one of %s", name, s, strings.Join(allowed, ", ")))
			}
		}
		return v[name]
	}
	ids := func(name string) []uint32 {
		var out []uint32
		for _, n := range ints(name, 0, 1<<32-1) {
			out = append(out, uint32(n))
		}
		return out
	}
	q.Severity = ints("severity", 0, 1<<31-1)
	q.Status = enum("status", alertindex.Statuses)
	q.Type = v["type"]
	q.Blacklist = ids("blacklist")
	q.Duration = enum("duration", alertindex.Durations)
	for _, n := range v["note"] {
		if n != alertindex.NoteNone && !slices.Equal(alertindex.Tags(n), []string{n}) {
			errs = append(errs, fmt.Errorf("note %q is neither %q nor a lower-case @tag (@ then letters, digits, - or _)", n, alertindex.NoteNone))
		}
	}
	q.Note = v["note"]
	q.CID = ids("cid")
	q.Q = v.Get("q")
	if sorts := enum("sort", alertindex.Sorts); len(sorts) > 0 {
		q.Sort = sorts[0]
	}
	q.Limit = one("limit", defaultSearchLimit, 1, maxSearchLimit)
	q.Offset = one("offset", 0, 0, 1<<31-1)
	q.Slices = one("slices", defaultSearchSlices, 1, maxSearchSlices)
	return q, errors.Join(errs...)
}

// noteBody is the body of POST /api/v1/alerts/{id}/notes.
type noteBody struct {
	Text string `json:"text"`
}

// listNotes answers GET /api/v1/alerts/{id}/notes.
func (s *Server) listNotes(w http.ResponseWriter, r *http.Request, a *Alerting, p Principal) {
	id, ok := pathID(w, r, "alert")
	if !ok {
		return
	}
	list, err := a.Search.Notes(r.Context(), id, p.seesGroup)
	if !noteError(w, err, id, p) {
		writeJSON(w, http.StatusOK, list)
	}
}

// addNote answers POST /api/v1/alerts/{id}/notes: any user who sees the
// alert may write a note.
func (s *Server) addNote(w http.ResponseWriter, r *http.Request, a *Alerting, p Principal) {
	id, ok := pathID(w, r, "alert")
	if !ok {
		return
	}
	var body noteBody
	if !readJSON(w, r, &body) {
		return
	}
	n, err := a.Search.AddNote(r.Context(), id, p.Name, body.Text, p.seesGroup)
	if !noteError(w, err, id, p) {
		writeJSON(w, http.StatusCreated, n)
	}
}

// noteError writes the answer of a failed note request and reports
// whether err was one.
func noteError(w http.ResponseWriter, err error, id uint64, p Principal) bool {
	var bad *alertindex.NoteError
	switch {
	case err == nil:
		return false
	case errors.Is(err, alertindex.ErrNotFound):
		writeError(w, http.StatusNotFound, "no alert %d that user %s may see", id, p.Name)
	case errors.As(err, &bad):
		writeError(w, http.StatusBadRequest, "text: %v", err)
	default:
		writeError(w, http.StatusInternalServerError, "notes of alert %d: %v", id, err)
	}
	return true
}
