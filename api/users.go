package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"time"

	"github.com/flowsentry/flowsentry/model"
	"github.com/flowsentry/flowsentry/store"
)

// Accounts are the stored users and the audit log; *store.Store
// implements it.
type Accounts interface {
	Users(ctx context.Context) ([]store.User, error)
	User(ctx context.Context, name string) (store.User, error)
	CreateUser(ctx context.Context, u store.User, password string) error
	UpdateUser(ctx context.Context, u store.User, password string) error
	DeleteUser(ctx context.Context, name string) error
	Audit(ctx context.Context, q store.AuditQuery) ([]store.AuditEntry, error)
}

// mountUsers adds login, logout, session, users, tokens and audit.
func (s *Server) mountUsers(mux *http.ServeMux) {
	mux.HandleFunc("POST /api/v1/login", s.login)
	mux.HandleFunc("POST /api/v1/logout", s.logout)
	mux.HandleFunc("GET /api/v1/session", s.session)
	mux.HandleFunc("GET /api/v1/users", s.listUsers)
	mux.HandleFunc("POST /api/v1/users", s.putUser)
	mux.HandleFunc("GET /api/v1/users/{name}", s.getUser)
	mux.HandleFunc("PUT /api/v1/users/{name}", s.putUser)
	mux.HandleFunc("DELETE /api/v1/users/{name}", s.deleteUser)
	mux.HandleFunc("GET /api/v1/tokens", s.listTokens)
	mux.HandleFunc("POST /api/v1/tokens", s.createToken)
	mux.HandleFunc("DELETE /api/v1/tokens/{id}", s.deleteToken)
	mux.HandleFunc("GET /api/v1/audit", s.listAudit)
}

// SessionInfo answers POST /api/v1/login and GET /api/v1/session.
type SessionInfo struct {
	User   string   `json:"user"`
	Role   string   `json:"role"`
	CIDs   []uint32 `json:"cids"`
	Groups []uint32 `json:"groups"`
	// CSRFToken goes in the X-CSRF-Token header of every request of the
	// session that changes something; empty without a session.
	CSRFToken string `json:"csrf_token,omitempty"`
	// Via is how the request was authenticated: session, token, basic.
	Via Via `json:"via,omitempty"`
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	var body struct {
		User     string `json:"user"`
		Password string `json:"password"`
	}
	if !readJSON(w, r, &body) {
		return
	}
	if body.User == "" || body.Password == "" {
		writeError(w, http.StatusBadRequest, `login needs "user" and "password": send {"user":"NAME","password":"PASSWORD"}`)
		return
	}
	u, ns, err := s.deps.Auth.Login(r.Context(), body.User, body.Password, clientAddr(r))
	if err != nil {
		s.authError(w, r, body.User, err)
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: SessionCookie, Value: ns.ID, Path: "/", Expires: ns.Expires,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil,
	})
	s.audit(r, u.Name, http.StatusOK, "login")
	writeJSON(w, http.StatusOK, SessionInfo{User: u.Name, Role: string(u.Role), CIDs: ids(u.CIDs), Groups: ids(u.Groups), CSRFToken: ns.CSRF, Via: ViaSession})
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	if ck, err := r.Cookie(SessionCookie); err == nil {
		if err := s.deps.Auth.Logout(r.Context(), ck.Value); err != nil {
			writeError(w, http.StatusInternalServerError, "closing the session: %v", err)
			return
		}
	}
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	noteAudit(r, "logout")
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) session(w http.ResponseWriter, r *http.Request) {
	c := r.Context().Value(callerKey{}).(*caller)
	p := c.p
	writeJSON(w, http.StatusOK, SessionInfo{User: p.Name, Role: string(p.role()), CIDs: ids(p.CIDs), Groups: ids(p.Groups), CSRFToken: c.csrf, Via: c.via})
}

// ids is a list of IDs as JSON shows it: [] rather than null.
func ids(l []uint32) []uint32 {
	if l == nil {
		return []uint32{}
	}
	return l
}

// Role returns the principal's role: admin, manager or viewer.
func (p Principal) Role() string { return string(p.role()) }

// role is the principal's stored role.
func (p Principal) role() store.Role {
	switch {
	case p.Admin:
		return store.RoleAdmin
	case p.Manager:
		return store.RoleManager
	}
	return store.RoleViewer
}

