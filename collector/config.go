package collector

// Config configures the UDP listeners and their workers.
type Config struct {
	// Listeners are the UDP sockets to receive exports on.
	Listeners []ListenerConfig `yaml:"listeners"`
}

// ListenerConfig is one UDP listen address and the protocol expected on it.
type ListenerConfig struct {
	// Address is host:port; "[::]:2055" listens on IPv6 and IPv4.
	Address string `yaml:"address"`
	// Protocol is "netflow" (NetFlow v5, v9 and IPFIX, told apart by the
	// version field) or "sflow".
	Protocol string `yaml:"protocol"`
}

// DefaultConfig returns NetFlow/IPFIX on UDP 2055 and sFlow on UDP 6343.
func DefaultConfig() Config {
	return Config{Listeners: []ListenerConfig{
		{Address: ":2055", Protocol: "netflow"},
		{Address: ":6343", Protocol: "sflow"},
	}}
}
