package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/flowsentry/flowsentry/api"
	"github.com/flowsentry/flowsentry/collector"
	"github.com/flowsentry/flowsentry/config"
	"github.com/flowsentry/flowsentry/internal/sdnotify"
	"github.com/flowsentry/flowsentry/model"
	"github.com/flowsentry/flowsentry/plugin"
	"github.com/flowsentry/flowsentry/rates"
	"github.com/flowsentry/flowsentry/samples"
	"github.com/flowsentry/flowsentry/ui"
)

// component is what serve starts in order and stops in reverse.
type component interface {
	Start() error
	Stop()
}

func serve(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "YAML configuration `file` (default: the embedded default)")
	checkOnly := fs.Bool("check", false, "validate the configuration, build every component, and exit")
	dump := fs.Bool("dump", false, "print the effective configuration as YAML and exit")
	var ov overrides
	ov.register(fs)
	logLevel := fs.String("log-level", "info", "log `level`: debug, info, warn, error")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "flowsentry serve: unexpected argument %q; serve takes only flags (see -h)\n", fs.Arg(0))
		return 2
	}
	log, err := newLogger(stderr, *logLevel)
	if err != nil {
		fmt.Fprintf(stderr, "flowsentry serve: %v\n", err)
		return 2
	}
	f, err := loadConfig(*configPath, ov)
	if err != nil {
		fmt.Fprintf(stderr, "flowsentry serve: %v\n", err)
		return 1
	}
	if *dump {
		if err := config.Dump(stdout, config.Redact(f.Config, pluginSecret(f.Config.PluginDir))); err != nil {
			fmt.Fprintf(stderr, "flowsentry serve: %v\n", err)
			return 1
		}
		return 0
	}
	d, err := build(f, log, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "flowsentry serve: %v\n", err)
		return 1
	}
	if *checkOnly {
		fmt.Fprintln(stdout, "configuration OK")
		return 0
	}
	if d.notify, err = sdnotify.FromEnv(); err != nil {
		fmt.Fprintf(stderr, "flowsentry serve: %v\n", err)
		return 1
	}
	release, err := lockData(f.Config.DataDir)
	if errors.Is(err, errLocked) {
		fmt.Fprintf(stderr, "flowsentry serve: the data folder %s is in use (%v): "+
			"stop the other flowsentry serve or restore first, or use another data_dir\n", f.Config.DataDir, err)
		return 1
	}
	if err != nil {
		fmt.Fprintf(stderr, "flowsentry serve: %v\n", err)
		return 1
	}
	defer release()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := d.run(ctx, *configPath, ov); err != nil {
		log.Error("serve failed", "err", err)
		return 1
	}
	return 0
}

// daemon is the wired server.
type daemon struct {
	cfg        config.Config // as started
	log        *slog.Logger
	holder     *model.Holder
	alerting   *alerting
	http       *api.Server // reloads its certificate on SIGHUP
	components []component
	notify     *sdnotify.Notifier // systemd's Type=notify readiness; nil outside systemd
}

// build creates every component without opening anything.
func build(f *config.File, log *slog.Logger, stderr io.Writer) (*daemon, error) {
	cfg := f.Config
	m, err := model.Build(cfg.Model)
	if err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	holder := model.NewHolder(m)
	kept, err := samples.New(cfg.Samples, reg)
	if err != nil {
		return nil, fmt.Errorf("samples: %w", err)
	}
	al, err := newAlerting(f, holder, kept, reg, log, stderr)
	if err != nil {
		return nil, err
	}
	pl, re := al.engine.Pipeline, al.engine.Rates
	reg.MustRegister(rates.NewCollector(re.Snapshot, holder))
	col, err := collector.New(cfg.Collector, pl, reg, log)
	if err != nil {
		return nil, err
	}
	col.SetSamples(kept)
	refresher, err := model.NewRefresher(model.RefresherDeps{Holder: holder, Logger: log, Registerer: reg})
	if err != nil {
		return nil, fmt.Errorf("blacklists: %w", err)
	}
	web, err := ui.New(log)
	if err != nil {
		return nil, err
	}
	srv, err := api.New(cfg.HTTP, api.Deps{Gatherer: reg, Registerer: reg, Model: holder, Rates: re.Snapshot, Log: log, Alerting: al.api, Samples: kept, History: al.store,
		Auth: al.auth, Accounts: al.store, Events: al.events, UI: web,
		Health: map[string]func() error{"store": al.storeHealth}})
	if err != nil {
		return nil, fmt.Errorf("http: %w", err)
	}
	return &daemon{
		cfg:      cfg,
		log:      log,
		holder:   holder,
		alerting: al,
		http:     srv,
		// Dependency order: consumers before producers, so that nothing
		// is produced into a stage that is not running; the HTTP server
		// before the actions, whose plugin calls use it; the alert commits
		// between the actions and the pipeline.
		components: []component{refresher, al.state(), srv, al.dispatch(), al.commits(), al.history, pl, col},
	}, nil
}

