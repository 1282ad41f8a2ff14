package config

import (
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/flowsentry/flowsentry/action"
	"github.com/flowsentry/flowsentry/alert"
	"github.com/flowsentry/flowsentry/annotate"
	"github.com/flowsentry/flowsentry/api"
	"github.com/flowsentry/flowsentry/collector"
	"github.com/flowsentry/flowsentry/config/check"
	"github.com/flowsentry/flowsentry/detect"
	"github.com/flowsentry/flowsentry/history"
	"github.com/flowsentry/flowsentry/model"
	"github.com/flowsentry/flowsentry/pipeline"
	"github.com/flowsentry/flowsentry/plugin"
	"github.com/flowsentry/flowsentry/policy"
	"github.com/flowsentry/flowsentry/rates"
	"github.com/flowsentry/flowsentry/replay"
	"github.com/flowsentry/flowsentry/samples"
)

// Config is the root configuration.
type Config struct {
	// DataDir is the folder holding the database and state; created when
	// missing. A relative path is taken from the configuration file's
	// folder (from the working directory for the embedded default).
	DataDir string `yaml:"data_dir"`
	// PluginDir is the folder holding one subfolder per plugin (gui.json
	// and the executable); relative like DataDir.
	PluginDir string `yaml:"plugin_dir"`
	// HTTP configures the UI, API and /metrics server.
	HTTP api.Config `yaml:"http"`
	// Collector configures the UDP listeners.
	Collector collector.Config `yaml:"collector"`
	// Model holds partitions, traffic groups, INT blocks, interface names
	// and blacklists.
	Model model.Config `yaml:",inline"`
	// Pipeline configures the queue and tick between the collector and
	// the rate engine and detectors.
	Pipeline pipeline.Config `yaml:"pipeline"`
	// Rates configures the rate engine.
	Rates rates.Config `yaml:"rates"`
	// Replay configures the replay command.
	Replay replay.Config `yaml:"replay"`
	// Admin is the administrator account created on first start.
	Admin AdminConfig `yaml:"admin"`
	// Alerts sets the alert lifecycle timings.
	Alerts alert.Config `yaml:"alerts"`
	// Baselines configures baseline learning of the threshold detectors.
	Baselines detect.BaselineConfig `yaml:"baselines"`
	// Samples bounds the sampled packet headers (sFlow) kept with DDoS
	// alerts.
	Samples samples.Config `yaml:"samples"`
	// Plugins configures plugin calls.
	Plugins plugin.RunnerConfig `yaml:"plugins"`
	// Actions configures the environment of plugin calls.
	Actions action.Config `yaml:"actions"`
	// Annotations configures `ftnbi -val` requests.
	Annotations annotate.Config `yaml:"annotations"`
	// History bounds the per-minute rate history kept in the store.
	History history.Config `yaml:"history"`
	// Instances are plugin instances kept with their IDs; the API can add
	// more.
	Instances []plugin.Instance `yaml:"instances"`
	// Policies are alerting policies kept with their IDs; the API can add
	// more. The three default templates are created on first start.
	Policies []policy.Policy `yaml:"policies"`
}

// AdminConfig names the first administrator.
type AdminConfig struct {
	// User is the administrator's name (default "admin").
	User string `yaml:"user"`
	// Password is used when the account is created on first start; empty
	// takes $FLOWSENTRY_ADMIN_PASSWORD, or generates one and prints it
	// once. Later starts ignore it.
	Password string `yaml:"password"`
}

// Default returns the embedded default configuration used when no file is
// given.
func Default() Config {
	return Config{
		DataDir:     "./data",
		PluginDir:   "./plugins",
		HTTP:        api.DefaultConfig(),
		Collector:   collector.DefaultConfig(),
		Model:       model.DefaultConfig(),
		Pipeline:    pipeline.DefaultConfig(),
		Rates:       rates.DefaultConfig(),
		Replay:      replay.DefaultConfig(),
		Admin:       AdminConfig{User: "admin"},
		Alerts:      alert.DefaultConfig(),
		Baselines:   detect.DefaultBaselineConfig(),
		Samples:     samples.DefaultConfig(),
		Plugins:     plugin.DefaultRunnerConfig(),
		Actions:     action.DefaultConfig(),
		Annotations: annotate.DefaultConfig(),
		History:     history.DefaultConfig(),
	}
}

// Validate checks c and every component's configuration; it changes
// nothing of c (policies are normalized, bits to bytes, on copies). The
// errors are *check.Error values with key paths from the top of the file,
// joined.
func (c Config) Validate() error {
	var errs []error
	if strings.TrimSpace(c.DataDir) == "" {
		errs = append(errs, check.Errorf("data_dir", "is empty; give the folder for the database and state, e.g. ./data"))
	}
	if strings.TrimSpace(c.Admin.User) == "" {
		errs = append(errs, check.Errorf("admin.user", "is empty; name the first administrator, e.g. admin"))
	}
	for i, p := range c.Policies {
		// A copy of a Policy shares its Params: clone it.
		p = p.Clone()
		p.Normalize()
		errs = append(errs, check.Prefix(fmt.Sprintf("policies[%d]", i), p.Validate()))
	}
	if strings.TrimSpace(c.PluginDir) == "" {
		errs = append(errs, check.Errorf("plugin_dir", "is empty; give the folder holding one subfolder per plugin, e.g. ./plugins"))
	}
	errs = append(errs,
		check.Prefix("http", c.HTTP.Validate()),
		check.Prefix("collector", c.Collector.Validate()),
		c.Model.Validate(),
		check.Prefix("rates", c.Rates.Validate()),
		check.Prefix("replay", c.Replay.Validate()),
		check.Prefix("pipeline", c.Pipeline.Validate()),
		check.Prefix("alerts", c.Alerts.Validate()),
		check.Prefix("baselines", c.Baselines.Validate()),
		check.Prefix("samples", c.Samples.Validate()),
		check.Prefix("plugins", c.Plugins.Validate()),
		check.Prefix("actions", c.Actions.Validate()),
		check.Prefix("annotations", c.Annotations.Validate()),
		check.Prefix("history", c.History.Validate()),
	)
	return errors.Join(errs...)
}

// Changed returns the top-level keys (http, collector, data_dir, ...)
// whose values differ between c and next, leaving out the model's keys
// (partitions, traffic_groups, interfaces, blacklists), in the order of
// Config's fields. A reload applies the model; the keys it returns need a
// restart.
func (c Config) Changed(next Config) []string {
	var keys []string
	a, b := reflect.ValueOf(c), reflect.ValueOf(next)
	for i := range a.NumField() {
		f := a.Type().Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue // the inline model
		}
		if !reflect.DeepEqual(a.Field(i).Interface(), b.Field(i).Interface()) {
			keys = append(keys, name)
		}
	}
	return keys
}
