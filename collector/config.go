package collector

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"strconv"
	"time"

	"github.com/flowsentry/flowsentry/collector/netflow"
	"github.com/flowsentry/flowsentry/config/check"
)

// Limits of the settings.
const (
	maxWorkers      = 1024
	maxExporters    = 100_000
	minFlush        = time.Millisecond
	maxFlush        = time.Minute
	defaultRcvBuf   = 32 << 20
	protocolNetFlow = "netflow"
	protocolSFlow   = "sflow"
)

// Config configures the UDP listeners and their workers.
type Config struct {
	// Listeners are the UDP sockets to receive exports on; at least one.
	Listeners []ListenerConfig `yaml:"listeners"`
	// Workers is the number of workers per listener, each with its own
	// SO_REUSEPORT socket and decoders; 0 means GOMAXPROCS.
	Workers int `yaml:"workers"`
	// ReceiveBuffer is the kernel receive buffer of each socket, in bytes,
	// set with SO_RCVBUFFORCE when the process may (CAP_NET_ADMIN), else
	// with SO_RCVBUF, which net.core.rmem_max caps; 0 keeps the kernel
	// default. The default is 32 MiB.
	ReceiveBuffer int `yaml:"receive_buffer"`
	// FlushInterval is how long a worker keeps a partial batch before
	// handing it to the pipeline: the longest a record waits when traffic
	// is light. Between 1ms and 1m; the default is 100ms.
	FlushInterval time.Duration `yaml:"flush_interval"`
	// MaxExporters is the number of exporters that get their own value of
	// the "exporter" metric label; later ones share the value "other".
	// 0 puts every exporter under "other". The default is 1000.
	MaxExporters int `yaml:"max_exporters"`
	// Templates configures the NetFlow v9 / IPFIX template cache shared by
	// every NetFlow listener.
	Templates netflow.Config `yaml:"templates"`
}

// ListenerConfig is one UDP listen address and the protocol expected on it.
type ListenerConfig struct {
	// Address is host:port, the host an IP address or empty for every
	// address; "[::]:2055" listens on IPv6 and IPv4. Port 0 picks a free
	// port (Collector.Addrs tells which).
	Address string `yaml:"address"`
	// Protocol is "netflow" (NetFlow v5, v9 and IPFIX, told apart by the
	// version field) or "sflow".
	Protocol string `yaml:"protocol"`
}

// DefaultConfig returns NetFlow/IPFIX on UDP 2055 and sFlow on UDP 6343,
// GOMAXPROCS workers per listener, 32 MiB receive buffers and a 100ms flush
// interval.
func DefaultConfig() Config {
	return Config{
		Listeners: []ListenerConfig{
			{Address: ":2055", Protocol: protocolNetFlow},
			{Address: ":6343", Protocol: protocolSFlow},
		},
		ReceiveBuffer: defaultRcvBuf,
		FlushInterval: 100 * time.Millisecond,
		MaxExporters:  1000,
		Templates:     netflow.DefaultConfig(),
	}
}

// Validate reports every invalid setting as a *check.Error with its key
// path, joined.
func (c Config) Validate() error {
	var errs []error
	if len(c.Listeners) == 0 {
		errs = append(errs, check.Errorf("listeners", `is empty; add at least one, e.g. {address: ":2055", protocol: netflow}`))
	}
	seen := make(map[netip.AddrPort]int, len(c.Listeners))
	for i, l := range c.Listeners {
		path := fmt.Sprintf("listeners[%d]", i)
		ap, err := parseListenAddress(l.Address)
		if err != nil {
			errs = append(errs, check.Errorf(path+".address", "%v", err))
		} else if j, dup := seen[ap]; dup && ap.Port() != 0 {
			errs = append(errs, check.Errorf(path+".address", "%q is also the address of listeners[%d]; give each listener its own port", l.Address, j))
		} else {
			seen[ap] = i
		}
		if l.Protocol != protocolNetFlow && l.Protocol != protocolSFlow {
			errs = append(errs, check.Errorf(path+".protocol", "%q is not a protocol; use netflow (NetFlow v5, v9 and IPFIX) or sflow", l.Protocol))
		}
	}
	if c.Workers < 0 || c.Workers > maxWorkers {
		errs = append(errs, check.Errorf("workers", "%d is out of range; use 0 (one per CPU) to %d", c.Workers, maxWorkers))
	}
	if c.ReceiveBuffer < 0 || c.ReceiveBuffer > math.MaxInt32 {
		errs = append(errs, check.Errorf("receive_buffer", "%d bytes is out of range; use 0 (kernel default) to %d, e.g. %d (32 MiB)", c.ReceiveBuffer, math.MaxInt32, defaultRcvBuf))
	}
	if c.FlushInterval < minFlush || c.FlushInterval > maxFlush {
		errs = append(errs, check.Errorf("flush_interval", "%s is out of range; use %s to %s, e.g. 100ms", c.FlushInterval, minFlush, maxFlush))
	}
	if c.MaxExporters < 0 || c.MaxExporters > maxExporters {
		errs = append(errs, check.Errorf("max_exporters", "%d is out of range; use 0 (all exporters labelled \"other\") to %d", c.MaxExporters, maxExporters))
	}
	errs = append(errs, check.Prefix("templates", c.Templates.Validate()))
	return errors.Join(errs...)
}

// parseListenAddress parses host:port where host is an IP address or
// empty (the unspecified address).
func parseListenAddress(s string) (netip.AddrPort, error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("%q is not host:port; write e.g. \":2055\", \"0.0.0.0:2055\" or \"[::]:2055\"", s)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("%q has port %q; use a number from 0 to 65535", s, port)
	}
	addr := netip.IPv6Unspecified()
	if host != "" {
		if addr, err = netip.ParseAddr(host); err != nil {
			return netip.AddrPort{}, fmt.Errorf("%q has host %q, which is not an IP address; use an address of this machine, or nothing for all", s, host)
		}
	}
	return netip.AddrPortFrom(addr, uint16(p)), nil
}
