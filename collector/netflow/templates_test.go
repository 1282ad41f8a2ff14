package netflow

import (
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestTemplateFlood sends templates by the thousand, each ID once, from
// exporters cycling through observation domains, as a hostile or broken
// exporter would: the cache must stay within its bounds, keeping the most
// recently sent templates, and count every eviction.
func TestTemplateFlood(t *testing.T) {
	basic := []spec{{ieSourceIPv4Address, 4, 0}, {ieDestinationIPv4Address, 4, 0},
		{iePacketDeltaCount, 4, 0}, {ieOctetDeltaCount, 4, 0}}
	flowRec := rec(netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("203.0.113.1"), uint32(1), uint32(100))
	cases := []struct {
		name      string
		cfg       func(*Config)
		exporters int
		domains   int
		ids       int // per domain
		// every is the time between two datagrams.
		every time.Duration
		// perDatagram is how many templates one datagram carries.
		perDatagram int
		want        Evictions
		wantLen     int
	}{
		{
			name:      "one exporter, 30 domains, 2000 IDs each",
			cfg:       func(c *Config) { c.MaxTemplatesPerExporter, c.MaxTemplates = 1000, 1500 },
			exporters: 1, domains: 30, ids: 2000, perDatagram: 100,
			want:    Evictions{ExporterLimit: 59_000},
			wantLen: 1000,
		},
		{
			name:      "default bounds, one exporter, 30 domains, 1000 IDs each",
			cfg:       func(*Config) {},
			exporters: 1, domains: 30, ids: 1000, perDatagram: 200,
			want:    Evictions{ExporterLimit: 30_000 - 4096},
			wantLen: 4096,
		},
		{
			name:      "many exporters share the total",
			cfg:       func(c *Config) { c.MaxTemplatesPerExporter, c.MaxTemplates = 1000, 1500 },
			exporters: 4, domains: 2, ids: 400, perDatagram: 100,
			want:    Evictions{TotalLimit: 4*800 - 1500},
			wantLen: 1500,
		},
		{
			// Each exporter's domains come one after the other, so the
			// total bound also evicts other exporters' templates.
			name:      "both bounds",
			cfg:       func(c *Config) { c.MaxTemplatesPerExporter, c.MaxTemplates = 500, 1200 },
			exporters: 3, domains: 2, ids: 400, perDatagram: 100,
			want:    Evictions{ExporterLimit: 3 * 300, TotalLimit: 3*500 - 1200},
			wantLen: 1200,
		},
		{
			// A datagram a second, 100 IDs each: 60 s of templates live.
			name:      "template max age",
			cfg:       func(c *Config) { c.TemplateMaxAge, c.MaxTemplatesPerExporter = time.Minute, c.MaxTemplates },
			exporters: 1, domains: 10, ids: 1000, every: time.Second, perDatagram: 100,
			want:    Evictions{Age: 10_000 - 6100},
			wantLen: 6100,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tc.cfg(&cfg)
			if err := cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			templates := NewTemplates(cfg)
			dec := NewDecoder(templates)
			var got Evictions
			learned, now := 0, int64(0)
			type sent struct {
				exporter netip.Addr
				domain   uint32
				id       uint16
			}
			var first, last sent
			for e := range tc.exporters {
				exporter := netip.AddrFrom4([4]byte{192, 0, 2, byte(e + 1)})
				for domain := range uint32(tc.domains) {
					for start := 0; start < tc.ids; start += tc.perDatagram {
						m := ipfixMsg(domain)
						for id := start; id < min(start+tc.perDatagram, tc.ids); id++ {
							m.template(uint16(256+id), basic...)
							last = sent{exporter, domain, uint16(256 + id)}
						}
						if learned == 0 {
							first = sent{exporter, domain, 256}
						}
						_, st, err := dec.Decode(exporter, now, m.bytes(), nil)
						if err != nil {
							t.Fatal(err)
						}
						learned += st.TemplatesLearned
						got.ExporterLimit += st.Evicted.ExporterLimit
						got.TotalLimit += st.Evicted.TotalLimit
						got.Age += st.Evicted.Age
						now += int64(tc.every)
					}
					checkCache(t, templates)
				}
			}
			if diff := cmp.Diff(got, tc.want); diff != "" {
				t.Errorf("evictions (-got +want):\n%s", diff)
			}
			if n := templates.Len(); n != tc.wantLen || learned-n != got.ExporterLimit+got.TotalLimit+got.Age {
				t.Errorf("%d templates cached, %d learned; want %d cached and one eviction for each other", n, learned, tc.wantLen)
			}
			for _, c := range []struct {
				sent
				want Stats
			}{
				{first, Stats{Version: 10, TemplateMisses: 1, Held: 1}},
				{last, Stats{Version: 10, Records: 1}},
			} {
				_, st, err := dec.Decode(c.exporter, now, ipfixMsg(c.domain).data(c.id, flowRec).bytes(), nil)
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(st, c.want); diff != "" {
					t.Errorf("data of template %d of domain %d of %s (-got +want):\n%s", c.id, c.domain, c.exporter, diff)
				}
			}
		})
	}
}