// manages reports whether p may see and change user u: an admin every
// user, a manager the viewers and managers bound only to partitions (and,
// when p is restricted to groups, groups) of its own.
func (p Principal) manages(u store.User) bool {
	switch {
	case p.Admin:
		return true
	case !p.Manager || u.Role == store.RoleAdmin:
		return false
	case !subset(u.CIDs, p.CIDs):
		return false
	}
	return len(p.Groups) == 0 || len(u.Groups) > 0 && subset(u.Groups, p.Groups)
}

// subset reports whether every element of a is in b.
func subset(a, b []uint32) bool {
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}

// UserInfo is a user as the API shows it; the password is never shown.
type UserInfo struct {
	Name   string   `json:"name"`
	Role   string   `json:"role"`
	CIDs   []uint32 `json:"cids"`
	Groups []uint32 `json:"groups"`
}

func userInfo(u store.User) UserInfo {
	return UserInfo{Name: u.Name, Role: string(u.Role), CIDs: ids(u.CIDs), Groups: ids(u.Groups)}
}

func (s *Server) listUsers(w http.ResponseWriter, r *http.Request) {
	p := principal(r)
	all, err := s.deps.Accounts.Users(r.Context())
	if err != nil {
		writeError(w, http.StatusInternalServerError, "reading the users: %v", err)
		return
	}
	out := []UserInfo{}
	for _, u := range all {
		if u.Name == p.Name || p.manages(u) {
			out = append(out, userInfo(u))
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// visibleUser reads the {name} user that p may see (itself or one it
// manages), writing the error answer when there is none.
func (s *Server) visibleUser(w http.ResponseWriter, r *http.Request, p Principal) (store.User, bool) {
	name := r.PathValue("name")
	u, err := s.deps.Accounts.User(r.Context(), name)
	if errors.Is(err, store.ErrNotFound) || err == nil && u.Name != p.Name && !p.manages(u) {
		writeError(w, http.StatusNotFound, "no user %q that user %s may see; GET /api/v1/users lists them", name, p.Name)
		return store.User{}, false
	}
	if err != nil {
		writeError(w, http.StatusInternalServerError, "reading user %q: %v", name, err)
		return store.User{}, false
	}
	return u, true
}

func (s *Server) getUser(w http.ResponseWriter, r *http.Request) {
	if u, ok := s.visibleUser(w, r, principal(r)); ok {
		writeJSON(w, http.StatusOK, userInfo(u))
	}
}

// userBody is the body of POST /api/v1/users and PUT /api/v1/users/{name}:
// on PUT, a field left out keeps its value.
type userBody struct {
	Name     string    `json:"name"`
	Role     *string   `json:"role"`
	CIDs     *[]uint32 `json:"cids"`
	Groups   *[]uint32 `json:"groups"`
	Password *string   `json:"password"`
}

// validName is what a user name may be made of.
var validName = regexp.MustCompile(`^[A-Za-z0-9._@-]{1,64}$`)

// putUser creates (POST) or changes (PUT /{name}) a user.
func (s *Server) putUser(w http.ResponseWriter, r *http.Request) {
	p := principal(r)
	var b userBody
	if !readJSON(w, r, &b) {
		return
	}
	var old store.User
	creating := r.Method == http.MethodPost
	if creating {
		if !validName.MatchString(b.Name) {
			writeError(w, http.StatusBadRequest, "name %q is not valid: use 1 to 64 letters, digits, '.', '_', '@' or '-'", b.Name)
			return
		}
		if b.Role == nil || b.Password == nil {
			writeError(w, http.StatusBadRequest, `a new user needs "role" (admin, manager or viewer) and "password"`)
			return
		}
		old = store.User{Name: b.Name}
	} else {
		var ok bool
		if old, ok = s.visibleUser(w, r, p); !ok {
			return
		}
		if b.Name != "" && b.Name != old.Name {
			writeError(w, http.StatusBadRequest, "name %q differs from the path's %q: users cannot be renamed; create a new one and delete this one", b.Name, old.Name)
			return
		}
	}
	u := old
	if b.Role != nil {
		role := store.Role(*b.Role)
		if role == "user" {
			role = store.RoleViewer
		}
		if !role.Valid() {
			writeError(w, http.StatusBadRequest, "role %q is not valid: use admin, manager or viewer (or user, the same as viewer)", *b.Role)
			return
		}
		u.Role = role
	}
	if b.CIDs != nil {
		u.CIDs = *b.CIDs
	}
	if b.Groups != nil {
		u.Groups = *b.Groups
	}
	password := ""
	if b.Password != nil {
		password = *b.Password
		if password == "" || len(password) > 72 {
			writeError(w, http.StatusBadRequest, "password is %d bytes long: give 1 to 72 bytes (leave it out of a PUT to keep the password)", len(password))
			return
		}
	}
	if msg := s.checkBindings(u); msg != "" {
		writeError(w, http.StatusBadRequest, "%s", msg)
		return
	}
	onlyPassword := !creating && u.Name == p.Name && !p.manages(old) &&
		u.Role == old.Role && slices.Equal(u.CIDs, old.CIDs) && slices.Equal(u.Groups, old.Groups)
	if !onlyPassword && (!creating && !p.manages(old) || !p.manages(u)) {
		writeError(w, http.StatusForbidden, "user %s may not give user %q role %s, partitions %v and groups %v: an admin may, a manager only for viewers and managers of its own partitions, and a viewer may change only its own password", p.Name, u.Name, u.Role, ids(u.CIDs), ids(u.Groups))
		return
	}
	var err error
	if creating {
		err = s.deps.Accounts.CreateUser(r.Context(), u, password)
	} else {
		err = s.deps.Accounts.UpdateUser(r.Context(), u, password)
	}
	switch {
	case errors.Is(err, store.ErrUserExists):
		writeError(w, http.StatusConflict, "user %q exists already: PUT /api/v1/users/%s changes it", u.Name, u.Name)
		return
	case errors.Is(err, store.ErrLastAdmin):
		writeError(w, http.StatusConflict, "%v", store.ErrLastAdmin)
		return
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, "no user %q; GET /api/v1/users lists them", u.Name)
		return
	case err != nil:
		writeError(w, http.StatusInternalServerError, "saving user %q: %v", u.Name, err)
		return
	}
	s.deps.Auth.Forget(u.Name)
	noteAudit(r, userSummary(u, password != ""))
	status := http.StatusOK
	if creating {
		status = http.StatusCreated
	}
	writeJSON(w, status, userInfo(u))
}

// userSummary describes a saved user for the audit log, without its
// password.
func userSummary(u store.User, newPassword bool) string {
	s := fmt.Sprintf("user %s role %s partitions %v groups %v", u.Name, u.Role, ids(u.CIDs), ids(u.Groups))
	if newPassword {
		s += ", password set"
	}
	return s
}

// checkBindings checks that u's partitions exist and its groups belong to
// them; it returns the error message, "" when they do.
func (s *Server) checkBindings(u store.User) string {
	switch p, id, cid := s.deps.Model.Load().CheckBinding(u.CIDs, u.Groups, u.Role == store.RoleAdmin); p {
	case model.UnknownPartition:
		return fmt.Sprintf("cids: partition %d does not exist: GET /api/v1/partitions lists them", id)
	case model.UnknownGroup:
		return fmt.Sprintf("groups: traffic group %d does not exist: GET /api/v1/trafficgroups lists them", id)
	case model.GroupOutsidePartitions:
		return fmt.Sprintf("groups: traffic group %d is in partition %d, which is not in cids %v: add the partition or leave the group out", id, cid, ids(u.CIDs))
	}
	return ""
}

func (s *Server) deleteUser(w http.ResponseWriter, r *http.Request) {
	p := principal(r)
	u, ok := s.visibleUser(w, r, p)
	if !ok {
		return
	}
	if !p.manages(u) {
		writeError(w, http.StatusForbidden, "user %s may not delete user %q: ask an admin or a manager of its partitions", p.Name, u.Name)
		return
	}
	err := s.deps.Accounts.DeleteUser(r.Context(), u.Name)
	switch {
	case errors.Is(err, store.ErrLastAdmin):
		writeError(w, http.StatusConflict, "%v", store.ErrLastAdmin)
		return
	case err != nil:
		writeError(w, http.StatusInternalServerError, "deleting user %q: %v", u.Name, err)
		return
	}
	s.deps.Auth.Forget(u.Name)
	noteAudit(r, "user "+u.Name+" deleted")
	w.WriteHeader(http.StatusNoContent)
}

// TokenInfo is an API token as POST /api/v1/tokens answers it: Secret is
// shown only there, once.
type TokenInfo struct {
	store.Token
	Secret string `json:"token"`
}

func (s *Server) createToken(w http.ResponseWriter, r *http.Request) {
	p := principal(r)
	var b struct {
		Name      string `json:"name"`
		ExpiresIn string `json:"expires_in"`
	}
	if !readJSON(w, r, &b) {
		return
	}
	if b.Name == "" || len(b.Name) > 100 {
		writeError(w, http.StatusBadRequest, `name is %d characters long: say in 1 to 100 what the token is for, e.g. {"name":"grafana"}`, len(b.Name))
		return
	}
	var ttl time.Duration
	if b.ExpiresIn != "" {
		var err error
		if ttl, err = time.ParseDuration(b.ExpiresIn); err != nil || ttl <= 0 {
			writeError(w, http.StatusBadRequest, `expires_in %q is not a positive duration: write e.g. "720h", or leave it out for a token that does not expire`, b.ExpiresIn)
			return
		}
	}
	raw, tk, err := s.deps.Auth.CreateToken(r.Context(), p.Name, b.Name, ttl)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "creating the token: %v", err)
		return
	}
	noteAudit(r, fmt.Sprintf("token %d %q of %s created", tk.ID, tk.Name, tk.User))
	writeJSON(w, http.StatusCreated, TokenInfo{Token: tk, Secret: raw})
}

