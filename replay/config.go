package replay

// Config configures how replay tells export datagrams from other packets.
type Config struct {
	// NetFlowPorts are the UDP destination ports whose datagrams are decoded
	// as NetFlow v5/v9 or IPFIX instead of being metered.
	NetFlowPorts []uint16 `yaml:"netflow_ports"`
	// SFlowPorts are the UDP destination ports whose datagrams are decoded
	// as sFlow v5.
	SFlowPorts []uint16 `yaml:"sflow_ports"`
}

// DefaultConfig returns the usual export ports.
func DefaultConfig() Config {
	return Config{
		NetFlowPorts: []uint16{2055, 2056, 4739, 9995, 9996},
		SFlowPorts:   []uint16{6343},
	}
}
