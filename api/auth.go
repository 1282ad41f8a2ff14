package api

import (
	"context"
	"crypto/subtle"
	"errors"
	"math"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/flowsentry/flowsentry/annotate"
	"github.com/flowsentry/flowsentry/auth"
	"github.com/flowsentry/flowsentry/store"
)

// SessionCookie is the name of the login session's cookie.
const SessionCookie = "flowsentry_session"

// CSRFHeader is the header a request authenticated by the session cookie
// must carry, with the session's CSRF token, unless it is a GET, HEAD or
// OPTIONS.
const CSRFHeader = "X-CSRF-Token"

// PublicPaths are the path prefixes that answer without a login besides
// the public routes: the web UI's login page and its static assets.
var PublicPaths = []string{"/login", "/assets/"}

// publicRoutes are the route patterns that answer without a login: the
// health check and metrics (for monitoring), the login itself, and the
// plugins' annotations, which carry the call's one-time token.
var publicRoutes = []string{"GET /healthz", "GET /metrics", "POST /api/v1/login", "POST /api/v1/annotations"}

// needLogin is the answer to a request without credentials.
const needLogin = "log in (POST /api/v1/login) or send a token (Authorization: Bearer) or basic auth (curl -u USER:PASSWORD)"

// Via says how a request was authenticated.
type Via string

// The ways.
const (
	ViaSession Via = "session"
	ViaToken   Via = "token"
	ViaBasic   Via = "basic"
)

// caller is what the middleware found out about a request, in its
// context.
type caller struct {
	p    Principal
	via  Via
	csrf string
	// summary describes the object a change touched, for the audit log;
	// handlers set it with noteAudit.
	summary string
	// audited is set by handlers that write their own audit entry.
	audited bool
}

type callerKey struct{}

// PrincipalFrom returns the principal of a request the server
// authenticated.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	c, ok := ctx.Value(callerKey{}).(*caller)
	if !ok {
		return Principal{}, false
	}
	return c.p, true
}

// ContextWithPrincipal returns ctx carrying p as the authenticated
// principal, for handlers called without the server (as a test does).
func ContextWithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, callerKey{}, &caller{p: p})
}

// principal is the request's principal; the zero Principal, which sees
// nothing, when there is none.
func principal(r *http.Request) Principal {
	p, _ := PrincipalFrom(r.Context())
	return p
}

// noteAudit sets the audit summary of the request's change.
func noteAudit(r *http.Request, summary string) {
	if c, ok := r.Context().Value(callerKey{}).(*caller); ok {
		c.summary = summary
	}
}

// principalOf is the principal of a stored user.
func principalOf(u store.User) Principal {
	return Principal{Name: u.Name, Admin: u.Role == store.RoleAdmin, Manager: u.Role == store.RoleManager, CIDs: u.CIDs, Groups: u.Groups}
}

// isPublic reports whether the route pattern or path answers without a
// login.
func isPublic(pattern, path string) bool {
	return slices.Contains(publicRoutes, pattern) ||
		slices.ContainsFunc(PublicPaths, func(p string) bool { return strings.HasPrefix(path, p) })
}

// safeMethod reports whether a method changes nothing, so needs no CSRF
// token and leaves no audit entry.
func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// guard authenticates every request but the public ones (mux tells their
// route), puts the principal in the request's context, keeps
// /debug/pprof/ to admins, and records every successful change in the
// audit log; next serves what it lets through.
func (s *Server) guard(mux *http.ServeMux, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// No pattern: next answers 404 or 405, which tells nothing the
		// documentation does not.
		if _, pattern := mux.Handler(r); pattern == "" || isPublic(pattern, r.URL.Path) {
			next.ServeHTTP(w, r)
			return
		}
		c, ok := s.authenticate(w, r)
		if !ok {
			return
		}
		if strings.HasPrefix(r.URL.Path, "/debug/pprof/") && !c.p.Admin {
			writeError(w, http.StatusForbidden, "user %s may not read the profiler: /debug/pprof/ is for admins", c.p.Name)
			return
		}
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		next.ServeHTTP(sw, r.WithContext(context.WithValue(r.Context(), callerKey{}, c)))
		if !safeMethod(r.Method) && sw.code < 400 && !c.audited {
			s.audit(r, c.p.Name, sw.code, c.summary)
		}
	})
}