func (s *Server) listTokens(w http.ResponseWriter, r *http.Request) {
	p := principal(r)
	user := p.Name
	if p.Admin {
		user = ""
	}
	list, err := s.deps.Auth.Tokens(r.Context(), user)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "reading the tokens: %v", err)
		return
	}
	writeJSON(w, http.StatusOK, list)
}

func (s *Server) deleteToken(w http.ResponseWriter, r *http.Request) {
	p := principal(r)
	id, ok := pathID(w, r, "token")
	if !ok {
		return
	}
	if !p.Admin {
		own, err := s.deps.Auth.Tokens(r.Context(), p.Name)
		if err != nil {
			writeError(w, http.StatusInternalServerError, "reading the tokens: %v", err)
			return
		}
		if !slices.ContainsFunc(own, func(t store.Token) bool { return t.ID == id }) {
			writeError(w, http.StatusNotFound, "no token %d of user %s; GET /api/v1/tokens lists them", id, p.Name)
			return
		}
	}
	tk, err := s.deps.Auth.RevokeToken(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, "no token %d; GET /api/v1/tokens lists them", id)
		return
	}
	if err != nil {
		writeError(w, http.StatusInternalServerError, "revoking token %d: %v", id, err)
		return
	}
	noteAudit(r, fmt.Sprintf("token %d %q of %s revoked", tk.ID, tk.Name, tk.User))
	w.WriteHeader(http.StatusNoContent)
}

