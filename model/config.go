package model

// Config is the network model as written in the configuration file.
type Config struct{}

// DefaultConfig returns partition 0 "default" with traffic group 1
// "internal" holding the private blocks, which are also its INT blocks.
func DefaultConfig() Config { return Config{} }
