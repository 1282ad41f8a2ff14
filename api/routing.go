package api

import (
	"net/http"
	"strings"
)

// probeMethods are the methods tried on a path no pattern matches, to
// tell a wrong method (405) from an unknown path (404). HEAD follows GET.
var probeMethods = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}

// route serves the requests mux has a pattern for, and answers the others
// in JSON: 405 with an Allow header listing the methods of the path when
// it has some, 404 otherwise. (A catch-all "/" pattern would turn every
// wrong method into a 404; ServeMux's own answers are plain text.)
func route(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := mux.Handler(r); pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		var allow []string
		probe := r.Clone(r.Context())
		for _, m := range probeMethods {
			probe.Method = m
			if _, pattern := mux.Handler(probe); pattern != "" {
				allow = append(allow, m)
			}
		}
		if len(allow) == 0 {
			writeError(w, http.StatusNotFound, "no endpoint %s %s; GET / lists the endpoints", r.Method, r.URL.Path)
			return
		}
		w.Header().Set("Allow", strings.Join(allow, ", "))
		writeError(w, http.StatusMethodNotAllowed, "method %s is not allowed on %s; use %s", r.Method, r.URL.Path, strings.Join(allow, " or "))
	})
}
