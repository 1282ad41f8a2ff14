// Package api is the HTTP server of flowsentry: the JSON API under /api/v1,
// Prometheus metrics on /metrics and a health check on /healthz. Handlers
// read immutable snapshots (model, rates), so they never block the
// pipeline.
package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/flowsentry/flowsentry/auth"
	"github.com/flowsentry/flowsentry/model"
	"github.com/flowsentry/flowsentry/rates"
)

// Deps are what the server reads from.
type Deps struct {
	// Gatherer serves /metrics.
	Gatherer prometheus.Gatherer
	// Registerer receives the server's own metrics.
	Registerer prometheus.Registerer
	// Model is the model in use.
	Model *model.Holder
	// Rates returns the latest rate snapshot.
	Rates func() *rates.Snapshot
	// Log receives server errors.
	Log *slog.Logger
	// Alerting exposes policies, plugins, alerts and actions; nil leaves
	// those endpoints out.
	Alerting *Alerting
	// Samples serves the sampled packet headers of DDoS alerts
	// (GET /api/v1/alerts/{id}/pcap); nil keeps none.
	Samples PacketSamples
	// History serves the rate history (GET /api/v1/history); nil keeps
	// none.
	History HistoryReader
	// Health are the checks of /healthz by the name it reports them
	// under (e.g. "store"): nil when the dependency works, its error
	// otherwise. They must not block.
	Health map[string]func() error
	// Auth authenticates every request but those of /healthz, /metrics,
	// the login, the plugins' annotations and PublicPaths; required.
	Auth *auth.Service
	// Accounts are the users and the audit log; required.
	Accounts Accounts
	// UI is the web UI; nil serves the API alone.
	UI *UI
	// Events are the live updates (GET /api/v1/events); nil publishes
	// none.
	Events *Events
}

// Server is the HTTP server.
type Server struct {
	cfg  Config
	deps Deps
	srv  *http.Server
	ln   net.Listener
	m    *metrics
	// conns caps the connections; cert is the TLS certificate, nil for
	// plain HTTP.
	conns *connLimiter
	cert  *certificate
	done  chan struct{}
	once  sync.Once
}

// New validates cfg and builds the handlers; it opens nothing.
func New(cfg Config, deps Deps) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m, err := newMetrics(deps.Registerer)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, deps: deps, m: m}
	if s.conns, err = newConnLimiter(cfg, deps.Registerer); err != nil {
		return nil, err
	}
	if s.cert, err = loadCertificate(cfg); err != nil {
		return nil, err
	}
	if deps.Auth == nil || deps.Accounts == nil {
		return nil, errors.New("api: Deps.Auth and Deps.Accounts are required: every endpoint but /healthz and /metrics needs a user")
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(deps.Gatherer, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(deps.Log.Handler(), slog.LevelError)}))
	mux.HandleFunc("GET /healthz", s.health)
	// Go's profiler, for operators chasing CPU or memory use.
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("GET /{$}", s.index)
	mux.HandleFunc("GET /api/v1/partitions", s.partitions)
	mux.HandleFunc("GET /api/v1/trafficgroups", s.trafficGroups)
	mux.HandleFunc("GET /api/v1/trafficgroups/{id}", s.trafficGroup)
	mux.HandleFunc("GET /api/v1/trafficgroups/{id}/ports", s.groupPorts)
	mux.HandleFunc("GET /api/v1/trafficgroups/{id}/hosts", s.groupHosts)
	mux.HandleFunc("GET /api/v1/exporters", adminOnly(s.exporters))
	mux.HandleFunc("GET /api/v1/exporters/{addr}/interfaces", adminOnly(s.exporterInterfaces))
	mux.HandleFunc("GET /api/v1/exporters/{addr}/interfaces/{ifindex}/ports", adminOnly(s.interfacePorts))
	if deps.Alerting != nil {
		s.mountAlerting(mux, deps.Alerting)
		s.mountSamples(mux, deps.Alerting)
		mux.HandleFunc("GET /api/v1/history", s.auth(deps.Alerting, s.history))
	}
	s.mountUsers(mux)
	mux.HandleFunc("GET /api/v1/openapi.json", s.openAPI)
	mux.HandleFunc("GET /api/v1/events", s.events)
	if deps.UI != nil {
		s.mountUI(mux, deps.UI)
	}
	s.srv = &http.Server{
		Handler:           s.instrument(s.guard(mux, route(mux))),
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       cfg.IdleTimeout,
		ConnState:         s.conns.connState,
		ErrorLog:          slog.NewLogLogger(deps.Log.Handler(), slog.LevelWarn),
	}
	if s.cert != nil {
		s.srv.TLSConfig = s.cert.config()
	}
	return s, nil
}

// Start listens on the configured address and serves in a goroutine:
// HTTPS only when http.tls_cert is set, plain HTTP otherwise.
//
// Go (since 1.19) raises the process's soft RLIMIT_NOFILE to its hard
// limit at start, and restores the original for child processes such as
// plugins, so the connection cap, not the descriptor limit, binds first.
func (s *Server) Start() error {
	ln, err := net.Listen("tcp", s.cfg.Address)
	if err != nil {
		return fmt.Errorf("http: listen on %s: %w (set http.address or --http to a free host:port)", s.cfg.Address, err)
	}
	s.ln = ln
	s.done = make(chan struct{})
	go func() {
		defer close(s.done)
		serve := s.srv.Serve
		if s.cert != nil {
			// The certificate comes from TLSConfig.GetCertificate.
			serve = func(ln net.Listener) error { return s.srv.ServeTLS(ln, "", "") }
		}
		if err := serve(s.conns.listener(ln)); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.deps.Log.Error("http server stopped", "err", err)
		}
	}()
	return nil
}

// Addr returns the address the server listens on, nil before Start.
func (s *Server) Addr() net.Addr {
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// Stop shuts the server down, waiting up to five seconds for requests in
// flight. It is idempotent and safe when Start never ran.
func (s *Server) Stop() {
	s.once.Do(func() {
		if s.ln == nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.srv.Shutdown(ctx); err != nil {
			s.deps.Log.Warn("http shutdown", "err", err)
		}
		<-s.done
	})
}
