package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flowsentry/flowsentry/action"
	"github.com/flowsentry/flowsentry/alert"
	"github.com/flowsentry/flowsentry/alertindex"
	"github.com/flowsentry/flowsentry/annotate"
	"github.com/flowsentry/flowsentry/api"
	"github.com/flowsentry/flowsentry/auth"
	"github.com/flowsentry/flowsentry/config"
	"github.com/flowsentry/flowsentry/engine"
	"github.com/flowsentry/flowsentry/history"
	"github.com/flowsentry/flowsentry/model"
	"github.com/flowsentry/flowsentry/plugin"
	"github.com/flowsentry/flowsentry/policy"
	"github.com/flowsentry/flowsentry/rates"
	"github.com/flowsentry/flowsentry/samples"
	"github.com/flowsentry/flowsentry/store"
)

// alerting wires the database, policies, detectors, alert engine, plugin
// actions and annotations. build creates it without opening anything;
// Start opens the database and loads the state in dependency order.
type alerting struct {
	file   *config.File
	cfg    config.Config
	log    *slog.Logger
	stderr io.Writer
	model  *model.Holder

	store     *store.Store
	registry  *plugin.Registry
	runner    *plugin.Runner
	instances *plugin.Instances
	policies  *policy.Manager
	engine    *engine.Engine
	alerts    *alert.Engine
	actions   *action.Dispatcher
	api       *api.Alerting
	auth      *auth.Service
	history   *history.Recorder
	events    *api.Events
	index     *alertindex.Index
}

// newAlerting validates the alerting configuration: the plugin folder is
// read and every configured instance and policy is checked as Start will,
// without writing anything.
func newAlerting(f *config.File, holder *model.Holder, kept *samples.Store, reg prometheus.Registerer, log *slog.Logger, stderr io.Writer) (*alerting, error) {
	cfg := f.Config
	a := &alerting{file: f, cfg: cfg, log: log, stderr: stderr, model: holder}
	var errs []error
	a.registry, errs = plugin.Load(cfg.PluginDir)
	a.logPlugins(errs)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := preflight(ctx, f, holder, a.registry, log); err != nil {
		return nil, err
	}
	var err error
	if a.runner, err = plugin.NewRunner(cfg.Plugins, reg, log); err != nil {
		return nil, err
	}
	// The store opens nothing until Start, so that --check can build
	// everything without touching the data folder.
	st := store.New(cfg.DataDir, log)
	a.store = st
	if a.index, err = alertindex.New(alertindex.Config{}, st, nil); err != nil {
		return nil, err
	}
	a.instances = plugin.NewInstances(a.registry, st)
	a.policies = policy.NewManager(st, refChecker{model: holder, instances: a.instances})
	// The live updates of the API hear alerts, actions, policies and
	// every tick's rates.
	if a.events, err = api.NewEvents(reg); err != nil {
		return nil, err
	}
	a.policies.OnChange(a.events.Policies)
	if a.history, err = history.New(cfg.History, history.Deps{Store: st, Policies: a.policies.Set, Registerer: reg, Log: log}); err != nil {
		return nil, f.Locate(err)
	}
	if a.engine, err = engine.New(engineConfig(cfg), engine.Deps{
		Model: holder, Policies: a.policies.Set, AlertStore: st, BaselineStore: st, LearnedStore: st,
		// The index first: the actions an alert starts look its traffic
		// group up there.
		Sink:    alert.SinkFunc(func(ev alert.Event) { a.index.Alert(ev); a.actions.Alert(ev); a.events.Alert(ev) }),
		Samples: kept, Registerer: reg, Log: log,
		Record: func(now int64, s *rates.Shards) { a.history.Record(now, s); a.events.Traffic(now, s) },
	}); err != nil {
		return nil, err
	}
	a.alerts = a.engine.Alerts
	bin, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find the flowsentry binary (for ftnbi on the plugins' PATH): %w", err)
	}
	if a.actions, err = action.New(action.Deps{
		Store:     st,
		Policies:  a.policies,
		Instances: a.instances,
		Alerts:    a.alerts,
		Caller:    action.PluginCaller{Runner: a.runner, Registry: a.registry},
		Log:       log,
		URL:       apiURL(cfg.HTTP.Address, cfg.HTTP.TLSCert != ""),
		CAFile:    cfg.HTTP.TLSCert,
		Env:       cfg.Actions.Env,
		BinDir:    filepath.Dir(bin),
		OnChange: func(ac action.Action, cid uint32) {
			a.index.Action(ac, cid)
			group, _ := a.index.Group(ac.Alert) // indexed before its actions start (Sink)
			a.events.Action(ac, cid, group)
		},
	}); err != nil {
		return nil, err
	}
	if err := reg.Register(a.actions); err != nil {
		return nil, err
	}
	ann, err := annotate.New(cfg.Annotations, st, a.actions, nil, log)
	if err != nil {
		return nil, err
	}
	if a.auth, err = auth.New(auth.DefaultConfig(), auth.Deps{Store: st, Registerer: reg, Log: log}); err != nil {
		return nil, err
	}
	// The API authenticates every request before the reader sees it.
	reader, err := annotate.NewReader(annotate.ReaderDeps{
		Alerts: a.alerts, Users: api.ReaderUsers{}, Values: st,
		Actions: actionLister{a.actions}, Graphs: grapher{a.registry}, Log: log,
	})
	if err != nil {
		return nil, err
	}
	a.api = &api.Alerting{
		Policies: a.policies, Plugins: a.registry, Instances: a.instances,
		Actions: a.actions, Alerts: a.alerts, Annotator: ann, Reader: reader, Baselines: a.engine.Baselines,
		Search: a.index, AlertCounts: st.AlertCounts,
	}
	return a, nil
}

