package api

import (
	"net/http"
	"net/url"
	"strings"
)

// UI is the web UI the server mounts beside the API (package ui builds
// it): its pages, each behind the login like the API (a browser without
// one is sent to the login page instead of getting a 401), and the
// public login page and static assets.
type UI struct {
	// Pages are the paths of the pages, e.g. "/alerts"; the first is
	// where "/" and a fresh login lead.
	Pages []string
	// Handler serves the pages, GET /login and GET /assets/.
	Handler http.Handler
}

// mountUI registers the UI's routes, and "/" sending browsers to its first
// page (API clients asking for JSON still get the endpoint list).
func (s *Server) mountUI(mux *http.ServeMux, ui *UI) {
	for _, p := range ui.Pages {
		mux.Handle("GET "+p, ui.Handler)
	}
	mux.Handle("GET /login", ui.Handler)
	mux.Handle("GET /assets/", ui.Handler)
}

// wantsPage reports whether r is a browser asking for a page: a GET
// outside /api/ and /debug/ that accepts HTML.
func wantsPage(r *http.Request) bool {
	return r.Method == http.MethodGet && !strings.HasPrefix(r.URL.Path, "/api/") &&
		!strings.HasPrefix(r.URL.Path, "/debug/") && strings.Contains(r.Header.Get("Accept"), "text/html")
}

// toLogin sends a browser to the login page, which brings it back to the
// page it asked for once logged in.
func toLogin(w http.ResponseWriter, r *http.Request) {
	http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
}
