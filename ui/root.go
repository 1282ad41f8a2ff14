// Package ui is flowsentry's web UI: page shells rendered on the server
// with html/template, whose small ES-module scripts (static/js) read the
// JSON API and its server-sent events and draw charts with uPlot. The
// front end has no build step: the scripts are served as written, and the
// only third-party files (static/vendor) are copied from the npm lock file
// by web/vendor.sh and checked by TestVendoredAssets. Everything is
// embedded in the binary, so the UI works with no internet access.
//
// Pages are behind the login like the API (package api sends a browser
// without a session to /login); the login page and the static assets are
// public. Every page answers with a strict Content-Security-Policy: no
// inline script, nothing from another origin.
package ui

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/flowsentry/flowsentry/api"
)

//go:embed static templates
var files embed.FS

// Page is one page of the UI.
type Page struct {
	// Path is where it is served, e.g. "/alerts".
	Path string
	// Title names it in the navigation and the window title.
	Title string
	// Template is its file in templates/, defining "content".
	Template string
	// Script is its module in static/js.
	Script string
	// Roles that see it in the navigation; empty means every role.
	Roles []string
}

// server serves the pages, the login page and the assets.
type server struct {
	log    *slog.Logger
	pages  []Page
	tmpl   map[string]*template.Template // by page path, "/login" included
	static fs.FS
	etags  map[string]string // by asset path under static/
}

// New returns the UI to mount in the API server.
func New(log *slog.Logger) (*api.UI, error) {
	static, err := fs.Sub(files, "static")
	if err != nil {
		return nil, err
	}
	s := &server{log: log, pages: pages, tmpl: map[string]*template.Template{}, static: static, etags: map[string]string{}}
	all := append([]Page{loginPage}, pages...)
	for _, p := range all {
		t, err := template.New(p.Template).ParseFS(files, "templates/layout.html", "templates/"+p.Template)
		if err != nil {
			return nil, fmt.Errorf("ui: page %s: %w", p.Path, err)
		}
		s.tmpl[p.Path] = t
	}
	err = fs.WalkDir(static, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(static, name)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		s.etags[name] = `"` + hex.EncodeToString(sum[:8]) + `"`
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("ui: assets: %w", err)
	}
	paths := make([]string, len(pages))
	for i, p := range pages {
		paths[i] = p.Path
	}
	return &api.UI{Pages: paths, Handler: s}, nil
}

// ServeHTTP serves an asset, the login page or a page.
func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if name, ok := strings.CutPrefix(r.URL.Path, "/assets/"); ok {
		s.asset(w, r, name)
		return
	}
	if r.URL.Path == loginPage.Path {
		s.render(w, r, loginPage, view{})
		return
	}
	for _, p := range s.pages {
		if p.Path == r.URL.Path {
			pr, ok := api.PrincipalFrom(r.Context())
			if !ok { // the API's guard lets no page through without a login
				http.Redirect(w, r, loginPage.Path, http.StatusSeeOther)
				return
			}
			s.render(w, r, p, view{User: pr.Name, Role: pr.Role()})
			return
		}
	}
	http.NotFound(w, r)
}

// view is what a page's template sees besides the page.
type view struct {
	Page Page
	Nav  []Page
	User string
	Role string
}

// render writes page p with the security headers.
func (s *server) render(w http.ResponseWriter, r *http.Request, p Page, v view) {
	v.Page = p
	for _, q := range s.pages {
		if len(q.Roles) == 0 || slices.Contains(q.Roles, v.Role) {
			v.Nav = append(v.Nav, q)
		}
	}
	var b bytes.Buffer
	if err := s.tmpl[p.Path].ExecuteTemplate(&b, "layout", v); err != nil {
		s.log.Error("ui: render", "page", p.Path, "err", err)
		http.Error(w, "the page could not be rendered; see the server log", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	securityHeaders(h)
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	_, _ = w.Write(b.Bytes())
}

// asset serves a static file with an ETag of its content: browsers
// revalidate (no-cache) and get 304 until a new binary changes it.
func (s *server) asset(w http.ResponseWriter, r *http.Request, name string) {
	name = path.Clean(name)
	etag, ok := s.etags[name]
	if !ok {
		http.NotFound(w, r)
		return
	}
	b, err := fs.ReadFile(s.static, name)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	securityHeaders(h)
	h.Set("ETag", etag)
	h.Set("Cache-Control", "no-cache")
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(b))
}

// securityHeaders forbids inline scripts, other origins and framing.
func securityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("X-Frame-Options", "DENY")
}
