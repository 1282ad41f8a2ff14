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
	// Health are the checks of /healthz by the name it reports them
	// under (e.g. "store"): nil when the dependency works, its error
	// otherwise. They must not block.
	Health map[string]func() error
}

// Server is the HTTP server.
type Server struct {
	cfg  Config
	deps Deps
	srv  *http.Server
	ln   net.Listener
	m    *metrics
	done chan struct{}
	once sync.Once
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
	mux.HandleFunc("GET /api/v1/exporters", s.exporters)
	if deps.Alerting != nil {
		s.mountAlerting(mux, deps.Alerting)
		s.mountSamples(mux, deps.Alerting)
	}
	mux.HandleFunc("/", s.notFound)
	s.srv = &http.Server{
		Handler:           s.instrument(mux),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(deps.Log.Handler(), slog.LevelWarn),
	}
	return s, nil
}

// Start listens on the configured address and serves in a goroutine.
func (s *Server) Start() error {
	ln, err := net.Listen("tcp", s.cfg.Address)
	if err != nil {
		return fmt.Errorf("http: listen on %s: %w (set http.address or --http to a free host:port)", s.cfg.Address, err)
	}
	s.ln = ln
	s.done = make(chan struct{})
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
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
