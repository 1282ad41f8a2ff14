package api

import (
	"net/http"
	"net/url"
	"strconv"
)

// Paging of long lists (exporters, their interfaces): ?limit= items from
// ?offset= in a stable order. The body stays the JSON array of the page;
// the X-Total-Count header gives the length of the whole list, and a Link
// header (RFC 8288) with rel="next" the URL of the next page while there
// is one.
const (
	defaultPageLimit = 100
	maxPageLimit     = 1000
)

// page is a parsed ?limit= and ?offset=.
type page struct{ limit, offset int }

// readPage parses ?limit= (1 to maxPageLimit, default defaultPageLimit)
// and ?offset= (0 or more, default 0), writing the error response when
// either is bad.
func readPage(w http.ResponseWriter, r *http.Request) (page, bool) {
	p := page{limit: defaultPageLimit}
	q := r.URL.Query()
	for _, f := range []struct {
		name     string
		dst      *int
		min, max int
	}{{"limit", &p.limit, 1, maxPageLimit}, {"offset", &p.offset, 0, int(^uint32(0) >> 1)}} {
		raw := q.Get(f.name)
		if raw == "" {
			continue
		}
		n, err := strconv.Atoi(raw)
		if err != nil || n < f.min || n > f.max {
			writeError(w, http.StatusBadRequest, "%s=%q is not valid; use a whole number from %d to %d", f.name, raw, f.min, f.max)
			return p, false
		}
		*f.dst = n
	}
	return p, true
}

// writePage answers with the page p of items, with the X-Total-Count and
// Link headers.
func writePage[T any](w http.ResponseWriter, r *http.Request, p page, items []T) {
	total := len(items)
	start := min(p.offset, total)
	end := min(start+p.limit, total)
	w.Header().Set("X-Total-Count", strconv.Itoa(total))
	if end < total {
		q := r.URL.Query()
		q.Set("limit", strconv.Itoa(p.limit))
		q.Set("offset", strconv.Itoa(end))
		next := url.URL{Path: r.URL.Path, RawQuery: q.Encode()}
		w.Header().Set("Link", "<"+next.String()+`>; rel="next"`)
	}
	out := items[start:end]
	if out == nil {
		out = []T{}
	}
	writeJSON(w, http.StatusOK, out)
}
