// Package config composes the configuration of every component into the
// root configuration of flowsentry, loads it from YAML with errors that name
// the file, line and key, and prints the effective configuration.
package config

import (
	"github.com/flowsentry/flowsentry/api"
	"github.com/flowsentry/flowsentry/collector"
	"github.com/flowsentry/flowsentry/model"
	"github.com/flowsentry/flowsentry/rates"
	"github.com/flowsentry/flowsentry/replay"
)

// Config is the root configuration.
type Config struct {
	// DataDir is the folder holding the database and state; created when
	// missing.
	DataDir string `yaml:"data_dir"`
	// HTTP configures the UI, API and /metrics server.
	HTTP api.Config `yaml:"http"`
	// Collector configures the UDP listeners.
	Collector collector.Config `yaml:"collector"`
	// Model holds partitions, traffic groups, INT blocks, interface names
	// and blacklists.
	Model model.Config `yaml:",inline"`
	// Rates configures the rate engine.
	Rates rates.Config `yaml:"rates"`
	// Replay configures the replay command.
	Replay replay.Config `yaml:"replay"`
}

// Default returns the embedded default configuration used when no file is
// given.
func Default() Config {
	return Config{
		DataDir:   "./data",
		HTTP:      api.DefaultConfig(),
		Collector: collector.DefaultConfig(),
		Model:     model.DefaultConfig(),
		Rates:     rates.DefaultConfig(),
		Replay:    replay.DefaultConfig(),
	}
}
