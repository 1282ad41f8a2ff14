package config

import "maps"

// Redacted replaces each secret in the configuration Redact returns.
const Redacted = "<redacted>"

// Redact returns a copy of c fit to print or log: admin.password and the
// instances' values that secret reports as secrets (password fields of
// their plugin's gui.json) are replaced by Redacted when set. c is not
// changed.
func Redact(c Config, secret func(plugin, key string) bool) Config {
	if c.Admin.Password != "" {
		c.Admin.Password = Redacted
	}
	c.Instances = append(c.Instances[:0:0], c.Instances...)
	for i := range c.Instances {
		in := &c.Instances[i]
		in.Values = maps.Clone(in.Values)
		for k, v := range in.Values {
			if v != "" && secret(in.Plugin, k) {
				in.Values[k] = Redacted
			}
		}
	}
	return c
}
