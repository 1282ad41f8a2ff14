package netflow

import (
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/flowsentry/flowsentry/flow"
)

// TestTemplateLifecycle drives template learning, replacement, withdrawal,
// expiry and the holding of data that comes before its template, with the
// receive time injected.
func TestTemplateLifecycle(t *testing.T) {
	exporterA := netip.MustParseAddr("192.0.2.1")
	exporterB := netip.MustParseAddr("2001:db8::1")
	src, dst := netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("203.0.113.1")
	basic := []spec{{ieSourceIPv4Address, 4, 0}, {ieDestinationIPv4Address, 4, 0},
		{iePacketDeltaCount, 4, 0}, {ieOctetDeltaCount, 4, 0}}
	flowRec := rec(src, dst, uint32(1), uint32(100))
	records := func(n int) [][]byte {
		out := make([][]byte, n)
		for i := range out {
			out[i] = flowRec
		}
		return out
	}
	tpl := func(domain uint32) []byte { return ipfixMsg(domain).template(256, basic...).bytes() }
	data := func(domain uint32, n int) []byte { return ipfixMsg(domain).data(256, records(n)...).bytes() }
	tplID := func(domain uint32, id uint16) []byte { return ipfixMsg(domain).template(id, basic...).bytes() }
	dataID := func(domain uint32, id uint16) []byte { return ipfixMsg(domain).data(id, flowRec).bytes() }
	v5 := v5Datagram(1, 0, v5Record{src: src, dst: dst, packets: 1, octets: 100})
	with := func(change func(*Config)) Config {
		c := DefaultConfig()
		change(&c)
		return c
	}
	withHolding := func(n int, age time.Duration) Config {
		return with(func(c *Config) { c.PendingDatagrams, c.PendingAge = n, age })
	}

	type step struct {
		at       time.Duration
		exporter netip.Addr // exporterA when not set
		payload  []byte
		want     Stats
		reason   string // of the error, "" for none
	}
	cases := []struct {
		name  string
		cfg   Config
		steps []step
	}{
		{
			name: "data before its template is replayed when the template arrives",
			cfg:  DefaultConfig(),
			steps: []step{
				{payload: data(1, 2), want: Stats{Version: 10, TemplateMisses: 1, Held: 1}},
				{at: time.Second, payload: tpl(1), want: Stats{Version: 10, TemplatesLearned: 1, Records: 2, Replayed: 2}},
				{at: 2 * time.Second, payload: data(1, 3), want: Stats{Version: 10, Records: 3}},
			},
		},
		{
			name: "data before its template in the same datagram",
			cfg:  DefaultConfig(),
			steps: []step{{
				payload: ipfixMsg(1).data(256, records(2)...).template(256, basic...).data(256, records(1)...).bytes(),
				want:    Stats{Version: 10, TemplatesLearned: 1, TemplateMisses: 1, Held: 1, Records: 3, Replayed: 2},
			}},
		},
		{
			name: "the pending bound drops the oldest held datagram",
			cfg:  withHolding(2, time.Minute),
			steps: []step{
				{payload: data(1, 1), want: Stats{Version: 10, TemplateMisses: 1, Held: 1}},
				{payload: data(1, 2), want: Stats{Version: 10, TemplateMisses: 1, Held: 1}},
				{payload: data(1, 4), want: Stats{Version: 10, TemplateMisses: 1, Held: 1, HeldDropped: 1}},
				{payload: tpl(1), want: Stats{Version: 10, TemplatesLearned: 1, Records: 6, Replayed: 6}},
			},
		},
		{
			name: "held data expires after the pending age",
			cfg:  withHolding(8, 10*time.Second),
			steps: []step{
				{payload: data(1, 1), want: Stats{Version: 10, TemplateMisses: 1, Held: 1}},
				{at: 5 * time.Second, payload: data(1, 2), want: Stats{Version: 10, TemplateMisses: 1, Held: 1}},
				{at: 11 * time.Second, payload: tpl(1), want: Stats{Version: 10, TemplatesLearned: 1, HeldDropped: 1, Records: 2, Replayed: 2}},
			},
		},
		{
			name: "any datagram expires held data",
			cfg:  withHolding(8, 10*time.Second),
			steps: []step{
				{payload: data(1, 1), want: Stats{Version: 10, TemplateMisses: 1, Held: 1}},
				{at: 11 * time.Second, exporter: exporterB, payload: v5, want: Stats{Version: 5, Records: 1, HeldDropped: 1}},
				{at: 12 * time.Second, payload: tpl(1), want: Stats{Version: 10, TemplatesLearned: 1}},
			},
		},
		{
			name: "holding disabled",
			cfg:  withHolding(0, 0),
			steps: []step{
				{payload: data(1, 1), want: Stats{Version: 10, TemplateMisses: 1, HeldDropped: 1}},
				{payload: tpl(1), want: Stats{Version: 10, TemplatesLearned: 1}},
			},
		},
		{
			name: "held data waits for the template of its own domain and exporter",
			cfg:  DefaultConfig(),
			steps: []step{
				{payload: data(1, 1), want: Stats{Version: 10, TemplateMisses: 1, Held: 1}},
				{payload: tpl(2), want: Stats{Version: 10, TemplatesLearned: 1}},
				{exporter: exporterB, payload: tpl(1), want: Stats{Version: 10, TemplatesLearned: 1}},
				{payload: v9Msg(1).template(256, basic...).bytes(), want: Stats{Version: 9, TemplatesLearned: 1}},
				{payload: tpl(1), want: Stats{Version: 10, TemplatesLearned: 1, Records: 1, Replayed: 1}},
			},
		},
		{
			name: "one held datagram waiting for two templates",
			cfg:  DefaultConfig(),
			steps: []step{
				{payload: ipfixMsg(1).data(256, records(1)...).data(257, records(2)...).bytes(),
					want: Stats{Version: 10, TemplateMisses: 2, Held: 1}},
				{payload: ipfixMsg(1).template(257, basic...).bytes(), want: Stats{Version: 10, TemplatesLearned: 1, Records: 2, Replayed: 2}},
				{payload: tpl(1), want: Stats{Version: 10, TemplatesLearned: 1, Records: 1, Replayed: 1}},
				{payload: ipfixMsg(1).template(257, basic...).bytes(), want: Stats{Version: 10}},
			},
		},
		{
			// 40 bytes of data: two 16-byte IPv4 records (8 bytes of
			// padding), then one 40-byte IPv6 record.
			name: "a changed template replaces the old one, an unchanged one is only refreshed",
			cfg:  DefaultConfig(),
			steps: []step{
				{payload: tpl(1), want: Stats{Version: 10, TemplatesLearned: 1}},
				{payload: tpl(1), want: Stats{Version: 10}},
				{payload: ipfixMsg(1).data(256, make([]byte, 40)).bytes(), want: Stats{Version: 10, Records: 2}},
				{payload: ipfixMsg(1).template(256, spec{ieSourceIPv6Address, 16, 0}, spec{ieDestinationIPv6Address, 16, 0},
					spec{iePacketDeltaCount, 4, 0}, spec{ieOctetDeltaCount, 4, 0}).bytes(),
					want: Stats{Version: 10, TemplatesLearned: 1}},
				{payload: ipfixMsg(1).data(256, make([]byte, 40)).bytes(), want: Stats{Version: 10, Records: 1}},
			},
		},
		{
			name: "a template not sent again within the template max age expires",
			cfg:  with(func(c *Config) { c.PendingDatagrams, c.PendingAge, c.TemplateMaxAge = 8, time.Hour, 30*time.Minute }),
			steps: []step{
				{payload: tpl(1), want: Stats{Version: 10, TemplatesLearned: 1}},
				{at: 20 * time.Minute, payload: tpl(1), want: Stats{Version: 10}},
				{at: 45 * time.Minute, payload: data(1, 1), want: Stats{Version: 10, Records: 1}},
				{at: 51 * time.Minute, payload: data(1, 1), want: Stats{Version: 10, TemplateMisses: 1, Held: 1}},
				{at: 52 * time.Minute, payload: tpl(1),
					want: Stats{Version: 10, TemplatesLearned: 1, Evicted: Evictions{Age: 1}, Records: 1, Replayed: 1}},
			},
		},
		{
			// 257 of domain 2 is the oldest once 256 of domain 1 is
			// refreshed; the other exporter has a bound of its own.
			name: "the exporter limit evicts the exporter's least recently sent template",
			cfg:  with(func(c *Config) { c.MaxTemplatesPerExporter, c.MaxTemplates = 2, 10 }),
			steps: []step{
				{payload: tpl(1), want: Stats{Version: 10, TemplatesLearned: 1}},
				{at: 1, payload: tplID(2, 257), want: Stats{Version: 10, TemplatesLearned: 1}},
				{at: 2, payload: tpl(1), want: Stats{Version: 10}},
				{at: 3, exporter: exporterB, payload: tplID(1, 300), want: Stats{Version: 10, TemplatesLearned: 1}},
				{at: 4, payload: v9Msg(1).template(256, basic...).bytes(),
					want: Stats{Version: 9, TemplatesLearned: 1, Evicted: Evictions{ExporterLimit: 1}}},
				{at: 5, payload: dataID(2, 257), want: Stats{Version: 10, TemplateMisses: 1, Held: 1}},
				{at: 6, payload: data(1, 1), want: Stats{Version: 10, Records: 1}},
				{at: 7, exporter: exporterB, payload: dataID(1, 300), want: Stats{Version: 10, Records: 1}},
			},
		},
		{
			name: "the total limit evicts the least recently sent template of any exporter",
			cfg:  with(func(c *Config) { c.MaxTemplatesPerExporter, c.MaxTemplates = 2, 3 }),
			steps: []step{
				{payload: tpl(1), want: Stats{Version: 10, TemplatesLearned: 1}},
				{at: 1, payload: tplID(1, 257), want: Stats{Version: 10, TemplatesLearned: 1}},
				{at: 2, exporter: exporterB, payload: tpl(1), want: Stats{Version: 10, TemplatesLearned: 1}},
				{at: 3, exporter: exporterB, payload: tplID(1, 257),
					want: Stats{Version: 10, TemplatesLearned: 1, Evicted: Evictions{TotalLimit: 1}}},
				{at: 4, payload: data(1, 1), want: Stats{Version: 10, TemplateMisses: 1, Held: 1}},
				{at: 5, payload: dataID(1, 257), want: Stats{Version: 10, Records: 1}},
				{at: 6, exporter: exporterB, payload: data(1, 1), want: Stats{Version: 10, Records: 1}},
			},
		},
		{
			name: "a changed template takes the place of the old one without eviction",
			cfg:  with(func(c *Config) { c.MaxTemplatesPerExporter, c.MaxTemplates = 1, 1 }),
			steps: []step{
				{payload: tpl(1), want: Stats{Version: 10, TemplatesLearned: 1}},
				{payload: ipfixMsg(1).template(256, append(basic, spec{ieProtocolIdentifier, 1, 0})...).bytes(),
					want: Stats{Version: 10, TemplatesLearned: 1}},
			},
		},
		{
			// The second held record claims a 200-byte interface name
			// that the set does not hold.
			name: "an error in held data is reported by the call that replays it",
			cfg:  DefaultConfig(),
			steps: []step{
				{payload: ipfixMsg(1).data(256, rec(flowRec, "eth0"), append(rec(flowRec), 200, 'e')).bytes(),
					want: Stats{Version: 10, TemplateMisses: 1, Held: 1}},
				{payload: ipfixMsg(1).template(256, append(basic, spec{82, varLength, 0})...).bytes(),
					want: Stats{Version: 10, TemplatesLearned: 1, Records: 1, Replayed: 1}, reason: "truncated"},
				{payload: v5, want: Stats{Version: 5, Records: 1}},
			},
		},
		{
			name: "ipfix template withdrawal",
			cfg:  DefaultConfig(),
			steps: []step{
				{payload: tpl(1), want: Stats{Version: 10, TemplatesLearned: 1}},
				{payload: ipfixMsg(1).withdraw(false, 256).withdraw(false, 999).bytes(), want: Stats{Version: 10, TemplatesWithdrawn: 1}},
				{payload: data(1, 1), want: Stats{Version: 10, TemplateMisses: 1, Held: 1}},
			},
		},
		{
			name: "ipfix withdrawal of all data or all options templates",
			cfg:  DefaultConfig(),
			steps: []step{
				{payload: ipfixMsg(1).template(256, basic...).template(257, basic...).
					optionsTemplate(300, []spec{{149, 4, 0}}, spec{ieSamplingInterval, 4, 0}).bytes(),
					want: Stats{Version: 10, TemplatesLearned: 3}},
				{payload: ipfixMsg(1).withdraw(false, ipfixSets.template).bytes(), want: Stats{Version: 10, TemplatesWithdrawn: 2}},
				{payload: ipfixMsg(1).withdraw(true, ipfixSets.options).bytes(), want: Stats{Version: 10, TemplatesWithdrawn: 1}},
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			dec := NewDecoder(NewTemplates(tc.cfg))
			base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
			var out []flow.Record
			for i, s := range tc.steps {
				exporter := s.exporter
				if !exporter.IsValid() {
					exporter = exporterA
				}
				var st Stats
				var err error
				out, st, err = dec.Decode(exporter, base+int64(s.at), s.payload, out[:0])
				if reason := reasonOf(err); reason != s.reason {
					t.Fatalf("step %d: error %v, want reason %q", i+1, err, s.reason)
				}
				if diff := cmp.Diff(st, s.want); diff != "" {
					t.Errorf("step %d (-got +want):\n%s", i+1, diff)
				}
			}
		})
	}
}

