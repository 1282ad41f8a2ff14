package netflow

import (
	"errors"
	"time"

	"github.com/flowsentry/flowsentry/config/check"
)

// maxPendingDatagrams bounds Config.PendingDatagrams: a held datagram can
// take up to 64 KiB, so this caps held data at 4 GiB in the worst case.
const maxPendingDatagrams = 65536

// maxTemplates bounds Config.MaxTemplates: under 10 GiB of templates in the
// worst case.
const maxTemplates = 10_000_000

// Config configures the template cache shared by the NetFlow v9 / IPFIX
// decoders.
type Config struct {
	// PendingDatagrams is how many datagrams with data sets whose template
	// is not yet known are held, in total over all exporters, to be decoded
	// when the template arrives. Each takes the size of its template-less
	// sets (at most 64 KiB). 0 disables holding: such data is dropped and
	// counted.
	PendingDatagrams int `yaml:"pending_datagrams"`
	// PendingAge is how long a held datagram waits for its template before
	// it is dropped. Must be positive when PendingDatagrams is not 0.
	PendingAge time.Duration `yaml:"pending_age"`
	// TemplateMaxAge is how long a template stays usable without being sent
	// again; after that, data using it counts as a template miss until the
	// exporter resends it. 0 keeps templates until they are replaced or
	// withdrawn.
	TemplateMaxAge time.Duration `yaml:"template_max_age"`
	// MaxTemplatesPerExporter is how many templates and options templates
	// one exporter (UDP source address) may have, over all its
	// observation domains and both versions; when a new one comes, its
	// least recently learned or refreshed template is evicted. At most
	// MaxTemplates; 0 means the default, 4096.
	MaxTemplatesPerExporter int `yaml:"max_templates_per_exporter"`
	// MaxTemplates is how many templates are cached in total, over all
	// exporters; when a new one comes, the least recently learned or
	// refreshed template is evicted. A template takes under 1 KiB. 0
	// means the default, 100,000.
	MaxTemplates int `yaml:"max_templates"`
}

// DefaultConfig holds up to 1024 datagrams for one minute and keeps
// templates until they are replaced, withdrawn or evicted, up to 4096 per
// exporter and 100,000 in all.
func DefaultConfig() Config {
	return Config{
		PendingDatagrams:        1024,
		PendingAge:              time.Minute,
		MaxTemplatesPerExporter: 4096,
		MaxTemplates:            100_000,
	}
}

// withDefaults replaces the zero template limits with the defaults.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.MaxTemplates == 0 {
		c.MaxTemplates = d.MaxTemplates
	}
	if c.MaxTemplatesPerExporter == 0 {
		c.MaxTemplatesPerExporter = min(d.MaxTemplatesPerExporter, c.MaxTemplates)
	}
	return c
}

// Validate reports every invalid setting, with its key path.
func (c Config) Validate() error {
	var errs []error
	c = c.withDefaults()
	if c.PendingDatagrams < 0 || c.PendingDatagrams > maxPendingDatagrams {
		errs = append(errs, check.Errorf("pending_datagrams",
			"%d is out of range; use 0 (no holding) to %d", c.PendingDatagrams, maxPendingDatagrams))
	}
	if c.PendingDatagrams > 0 && c.PendingAge <= 0 {
		errs = append(errs, check.Errorf("pending_age",
			"%s must be positive while pending_datagrams is %d; set e.g. 1m, or set pending_datagrams to 0", c.PendingAge, c.PendingDatagrams))
	}
	if c.TemplateMaxAge < 0 {
		errs = append(errs, check.Errorf("template_max_age",
			"%s is negative; use 0 to keep templates until replaced, or a duration such as 30m", c.TemplateMaxAge))
	}
	if c.MaxTemplates < 1 || c.MaxTemplates > maxTemplates {
		errs = append(errs, check.Errorf("max_templates",
			"%d is out of range; use 1 to %d, or 0 for the default 100000", c.MaxTemplates, maxTemplates))
	}
	if c.MaxTemplatesPerExporter < 1 || c.MaxTemplatesPerExporter > max(c.MaxTemplates, 1) {
		errs = append(errs, check.Errorf("max_templates_per_exporter",
			"%d is out of range; use 1 to max_templates (%d), or 0 for the default 4096", c.MaxTemplatesPerExporter, c.MaxTemplates))
	}
	return errors.Join(errs...)
}