// rescan reads the plugin folder again (on SIGHUP): new plugins become
// usable, removed or broken ones fail their calls with a recorded error.
func (a *alerting) rescan() { a.logPlugins(a.registry.Rescan()) }

// reloadConfigured applies the plugin instances and policies of a
// reloaded configuration file (SIGHUP), instances first, since policies
// attach them. On an error the policies in force stay, and so do the
// instances unless the error is in the policies.
func (a *alerting) reloadConfigured(f *config.File) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	before := a.instances.List()
	problems, err := a.instances.Load(ctx, f.Config.Instances)
	if err != nil {
		return f.Locate(err)
	}
	for _, p := range problems {
		a.log.Warn("stored plugin instance is not usable; its calls will fail", "err", p)
	}
	a.logInstanceChanges(before)
	ch, err := a.policies.Sync(ctx, f.Config.Policies, partitionIDs(a.model.Load()))
	if err != nil {
		return f.Locate(err)
	}
	a.logPolicyChanges("policies reloaded from the configuration file", ch)
	return nil
}

// logInstanceChanges logs, by ID, the plugin instances of the file that a
// reload added, changed and removed, before being the instances before it.
func (a *alerting) logInstanceChanges(before []plugin.Instance) {
	old := map[uint64]plugin.Instance{}
	for _, in := range before {
		if in.Source == plugin.SourceConfig {
			old[in.ID] = in
		}
	}
	var added, changed, removed []uint64
	for _, in := range a.instances.List() {
		if in.Source != plugin.SourceConfig {
			continue
		}
		if o, ok := old[in.ID]; !ok {
			added = append(added, in.ID)
		} else if !reflect.DeepEqual(o, in) {
			changed = append(changed, in.ID)
		}
		delete(old, in.ID)
	}
	for id := range old {
		removed = append(removed, id)
	}
	slices.Sort(removed)
	if len(added)+len(changed)+len(removed) > 0 {
		a.log.Info("plugin instances reloaded from the configuration file", "added", added, "changed", changed, "removed", removed)
	}
}

// logPolicyChanges logs what a Sync of the file's policies changed, by
// ID, when it changed anything.
func (a *alerting) logPolicyChanges(msg string, ch policy.Changes) {
	if ch.Empty() {
		return
	}
	a.log.Info(msg, "added", ch.Added, "changed", ch.Changed, "removed", ch.Removed)
}

// logPlugins logs the problems of the plugin folder and the repairs made
// to gui.json files.
func (a *alerting) logPlugins(errs []error) {
	for _, err := range errs {
		a.log.Warn("plugin folder", "err", err)
	}
	for _, pl := range a.registry.List() {
		for _, w := range pl.Warnings {
			a.log.Warn("plugin gui.json repaired", "plugin", pl.Name, "where", w.String())
		}
	}
}

// engineConfig picks the engine's part of the configuration.
func engineConfig(cfg config.Config) engine.Config {
	return engine.Config{Rates: cfg.Rates, Pipeline: cfg.Pipeline, Alerts: cfg.Alerts, Baselines: cfg.Baselines}
}

// phase is one step of serve's start, with its stop.
type phase struct {
	start func() error
	stop  func()
}

// Start runs the start step.
func (p phase) Start() error { return p.start() }