// TestNoTemplatesCapture feeds the nDPI capture whose data never gets its
// templates: every data set is a miss, every datagram is held, then
// dropped once the pending age has passed.
func TestNoTemplatesCapture(t *testing.T) {
	cfg := DefaultConfig()
	dec := NewDecoder(NewTemplates(cfg))
	dgs := readDatagrams(t, "vendor/ndpi-netflowv9-no-templates.pcap")
	var total Stats
	var last int64
	for i, dg := range dgs {
		out, st, err := dec.Decode(dg.exporter, dg.time, dg.payload, nil)
		if err != nil || len(out) != 0 {
			t.Fatalf("datagram %d: %d records, %v", i+1, len(out), err)
		}
		total = addStats(total, st)
		last = dg.time
	}
	_, st, err := dec.Decode(dgs[0].exporter, last+int64(cfg.PendingAge)+1, v5Datagram(0, 0), nil)
	if err != nil {
		t.Fatal(err)
	}
	total = addStats(total, st)
	want := Stats{TemplateMisses: 23, Held: 10, HeldDropped: 10}
	if diff := cmp.Diff(total, want); diff != "" {
		t.Errorf("(-got +want):\n%s", diff)
	}
}

// TestConcurrentDecoders runs decoders on several goroutines over one
// Templates, as the collector's workers do, each replaying captures whose
// templates the others may learn first; run with -race.
func TestConcurrentDecoders(t *testing.T) {
	files := []string{"derived/softflowd-v9-nmap-synscan.pcap", "derived/softflowd-ipfix-nmap-synscan.pcap",
		"vendor/pmacct-ta-104-ipfix-cisco-ipv6-sampling.pcap", "vendor/pmacct-ta-102-nfv9-cisco-sampling.pcap"}
	dgs := readAll(t, files...)
	const workers = 4
	templates := NewTemplates(DefaultConfig())
	counts := make([]int, workers)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			dec := NewDecoder(templates)
			var out []flow.Record
			for _, dg := range dgs {
				var err error
				if out, _, err = dec.Decode(dg.exporter, dg.time, dg.payload, out[:0]); err != nil {
					errs[w] = err
					return
				}
				counts[w] += len(out)
			}
		})
	}
	wg.Wait()
	for w := range workers {
		if errs[w] != nil || counts[w] != 2002+2002+3+35 {
			t.Errorf("worker %d: %d records, %v; want %d", w, counts[w], errs[w], 2002+2002+3+35)
		}
	}
}
