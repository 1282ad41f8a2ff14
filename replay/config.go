package replay

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/flowsentry/flowsentry/collector/netflow"
	"github.com/flowsentry/flowsentry/config/check"
	"github.com/flowsentry/flowsentry/flow"
)

// Config configures how replay tells export datagrams from other packets
// and how its packet meter turns the other packets into flows.
type Config struct {
	// NetFlowPorts are the UDP destination ports whose datagrams are always
	// decoded as NetFlow v5/v9 or IPFIX instead of being metered. On other
	// ports a datagram is decoded when its content is an export datagram
	// with a consistent header, and metered otherwise. Empty means content
	// alone decides.
	NetFlowPorts []uint16 `yaml:"netflow_ports"`
	// SFlowPorts are the UDP destination ports whose datagrams are always
	// decoded as sFlow v5. Empty means content alone decides.
	SFlowPorts []uint16 `yaml:"sflow_ports"`
	// ActiveTimeout is the longest the meter keeps a flow before it emits
	// it, even while packets still arrive (a duration such as "60s", on the
	// capture clock). Zero means the default, 60 s.
	ActiveTimeout time.Duration `yaml:"active_timeout"`
	// InactiveTimeout is how long a metered flow may go without a packet
	// before it is emitted (on the capture clock). Zero means the default,
	// 15 s.
	InactiveTimeout time.Duration `yaml:"inactive_timeout"`
	// MaxFlows is the number of flows the meter holds at most; when full,
	// the least recently seen flow is emitted early. Memory grows with the
	// flows actually held, about 250 bytes each. Zero means the default,
	// 1,048,576.
	MaxFlows int `yaml:"max_flows"`
	// Templates configures the NetFlow v9 and IPFIX template cache of the
	// NetFlow decoder, as for the collector.
	Templates netflow.Config `yaml:"templates"`
	// RatesWindow is the window of the rates the replay feeds (not read
	// from the file: the caller copies the rates' window): after the last
	// packet before a gap or the end, the clock ticks each second for this
	// long and one second more, so that detectors see every window holding
	// it. Zero means 10 s, the rates' default.
	RatesWindow time.Duration `yaml:"-"`
	// PollInterval is how often, between the seconds, the replay polls
	// the sink (not read from the file: the caller copies the pipeline's
	// poll_interval), as serve's shards poll their stages on the wall
	// clock: every PollInterval of capture time the meter reports the
	// packets since its last report and the sink gets them, then Poll.
	// Zero (or a second or more) means only the seconds.
	PollInterval time.Duration `yaml:"-"`
}

// pollStep returns PollInterval in nanoseconds, 0 when there is no poll
// between the seconds.
func (c Config) pollStep() int64 {
	if c.PollInterval <= 0 || c.PollInterval >= time.Second {
		return 0
	}
	return int64(c.PollInterval)
}

// defaultRatesWindow is the rates' default window.
const defaultRatesWindow = 10 * time.Second

// ratesWindow returns RatesWindow in whole seconds, the default for zero.
func (c Config) ratesWindow() time.Duration {
	if c.RatesWindow <= 0 {
		return defaultRatesWindow
	}
	return c.RatesWindow.Truncate(time.Second)
}

// DefaultConfig returns the usual export ports and probe timeouts.
func DefaultConfig() Config {
	m := flow.DefaultMeterConfig()
	return Config{
		NetFlowPorts:    []uint16{2055, 2056, 4739, 9995, 9996},
		SFlowPorts:      []uint16{6343},
		ActiveTimeout:   m.ActiveTimeout,
		InactiveTimeout: m.InactiveTimeout,
		MaxFlows:        m.MaxFlows,
		Templates:       netflow.DefaultConfig(),
	}
}

// Validate returns every problem of the configuration, each a *check.Error
// with its key path, joined.
func (c Config) Validate() error {
	var errs []error
	seen := make(map[uint16]string)
	for _, l := range []struct {
		key   string
		ports []uint16
	}{{"netflow_ports", c.NetFlowPorts}, {"sflow_ports", c.SFlowPorts}} {
		for i, p := range l.ports {
			path := fmt.Sprintf("%s[%d]", l.key, i)
			switch other, dup := seen[p]; {
			case p == 0:
				errs = append(errs, check.Errorf(path, "port 0 is not a UDP port: use 1-65535"))
			case dup && other == l.key:
				errs = append(errs, check.Errorf(path, "port %d is listed twice: remove one", p))
			case dup:
				errs = append(errs, check.Errorf(path, "port %d is also in %s: a port carries one protocol, remove it from one list", p, other))
			}
			seen[p] = l.key
		}
	}
	if c.ActiveTimeout < 0 {
		errs = append(errs, check.Errorf("active_timeout", "%v is negative: use a duration such as 60s, or 0 for the default", c.ActiveTimeout))
	}
	if c.InactiveTimeout < 0 {
		errs = append(errs, check.Errorf("inactive_timeout", "%v is negative: use a duration such as 15s, or 0 for the default", c.InactiveTimeout))
	}
	if c.MaxFlows < 0 || c.MaxFlows > math.MaxInt32 {
		errs = append(errs, check.Errorf("max_flows", "%d is out of range: use 1 to %d, or 0 for the default", c.MaxFlows, math.MaxInt32))
	}
	if err := c.Templates.Validate(); err != nil {
		errs = append(errs, check.Prefix("templates", err))
	}
	return errors.Join(errs...)
}

// meterConfig is the packet meter's part of the configuration.
func (c Config) meterConfig() flow.MeterConfig {
	return flow.MeterConfig{
		ActiveTimeout:   c.ActiveTimeout,
		InactiveTimeout: c.InactiveTimeout,
		MaxFlows:        c.MaxFlows,
	}
}