// Stop runs the stop step.
func (p phase) Stop() { p.stop() }

// state is the first phase: the database, instances, policies, the first
// administrator, open alerts and baselines.
func (a *alerting) state() phase { return phase{start: a.startState, stop: a.stopState} }

// dispatch is the phase that resumes the actions and calls plugins. It
// starts after the HTTP server, which plugin calls need for `ftnbi -val`,
// and stops before it, so that a call running at SIGTERM can still
// annotate.
func (a *alerting) dispatch() phase {
	return phase{
		start: func() error {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			return a.actions.Start(ctx)
		},
		stop: a.actions.Stop,
	}
}

// commits is the phase that commits the alert engine's transitions and
// hands them to the actions: it starts after the dispatcher, so that no
// event reaches it before it resumed the open actions, and stops after the
// pipeline and before the dispatcher, so that the last tick's transitions
// are committed and heard.
func (a *alerting) commits() phase {
	return phase{
		start: func() error { a.alerts.StartCommitting(); return nil },
		stop:  a.alerts.StopCommitting,
	}
}

// startState opens the database, loads instances and policies (checked
// before anything is written), creates the first administrator, and loads
// the open alerts and the baselines.
func (a *alerting) startState() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st := a.store
	if err := st.Start(ctx); err != nil {
		return err
	}
	problems, err := a.instances.Load(ctx, a.cfg.Instances)
	if err != nil {
		return a.file.Locate(err)
	}
	for _, p := range problems {
		a.log.Warn("stored plugin instance is not usable; its calls will fail", "err", p)
	}
	ch, err := a.policies.Sync(ctx, a.cfg.Policies, partitionIDs(a.model.Load()))
	if err != nil {
		return a.file.Locate(err)
	}
	a.logPolicyChanges("policies of the configuration file applied", ch)
	password := a.cfg.Admin.Password
	if password == "" {
		password = os.Getenv("FLOWSENTRY_ADMIN_PASSWORD")
	}
	generated, err := st.EnsureAdmin(ctx, a.cfg.Admin.User, password)
	if err != nil {
		return err
	}
	if generated != "" {
		fmt.Fprintf(a.stderr, "flowsentry: created the administrator %q with the password %s — it is shown only this once\n", a.cfg.Admin.User, generated)
	}
	if err := a.engine.Start(ctx); err != nil {
		return err
	}
	// Before the engine commits: no transition is missed or loaded twice.
	if err := a.index.Load(ctx); err != nil {
		return err
	}
	return a.auth.Start()
}

// stopState stops in reverse order; the pipeline and the actions must
// have stopped before.
func (a *alerting) stopState() {
	a.auth.Stop()
	a.engine.Stop()
	if err := a.store.Close(); err != nil {
		a.log.Error("closing the database", "err", err)
	}
}

// storeHealth is the store check of /healthz: the failed writes the alert
// engine and the action dispatcher are waiting to retry.
func (a *alerting) storeHealth() error { return errors.Join(a.alerts.Health(), a.actions.Health()) }

// apiURL is FLOWSENTRY_URL for plugins: the HTTP address with a host a
// local client can reach, https when the server speaks TLS (its
// certificate must then hold that host, 127.0.0.1 for a wildcard address).
func apiURL(addr string, tls bool) string {
	scheme := "http://"
	if tls {
		scheme = "https://"
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return scheme + addr
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return scheme + net.JoinHostPort(host, port)
}

// actionLister lists an alert's actions for the annotation reader.
type actionLister struct{ d *action.Dispatcher }

func (l actionLister) AlertActions(ctx context.Context, alertID uint64) ([]annotate.ActionRef, error) {
	acts, err := l.d.Actions(ctx, alertID)
	if err != nil {
		return nil, err
	}
	out := make([]annotate.ActionRef, 0, len(acts))
	for _, a := range acts {
		out = append(out, annotate.ActionRef{ID: a.ID, Plugin: a.Plugin})
	}
	return out, nil
}

// grapher gives the annotation reader a plugin's containers and fields.
type grapher struct{ r *plugin.Registry }

func (g grapher) Graphs(name string) ([]string, []annotate.UpdateField) {
	p, ok := g.r.Get(name)
	if !ok || p.Err != nil {
		return nil, nil
	}
	var fields []annotate.UpdateField
	for _, f := range p.Spec.UpdateFields {
		fields = append(fields, annotate.UpdateField{Label: f.Label, Key: f.Key, Container: f.Container, Record: f.Record})
	}
	return slices.Clone(p.Spec.Containers), fields
}