// listAudit serves the audit log, newest first: every entry to an admin;
// to a manager those of itself and of the users it manages.
func (s *Server) listAudit(w http.ResponseWriter, r *http.Request) {
	p := principal(r)
	if !p.Admin && !p.Manager {
		writeError(w, http.StatusForbidden, "user %s may not read the audit log: admins and managers may", p.Name)
		return
	}
	q := store.AuditQuery{Limit: 100}
	if raw := r.URL.Query().Get("limit"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || n > maxLimit {
			writeError(w, http.StatusBadRequest, "limit=%q is not valid; use a number from 1 to %d", raw, maxLimit)
			return
		}
		q.Limit = n
	}
	if raw := r.URL.Query().Get("before"); raw != "" {
		n, err := strconv.ParseUint(raw, 10, 63)
		if err != nil || n == 0 {
			writeError(w, http.StatusBadRequest, "before=%q is not valid; use the seq of the oldest entry of the previous page", raw)
			return
		}
		q.Before = n
	}
	if !p.Admin {
		all, err := s.deps.Accounts.Users(r.Context())
		if err != nil {
			writeError(w, http.StatusInternalServerError, "reading the users: %v", err)
			return
		}
		q.Users = []string{p.Name}
		for _, u := range all {
			if p.manages(u) {
				q.Users = append(q.Users, u.Name)
			}
		}
	}
	list, err := s.deps.Accounts.Audit(r.Context(), q)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "reading the audit log: %v", err)
		return
	}
	writeJSON(w, http.StatusOK, list)
}