// authenticate finds the request's principal from, in this order, the
// session cookie, a bearer token and basic auth. It writes the error
// answer and returns false when there is none.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request) (*caller, bool) {
	ctx, addr, a := r.Context(), clientAddr(r), s.deps.Auth
	expired := false
	if ck, err := r.Cookie(SessionCookie); err == nil && ck.Value != "" {
		u, se, err := a.Session(ctx, ck.Value)
		switch {
		case err == nil:
			if !safeMethod(r.Method) && subtle.ConstantTimeCompare([]byte(r.Header.Get(CSRFHeader)), []byte(se.CSRF)) != 1 {
				a.Refused(auth.ReasonCSRF)
				s.deps.Log.Warn("request without the session's CSRF token refused", "user", u.Name, "addr", addr, "method", r.Method, "path", r.URL.Path)
				writeError(w, http.StatusForbidden, "a %s with the session cookie needs the %s header set to the session's csrf_token (from POST /api/v1/login or GET /api/v1/session)", r.Method, CSRFHeader)
				return nil, false
			}
			return &caller{p: principalOf(u), via: ViaSession, csrf: se.CSRF}, true
		case errors.Is(err, auth.ErrExpired):
			expired = true
		default:
			s.authError(w, r, "", err)
			return nil, false
		}
	}
	if h := r.Header.Get("Authorization"); len(h) > 7 && strings.EqualFold(h[:7], "Bearer ") {
		u, _, err := a.Token(ctx, strings.TrimSpace(h[7:]), addr)
		if err != nil {
			s.authError(w, r, "", err)
			return nil, false
		}
		return &caller{p: principalOf(u), via: ViaToken}, true
	}
	if name, pass, ok := r.BasicAuth(); ok {
		u, err := a.Basic(ctx, name, pass, addr)
		if err != nil {
			s.authError(w, r, name, err)
			return nil, false
		}
		return &caller{p: principalOf(u), via: ViaBasic}, true
	}
	if s.deps.UI != nil && wantsPage(r) {
		toLogin(w, r)
		return nil, false
	}
	challenge(w, r)
	if expired {
		writeError(w, http.StatusUnauthorized, "the session has expired or was closed: "+needLogin)
		return nil, false
	}
	writeError(w, http.StatusUnauthorized, "this endpoint needs a user: "+needLogin)
	return nil, false
}

// authError answers a failed credential check; a bad name or password is
// recorded in the audit log as a failed login of name.
func (s *Server) authError(w http.ResponseWriter, r *http.Request, name string, err error) {
	var locked *auth.LockedError
	switch {
	case errors.As(err, &locked):
		wait := max(1, int(math.Ceil(locked.Wait.Seconds())))
		w.Header().Set("Retry-After", strconv.Itoa(wait))
		writeError(w, http.StatusTooManyRequests, "%v (in %d s)", err, wait)
	case errors.Is(err, auth.ErrBadCredentials):
		s.audit(r, name, http.StatusUnauthorized, "failed login: unknown user or wrong password")
		challenge(w, r)
		if r.URL.Path == "/api/v1/login" {
			writeError(w, http.StatusUnauthorized, "bad user name or password: check them and try again")
			return
		}
		writeError(w, http.StatusUnauthorized, "bad user name or password: check them, or "+needLogin)
	case errors.Is(err, auth.ErrBadToken), errors.Is(err, auth.ErrExpired):
		s.audit(r, name, http.StatusUnauthorized, "failed login: "+err.Error())
		challenge(w, r)
		writeError(w, http.StatusUnauthorized, "%v: create a new one (POST /api/v1/tokens) or %s", err, needLogin)
	default:
		s.deps.Log.Error("checking credentials", "err", err)
		writeError(w, http.StatusInternalServerError, "the credentials could not be checked (server error, see its log); try again")
	}
}

// audit records a request in the audit log.
func (s *Server) audit(r *http.Request, user string, status int, summary string) {
	s.deps.Auth.Audit(r.Context(), store.AuditEntry{
		User: user, Addr: clientAddr(r), Method: r.Method, Path: r.URL.Path, Status: status, Summary: summary,
	})
}

// clientAddr is the IP address of the request's client.
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// adminOnly refuses h to every user but admins.
func adminOnly(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if p := principal(r); !p.Admin {
			writeError(w, http.StatusForbidden, "user %s may not read %s: it shows every partition's traffic, so only admins may", p.Name, r.URL.Path)
			return
		}
		h(w, r)
	}
}

// viaReader serves a route of the annotate.Reader, which reads the user
// from basic auth: it names the principal the middleware found in the
// request's basic auth, which ReaderUsers then checks against the
// context, so that sessions and tokens work for it as well.
func viaReader(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		r2 := r.Clone(r.Context())
		r2.SetBasicAuth(principal(r).Name, "")
		h(w, r2)
	}
}

// ReaderUsers is the Authenticator of the annotate.Reader mounted on this
// server: the request was authenticated before, the user is the context's
// principal.
type ReaderUsers struct{}

// Authenticate returns the partitions of the context's principal if it is
// name.
func (ReaderUsers) Authenticate(ctx context.Context, name, _ string) ([]uint32, bool, error) {
	p, ok := PrincipalFrom(ctx)
	if !ok || p.Name != name {
		return nil, false, annotate.ErrBadCredentials
	}
	return p.CIDs, p.Admin, nil
}

// Groups returns the traffic groups the context's principal is restricted
// to, if it is name; nil for none.
func (ReaderUsers) Groups(ctx context.Context, name string) []uint32 {
	if p, ok := PrincipalFrom(ctx); ok && p.Name == name && !p.Admin && len(p.Groups) > 0 {
		return p.Groups
	}
	return nil
}

// challenge asks for basic auth (WWW-Authenticate), except from the web
// UI's scripts (X-Requested-With set): a browser answers the challenge
// with its own password dialog, which would hide the login page's message
// (and hang a headless browser).
func challenge(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("X-Requested-With") == "" {
		w.Header().Set("WWW-Authenticate", `Basic realm="flowsentry"`)
	}
}
