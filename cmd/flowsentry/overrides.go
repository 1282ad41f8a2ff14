package main

import (
	"flag"

	"github.com/flowsentry/flowsentry/collector"
	"github.com/flowsentry/flowsentry/config"
)

// overrides are command-line flags that replace configuration keys.
type overrides struct {
	http, data, netflow, sflow string
}

func (o *overrides) register(fs *flag.FlagSet) {
	fs.StringVar(&o.http, "http", "", "HTTP `host:port` for the UI, API and /metrics (http.address)")
	fs.StringVar(&o.data, "data", "", "data `folder` (data_dir)")
	fs.StringVar(&o.netflow, "netflow", "", "NetFlow/IPFIX listen `address`, replacing the configured netflow listeners")
	fs.StringVar(&o.sflow, "sflow", "", "sFlow listen `address`, replacing the configured sflow listeners")
}

// apply writes the overrides into cfg.
func (o overrides) apply(cfg *config.Config) {
	if o.http != "" {
		cfg.HTTP.Address = o.http
	}
	if o.data != "" {
		cfg.DataDir = o.data
	}
	for proto, addr := range map[string]string{"netflow": o.netflow, "sflow": o.sflow} {
		if addr == "" {
			continue
		}
		kept := cfg.Collector.Listeners[:0:0]
		for _, l := range cfg.Collector.Listeners {
			if l.Protocol != proto {
				kept = append(kept, l)
			}
		}
		cfg.Collector.Listeners = append(kept, collector.ListenerConfig{Address: addr, Protocol: proto})
	}
}

// loadConfig loads path (the embedded default when empty), applies the
// overrides and validates the result.
func loadConfig(path string, ov overrides) (*config.File, error) {
	f := config.Embedded()
	if path != "" {
		var err error
		if f, err = config.Read(path); err != nil {
			return nil, err
		}
	}
	ov.apply(&f.Config)
	return f, f.Locate(f.Config.Validate())
}
