package rates

import (
	"errors"
	"time"

	"github.com/flowsentry/flowsentry/config/check"
)

// maxWindow is the longest Window; it bounds the per-second ring of every
// object and the engine's placement scratch space.
const maxWindow = 60

// Config configures the rate engine.
type Config struct {
	// Window is the span of the "current" rate: the sum of the last Window
	// closed seconds divided by Window. It is also the length of the
	// tumbling window of the unique-count estimates. Whole seconds from 1s
	// to 60s; zero is invalid.
	Window time.Duration `yaml:"window"`
	// IdleTimeout is how long an object keeps its state (totals, average,
	// peak) without traffic before it is dropped; traffic after that starts
	// a new object. At least Window; zero is invalid.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// ExporterTimeout is how long an exporter and its interfaces stay in the
	// inventory without flow records or counter samples. At least
	// IdleTimeout; zero is invalid.
	ExporterTimeout time.Duration `yaml:"exporter_timeout"`
	// MaxHosts caps the TGRP+IP objects: about 1.1 KiB each, 1.8 KiB once
	// the host has sent a flow (its two estimators: 2×2^HLLPrecision bytes
	// of registers plus about 200 bytes). Hosts beyond it are refused and
	// counted; zero keeps no host objects.
	MaxHosts int `yaml:"max_hosts"`
	// MaxGroupPorts caps the TGRP+PROTO+PORT objects (about 1.1 KiB each;
	// the "out" side of client traffic makes one per ephemeral port). Zero
	// keeps none.
	MaxGroupPorts int `yaml:"max_group_ports"`
	// MaxInterfaces caps the EXPORTER_ADDR+IFINDEX objects, which are also
	// the interface inventory. Zero keeps none.
	MaxInterfaces int `yaml:"max_interfaces"`
	// MaxInterfacePorts caps the EXPORTER_ADDR+IFINDEX+PROTO+PORT objects
	// (about 1.1 KiB each). Zero keeps none.
	MaxInterfacePorts int `yaml:"max_interface_ports"`
	// MaxExporters caps the exporter inventory; records from exporters
	// beyond it update no interface object. Zero keeps none.
	MaxExporters int `yaml:"max_exporters"`
	// HLLPrecision is log2 of the number of one-byte registers of each
	// unique-count estimator, from 4 to 16; a host with outbound traffic
	// holds two. The relative standard error is 1.04/sqrt(2^HLLPrecision):
	// 6.5% at 8 (512 bytes of registers per host), 3.3% at 10 (2 KiB), 1.6%
	// at 12 (8 KiB). Zero is invalid.
	HLLPrecision uint8 `yaml:"hll_precision"`
}

// DefaultConfig returns the default rate engine configuration: a 10-second
// window, 5-minute idle timeout, 1-hour exporter timeout, caps that hold
// the objects under about 512 MiB with every cap reached (each snapshot
// then adds about 160 MiB of short-lived garbage per tick), and HLL
// precision 8.
func DefaultConfig() Config {
	return Config{
		Window:            10 * time.Second,
		IdleTimeout:       5 * time.Minute,
		ExporterTimeout:   time.Hour,
		MaxHosts:          1 << 17,
		MaxGroupPorts:     1 << 17,
		MaxInterfaces:     1 << 14,
		MaxInterfacePorts: 1 << 17,
		MaxExporters:      1 << 12,
		HLLPrecision:      8,
	}
}

// Validate reports every invalid field as a *check.Error with its key
// path, joined.
func (c Config) Validate() error {
	var errs []error
	if c.Window < time.Second || c.Window > maxWindow*time.Second || c.Window%time.Second != 0 {
		errs = append(errs, check.Errorf("window", "%v is not a whole number of seconds from 1s to %ds; use e.g. 10s", c.Window, maxWindow))
	}
	if c.IdleTimeout < c.Window {
		errs = append(errs, check.Errorf("idle_timeout", "%v is shorter than window (%v); use at least the window, e.g. 5m", c.IdleTimeout, c.Window))
	}
	if c.ExporterTimeout < c.IdleTimeout {
		errs = append(errs, check.Errorf("exporter_timeout", "%v is shorter than idle_timeout (%v); use at least the idle timeout, e.g. 1h", c.ExporterTimeout, c.IdleTimeout))
	}
	for _, f := range []struct {
		key string
		v   int
	}{
		{"max_hosts", c.MaxHosts},
		{"max_group_ports", c.MaxGroupPorts},
		{"max_interfaces", c.MaxInterfaces},
		{"max_interface_ports", c.MaxInterfacePorts},
		{"max_exporters", c.MaxExporters},
	} {
		if f.v < 0 {
			errs = append(errs, check.Errorf(f.key, "%d is negative; use 0 to keep no such objects or a positive cap", f.v))
		}
	}
	if c.HLLPrecision < 4 || c.HLLPrecision > 16 {
		errs = append(errs, check.Errorf("hll_precision", "%d is outside 4..16; use 8 (6.5%% error, 512 bytes per host) or more for better estimates", c.HLLPrecision))
	}
	return errors.Join(errs...)
}
