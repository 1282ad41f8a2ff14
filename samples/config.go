package samples

import (
	"errors"
	"time"

	"github.com/flowsentry/flowsentry/config/check"
)

// Limits of the settings.
const (
	// MinPerTarget is FastNetMon's number of sampled packets per attack
	// report: we keep at least as many.
	MinPerTarget   = 20
	maxPerTarget   = 10_000
	maxTargets     = 100_000
	minHeaderBytes = 64
	maxHeaderBytes = 1500
	minTTL         = time.Minute
)

// Config bounds what the store keeps. Its worst-case memory is about
// MaxTargets × PerTarget × (MaxHeaderBytes + 64) bytes: 32 MB with the
// defaults.
type Config struct {
	// PerTarget is how many packet headers are kept per attacked address:
	// the first ones sampled after the address is watched. From 20 to
	// 10000; the default is 100.
	PerTarget int `yaml:"per_target"`
	// MaxTargets is how many addresses may be watched at once; a Watch of
	// one more is dropped (and counted) until a watch expires. From 1 to
	// 100000; the default is 1000.
	MaxTargets int `yaml:"max_targets"`
	// MaxHeaderBytes cuts longer headers: the pcap then holds the first
	// MaxHeaderBytes bytes of the sampled frame. From 64 to 1500; the
	// default is 256 (sFlow agents send 128 bytes by default).
	MaxHeaderBytes int `yaml:"max_header_bytes"`
	// TTL is how long an address stays watched, and its headers kept,
	// after the last Watch. At least 1m; the default is 1h.
	TTL time.Duration `yaml:"ttl"`
}

// DefaultConfig returns 100 headers of at most 256 bytes per address, for
// at most 1000 addresses, kept 1h after the last Watch.
func DefaultConfig() Config {
	return Config{PerTarget: 100, MaxTargets: 1000, MaxHeaderBytes: 256, TTL: time.Hour}
}

// Validate reports every invalid setting as a *check.Error, joined.
func (c Config) Validate() error {
	var errs []error
	if c.PerTarget < MinPerTarget || c.PerTarget > maxPerTarget {
		errs = append(errs, check.Errorf("per_target", "%d is out of range; use %d to %d headers per attacked address (FastNetMon reports 20)", c.PerTarget, MinPerTarget, maxPerTarget))
	}
	if c.MaxTargets < 1 || c.MaxTargets > maxTargets {
		errs = append(errs, check.Errorf("max_targets", "%d is out of range; use 1 to %d addresses", c.MaxTargets, maxTargets))
	}
	if c.MaxHeaderBytes < minHeaderBytes || c.MaxHeaderBytes > maxHeaderBytes {
		errs = append(errs, check.Errorf("max_header_bytes", "%d is out of range; use %d to %d bytes (sFlow agents send 128 by default)", c.MaxHeaderBytes, minHeaderBytes, maxHeaderBytes))
	}
	if c.TTL < minTTL {
		errs = append(errs, check.Errorf("ttl", "%s is too short to read the packets of an alert; use at least %s, e.g. 1h", c.TTL, minTTL))
	}
	return errors.Join(errs...)
}