// run starts the components, reloads on SIGHUP, and stops everything in
// reverse order when ctx ends.
func (d *daemon) run(ctx context.Context, configPath string, ov overrides) error {
	d.alerting.api.ConfigFile = configPath // named in the API's refusals to change the file's policies
	for i, c := range d.components {
		if err := c.Start(); err != nil {
			for j := i - 1; j >= 0; j-- {
				d.components[j].Stop()
			}
			return err
		}
	}
	// SIGHUP is caught before READY=1: a reload asked as soon as systemd
	// (or a test) sees the service ready must not kill it, which is what
	// SIGHUP does by default.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	d.log.Info("flowsentry serving")
	// Every listener and the HTTP server are open: systemd may start what
	// is ordered after flowsentry.service.
	status := fmt.Sprintf("STATUS=serving HTTP on %s, %d flow listeners", d.http.Addr(), len(d.cfg.Collector.Listeners))
	d.sdNotify(sdnotify.Ready, status)
	for {
		select {
		case <-hup:
			d.sdNotify(sdnotify.Reloading(), "STATUS=reloading the configuration")
			if err := d.http.ReloadTLS(); err != nil {
				d.log.Error("tls certificate reload failed; keeping the certificate in use", "err", err)
			}
			d.reload(configPath, ov)
			d.sdNotify(sdnotify.Ready, status)
		case <-ctx.Done():
			d.log.Info("stopping")
			d.sdNotify(sdnotify.Stopping, "STATUS=stopping")
			for j := len(d.components) - 1; j >= 0; j-- {
				d.components[j].Stop()
			}
			d.log.Info("stopped")
			return nil
		}
	}
}

// sdNotify tells systemd the daemon's state; a failure costs only the
// notification.
func (d *daemon) sdNotify(states ...string) {
	if err := d.notify.Notify(states...); err != nil {
		d.log.Warn("systemd notification failed", "err", err)
	}
}

// reload rebuilds the model from the configuration file; on any error the
// model in use stays. The other keys need a restart: reload names those
// that changed.
func (d *daemon) reload(configPath string, ov overrides) {
	f, err := loadConfig(configPath, ov)
	if err != nil {
		d.log.Error("reload failed; keeping the running configuration", "err", err)
		return
	}
	m, err := model.Build(f.Config.Model)
	if err != nil {
		d.log.Error("reload failed; keeping the running configuration", "err", err)
		return
	}
	d.holder.Store(m)
	d.alerting.rescan()
	d.log.Info("configuration reloaded", "traffic_groups", len(m.Groups), "partitions", len(m.Partitions))
	if err := d.alerting.reloadConfigured(f); err != nil {
		d.log.Error("reload of plugin instances and policies failed; keeping the policies in force", "err", err)
	}
	// The reload applies instances and policies too: not keys to restart for.
	applied := d.cfg
	applied.Instances, applied.Policies = f.Config.Instances, f.Config.Policies
	if keys := applied.Changed(f.Config); len(keys) > 0 {
		d.log.Warn("changed keys take effect only after a restart", "keys", strings.Join(keys, ","))
	}
}

// pluginSecret tells which instance values --dump hides: those of
// password fields in the gui.json of the plugins in dir, and every value
// of an instance whose plugin cannot be read.
func pluginSecret(dir string) func(name, key string) bool {
	reg, _ := plugin.Load(dir) // a broken plugin's values are all hidden
	return func(name, key string) bool {
		p, ok := reg.Get(name)
		if !ok {
			return true
		}
		f, ok := p.Spec.Field(key)
		return !ok || f.Spec.Type == plugin.TypePassword
	}
}

func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q is not valid; use debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: l}
	// Under systemd, standard error is the journal: it stamps the time and
	// reads the priority from a prefix.
	if f, ok := w.(*os.File); ok && sdnotify.OnJournal(f) {
		return slog.New(sdnotify.NewJournalHandler(w, opts)), nil
	}
	return slog.New(slog.NewTextHandler(w, opts)), nil
}
