package collector

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flowsentry/flowsentry/internal/testcaptures"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/flowsentry/flowsentry/collector/netflow"
	"github.com/flowsentry/flowsentry/flow"
	"github.com/flowsentry/flowsentry/gen"
)

// cmpOpts compares addresses by value and nil slices equal to empty ones.
var cmpOpts = cmp.Options{cmpopts.EquateComparable(netip.Addr{}), cmpopts.EquateEmpty()}

// TestReceive sends generated datagrams of each protocol over UDP and
// checks the records, interface counters and metrics.
func TestReceive(t *testing.T) {
	v6Src := netip.MustParsePrefix("2001:db8:1::/64")
	v6Dst := netip.MustParsePrefix("2001:db8:2::/64")
	tests := []struct {
		name, protocol, listen, local string
		gen                           gen.Config
		version                       string
	}{
		{"netflow v5", "netflow", "127.0.0.1:0", "127.0.0.1", gen.Config{Protocol: gen.NetFlowV5, SamplingRate: 10}, "netflow5"},
		{"netflow v9", "netflow", "127.0.0.1:0", "127.0.0.1", gen.Config{Protocol: gen.NetFlowV9, SamplingRate: 100, RefreshEvery: 7}, "netflow9"},
		{"netflow v9 ipv6 over ipv6", "netflow", "[::1]:0", "::1", gen.Config{Protocol: gen.NetFlowV9, SrcPrefix: v6Src, DstPrefix: v6Dst}, "netflow9"},
		{"ipfix", "netflow", "127.0.0.1:0", "127.0.0.1", gen.Config{Protocol: gen.IPFIX, SamplingRate: 8, Domain: 3}, "ipfix"},
		{"ipfix 64 KiB datagrams", "netflow", "127.0.0.1:0", "127.0.0.1", gen.Config{Protocol: gen.IPFIX, Records: 1180}, "ipfix"},
		{"sflow", "sflow", "127.0.0.1:0", "127.0.0.1", gen.Config{Protocol: gen.SFlow, SamplingRate: 256, RefreshEvery: 5}, "sflow5"},
		{"sflow ipv6 on a dual-stack socket", "sflow", "[::]:0", "::1", gen.Config{Protocol: gen.SFlow, SrcPrefix: v6Src, DstPrefix: v6Dst, Exporter: netip.MustParseAddr("2001:db8::9")}, "sflow5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sink := &testSink{}
			c := start(t, testConfig(tt.protocol, tt.listen), sink)
			if tt.protocol == "netflow" {
				tt.gen.Exporter = netip.MustParseAddr(tt.local) // NetFlow's exporter is the UDP source
			}
			g := generator(t, tt.gen)
			conn := dial(t, c, 0, tt.local)
			const datagrams = 25
			var want []flow.Record
			var wantCounters []flow.IfCounters
			sent := time.Now().UnixNano()
			for range datagrams {
				send(t, conn, g.Append(nil, time.Now().UnixNano()))
				want = append(want, g.Records()...)
				wantCounters = append(wantCounters, g.Counters()...)
			}
			waitFor(t, "the records", func() bool {
				got, _ := sink.got()
				return len(got) >= len(want)
			})
			got, gotCounters := sink.got()
			opts := cmpOpts
			if tt.protocol == "sflow" {
				// sFlow records and counters carry the receive time.
				for _, r := range got {
					if r.Start < sent || r.End != r.Start || r.Start > time.Now().UnixNano() {
						t.Fatalf("record time %d, %d not the receive time", r.Start, r.End)
					}
				}
				opts = append(opts, cmpopts.IgnoreFields(flow.Record{}, "Start", "End"), cmpopts.IgnoreFields(flow.IfCounters{}, "Time"))
			}
			if diff := cmp.Diff(got, want, opts); diff != "" {
				t.Errorf("records (-got +want):\n%s", diff)
			}
			if diff := cmp.Diff(gotCounters, wantCounters, opts); diff != "" {
				t.Errorf("interface counters (-got +want):\n%s", diff)
			}
			if n := value(c.m.datagrams, tt.local, tt.version); n != datagrams {
				t.Errorf("datagrams_total{exporter=%q,version=%q} = %v, want %d", tt.local, tt.version, n, datagrams)
			}
			if n := value(c.m.records, tt.local, tt.version); n != float64(len(want)) {
				t.Errorf("records_total = %v, want %d", n, len(want))
			}
		})
	}
}

// TestMalformed sends bad datagrams, each followed by a good one: every bad
// one is counted under its reason, and the good one is still decoded.
func TestMalformed(t *testing.T) {
	v5 := generator(t, gen.Config{Protocol: gen.NetFlowV5, Records: 2}).Append(nil, time.Now().UnixNano())
	binary.BigEndian.PutUint16(v5[2:], 3) // one more record than present
	v9 := func(sets ...[]byte) []byte {
		p := be(9, 2)                       // version, count
		p = append(p, be32(1, 0, 0, 77)...) // uptime, secs, sequence, source ID
		for _, s := range sets {
			p = append(p, s...)
		}
		return p
	}
	ipfix := func(sets ...[]byte) []byte {
		body := []byte{}
		for _, s := range sets {
			body = append(body, s...)
		}
		return append(append(be(10, uint16(16+len(body))), be32(0, 0, 5)...), body...)
	}
	sflowHeader := func(samples uint32) []byte { return be32(5, 1, 0x7f000001, 0, 1, 0, samples) }
	flowSample := be32(1, 0, 1, 1, 0, 1, 2, 1) // sequence, source, rate, pool, drops, in, out, one record
	tests := []struct {
		name, protocol string
		payload        []byte
		reason         string // "" when the datagram is no error
		metric         func(*Collector) float64
	}{
		{"netflow 1 byte", "netflow", []byte{5}, "truncated", nil},
		{"netflow unknown version", "netflow", make([]byte, 24), "version", nil},
		{"netflow 64 KiB of zeros", "netflow", make([]byte, 65507), "version", nil},
		{"netflow v5 truncated header", "netflow", be(5, 1, 0, 0, 0), "truncated", nil},
		{"netflow v5 count beyond the datagram", "netflow", v5, "count", nil},
		{"netflow v9 truncated header", "netflow", be(9, 1, 0), "truncated", nil},
		{"netflow v9 set length beyond the datagram", "netflow", v9(be(256, 60000, 0, 0)), "set_length", nil},
		{"netflow v9 set length below 4", "netflow", v9(be(256, 2, 0, 0)), "set_length", nil},
		{"netflow v9 template with only zero-length fields", "netflow", v9(be(0, 16, 300, 2, 5000, 0, 5001, 0)), "zero_length", nil},
		{"netflow v9 zero-length byte counter", "netflow", v9(be(0, 12, 300, 1, 1, 0)), "field_length", nil},
		{"netflow v9 template ID below 256", "netflow", v9(be(0, 12, 10, 1, 8, 4)), "template_id", nil},
		{"netflow v9 address of 3 bytes", "netflow", v9(be(0, 16, 300, 2, 8, 3, 12, 4)), "field_length", nil},
		{"netflow v9 template ID never defined", "netflow", v9(be(999, 12, 1, 2, 3, 4)), "", func(c *Collector) float64 {
			return value(c.m.templateMisses, "127.0.0.1")
		}},
		{"ipfix length below the header", "netflow", append(be(10, 5), be32(0, 0, 0)...), "length", nil},
		{"ipfix length beyond the datagram", "netflow", append(be(10, 400), be32(0, 0, 0)...), "length", nil},
		{"ipfix template runs past its set", "netflow", ipfix(be(2, 12, 300, 5, 8, 4)), "template_length", nil},
		{"sflow 1 byte", "sflow", []byte{0}, "truncated", nil},
		{"sflow version 4", "sflow", be32(4, 1, 0, 0, 0, 0, 0), "version", nil},
		{"sflow 64 KiB of zeros", "sflow", make([]byte, 65507), "version", nil},
		{"sflow agent address type 3", "sflow", be32(5, 3, 0, 0, 0, 0, 0), "address_type", nil},
		{"sflow truncated header", "sflow", be32(5, 1, 0x7f000001, 0), "truncated", nil},
		{"sflow sample count beyond the datagram", "sflow", sflowHeader(1_000_000), "count", nil},
		{"sflow sample length beyond the datagram", "sflow", append(sflowHeader(1), be32(1, 1000)...), "sample_length", nil},
		{"sflow zero-length sample", "sflow", append(sflowHeader(1), be32(1, 0)...), "sample_length", nil},
		{"sflow zero-length record", "sflow", append(append(sflowHeader(1), be32(1, 40)...), append(flowSample, be32(1, 0)...)...), "record_length", nil},
		{"sflow record count beyond the sample", "sflow", append(append(sflowHeader(1), be32(1, 32)...), be32(1, 0, 1, 1, 0, 1, 2, 5000)...), "count", nil},
	}
	protocols := map[string]gen.Protocol{"netflow": gen.NetFlowV9, "sflow": gen.SFlow}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sink := &testSink{}
			c := start(t, testConfig(tt.protocol, "127.0.0.1:0"), sink)
			conn := dial(t, c, 0, "127.0.0.1")
			g := generator(t, gen.Config{Protocol: protocols[tt.protocol]})
			good := g.Append(nil, time.Now().UnixNano())
			send(t, conn, tt.payload, good)
			waitFor(t, "the good datagram's records", func() bool {
				got, _ := sink.got()
				return len(got) == len(g.Records())
			})
			if tt.reason != "" {
				if n := value(c.m.decodeErrors, "127.0.0.1", tt.reason); n != 1 {
					t.Errorf("decode_errors_total{reason=%q} = %v, want 1", tt.reason, n)
				}
			}
			if n := sum(t, c.m.decodeErrors); tt.reason == "" && n != 0 || tt.reason != "" && n != 1 {
				t.Errorf("decode errors of all reasons = %v", n)
			}
			if tt.metric != nil && tt.metric(c) != 1 {
				t.Errorf("metric = %v, want 1", tt.metric(c))
			}
			if n := sum(t, c.m.datagrams); n != 2 {
				t.Errorf("datagrams_total = %v, want 2", n)
			}
		})
	}
}

// be encodes big-endian 16-bit words.
func be(words ...uint16) []byte {
	var out []byte
	for _, w := range words {
		out = binary.BigEndian.AppendUint16(out, w)
	}
	return out
}

// be32 encodes big-endian 32-bit words.
func be32(words ...uint32) []byte {
	var out []byte
	for _, w := range words {
		out = binary.BigEndian.AppendUint32(out, w)
	}
	return out
}

// sum adds up every series of a counter vector.
func sum(t testing.TB, v *prometheus.CounterVec) float64 {
	t.Helper()
	ch := make(chan prometheus.Metric, 1024)
	v.Collect(ch)
	close(ch)
	var total float64
	for m := range ch {
		var d dto.Metric
		if err := m.Write(&d); err != nil {
			t.Fatal(err)
		}
		total += d.GetCounter().GetValue()
	}
	return total
}

// TestCaptures replays real exports (softflowd, pmacct) and counts the
// records.
func TestCaptures(t *testing.T) {
	tests := []struct {
		file, protocol    string
		records, counters int
		version           string
	}{
		{"flow-exports/derived/softflowd-v5-synflood.pcap", "netflow", 37669, 0, "netflow5"},
		{"flow-exports/derived/softflowd-v9-synflood.pcap", "netflow", 37669, 0, "netflow9"},
		{"flow-exports/derived/softflowd-ipfix-synflood.pcap", "netflow", 37669, 0, "ipfix"},
		{"flow-exports/derived/pmacct-sflow-nmap-synscan.pcap", "sflow", 2007, 1, "sflow5"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			payloads := udpPayloads(t, testcaptures.Path(t, tt.file))
			sink := &testSink{}
			c := start(t, testConfig(tt.protocol, "127.0.0.1:0"), sink)
			conn := dial(t, c, 0, "127.0.0.1")
			for i, p := range payloads {
				send(t, conn, p)
				if i%200 == 199 { // keep within the socket buffer, even under -race
					waitFor(t, "the collector to catch up", func() bool { return sum(t, c.m.datagrams) == float64(i+1) })
				}
			}
			waitFor(t, "every datagram", func() bool { return sum(t, c.m.datagrams) == float64(len(payloads)) })
			waitFor(t, "every record", func() bool {
				got, counters := sink.got()
				return len(got) >= tt.records && len(counters) >= tt.counters
			})
			got, counters := sink.got()
			if len(got) != tt.records || len(counters) != tt.counters {
				t.Errorf("got %d records and %d counters, want %d and %d", len(got), len(counters), tt.records, tt.counters)
			}
			if n := value(c.m.records, "127.0.0.1", tt.version); n != float64(tt.records) {
				t.Errorf("records_total = %v, want %d", n, tt.records)
			}
			if n := sum(t, c.m.decodeErrors); n != 0 {
				t.Errorf("decode errors = %v, want 0", n)
			}
		})
	}
}

// TestReusePort checks that every worker has its own socket on the
// listener's port, and that datagrams from many sources all arrive.
func TestReusePort(t *testing.T) {
	sink := &testSink{}
	cfg := testConfig("netflow", "127.0.0.1:0")
	cfg.Workers = 4
	c := start(t, cfg, sink)
	port := c.Addrs()[0].(*net.UDPAddr).Port
	if n := len(procSockets(t, port)); n != 4 {
		t.Fatalf("%d sockets bound to port %d, want 4", n, port)
	}
	g := generator(t, gen.Config{Protocol: gen.NetFlowV5})
	const sources = 32
	for range sources {
		send(t, dial(t, c, 0, "127.0.0.1"), g.Append(nil, time.Now().UnixNano()))
	}
	waitFor(t, "the records of every source", func() bool {
		got, _ := sink.got()
		return len(got) == sources*30
	})
	if got := gaugeSeries(t, c.m.receiveBuffer); got != 4 {
		t.Errorf("%d receive buffer gauges, want one per worker (4)", got)
	}
}

// procSocket is a line of /proc/net/udp or udp6.
type procSocket struct {
	drops uint64
}

// procSockets returns the UDP sockets bound to port.
func procSockets(t testing.TB, port int) []procSocket {
	t.Helper()
	var out []procSocket
	for _, file := range []string{"/proc/net/udp", "/proc/net/udp6"} {
		f, err := os.Open(file)
		if err != nil {
			t.Fatal(err)
		}
		s := bufio.NewScanner(f)
		s.Scan() // header
		for s.Scan() {
			fields := strings.Fields(s.Text())
			if len(fields) < 13 {
				continue
			}
			local := fields[1]
			p, err := strconv.ParseUint(local[strings.LastIndexByte(local, ':')+1:], 16, 16)
			if err != nil || int(p) != port {
				continue
			}
			drops, _ := strconv.ParseUint(fields[len(fields)-1], 10, 64)
			out = append(out, procSocket{drops: drops})
		}
		f.Close()
	}
	return out
}

// gaugeSeries counts the series of a gauge vector.
func gaugeSeries(t testing.TB, v *prometheus.GaugeVec) int {
	t.Helper()
	ch := make(chan prometheus.Metric, 1024)
	v.Collect(ch)
	close(ch)
	return len(ch)
}

// blockingSink takes batches only once released, stalling the worker
// meanwhile so that the socket buffer fills.
type blockingSink struct {
	testSink
	release chan struct{}
}

func (s *blockingSink) Submit(b *flow.Batch) bool {
	<-s.release
	return s.testSink.Submit(b)
}

// TestSocketDrops stalls the worker until the kernel drops datagrams and
// checks that drops_total{reason="socket"} matches the kernel's count and,
// with the datagrams received, what was sent.
func TestSocketDrops(t *testing.T) {
	sink := &blockingSink{release: make(chan struct{})}
	cfg := testConfig("netflow", "127.0.0.1:0")
	cfg.Workers = 1
	cfg.ReceiveBuffer = 64 << 10
	c := start(t, cfg, sink)
	conn := dial(t, c, 0, "127.0.0.1")
	g := generator(t, gen.Config{Protocol: gen.NetFlowV5})
	buf := make([]byte, 0, 1500)
	const sent = 600
	for range sent {
		buf = g.Append(buf[:0], time.Now().UnixNano())
		send(t, conn, buf)
	}
	close(sink.release)
	// The drop count arrives with the next datagram the kernel queues.
	waitFor(t, "the backlog", func() bool {
		n := sum(t, c.m.datagrams)
		time.Sleep(20 * time.Millisecond)
		return n == sum(t, c.m.datagrams)
	})
	received := sum(t, c.m.datagrams)
	send(t, conn, g.Append(buf[:0], time.Now().UnixNano()))
	waitFor(t, "the last datagram", func() bool { return sum(t, c.m.datagrams) > received })
	drops := value(c.m.drops, dropSocket)
	if drops == 0 {
		t.Fatal("no socket drop counted")
	}
	var kernel uint64
	for _, s := range procSockets(t, c.Addrs()[0].(*net.UDPAddr).Port) {
		kernel += s.drops
	}
	if drops != float64(kernel) {
		t.Errorf("drops_total{reason=socket} = %v, kernel says %d", drops, kernel)
	}
	if got := sum(t, c.m.datagrams) + drops; got != sent+1 {
		t.Errorf("received + dropped = %v, want the %d sent", got, sent+1)
	}
}

// TestQueueFull checks that batches the sink refuses are counted and
// released.
func TestQueueFull(t *testing.T) {
	sink := &testSink{full: true}
	c := start(t, testConfig("netflow", "127.0.0.1:0"), sink)
	conn := dial(t, c, 0, "127.0.0.1")
	g := generator(t, gen.Config{Protocol: gen.NetFlowV5})
	const datagrams = 40 // 1200 records: two full batches, then a partial one
	for range datagrams {
		send(t, conn, g.Append(nil, time.Now().UnixNano()))
	}
	waitFor(t, "the drops", func() bool { return value(c.m.drops, dropQueueFull) == datagrams })
	if n := value(c.m.droppedRecords, dropQueueFull); n != datagrams*30 {
		t.Errorf("dropped_records_total = %v, want %d", n, datagrams*30)
	}
	if n := value(c.m.records, "127.0.0.1", "netflow5"); n != datagrams*30 {
		t.Errorf("records_total = %v, want %d (decoded, then dropped)", n, datagrams*30)
	}
}

// TestTemplateBounds floods the collector with IPFIX templates, 20 new
// ones a datagram in a new observation domain each time: the cache keeps
// the exporter's bound, and the evictions and the cache size are in the
// metrics.
func TestTemplateBounds(t *testing.T) {
	cfg := testConfig("netflow", "127.0.0.1:0")
	cfg.Templates.MaxTemplatesPerExporter, cfg.Templates.MaxTemplates = 50, 60
	c := start(t, cfg, &testSink{})
	conn := dial(t, c, 0, "127.0.0.1")
	const datagrams, perDatagram = 10, 20
	for domain := range uint32(datagrams) {
		set := be(2, 4+12*perDatagram)
		for id := range uint16(perDatagram) {
			set = append(set, be(256+id, 2, 8, 4, 12, 4)...) // source and destination IPv4 address
		}
		send(t, conn, append(append(be(10, uint16(16+len(set))), be32(0, 0, domain)...), set...))
	}
	waitFor(t, "every datagram", func() bool { return sum(t, c.m.datagrams) == datagrams })
	if n := value(c.m.templatesLearned, "127.0.0.1"); n != datagrams*perDatagram {
		t.Errorf("templates_learned_total = %v, want %d", n, datagrams*perDatagram)
	}
	for _, m := range []struct {
		name      string
		got, want float64
	}{
		{"templates", testutil.ToFloat64(c.m.templates), 50},
		{`template_evictions_total{reason="exporter_limit"}`, testutil.ToFloat64(c.m.evictedExporterLimit), datagrams*perDatagram - 50},
		{`template_evictions_total{reason="total_limit"}`, testutil.ToFloat64(c.m.evictedTotalLimit), 0},
		{`template_evictions_total{reason="age"}`, testutil.ToFloat64(c.m.evictedAge), 0},
	} {
		if m.got != m.want {
			t.Errorf("%s = %v, want %v", m.name, m.got, m.want)
		}
	}
}

// TestFlush checks that a partial batch reaches the sink after the flush
// interval, and at the latest on Stop.
func TestFlush(t *testing.T) {
	for _, interval := range []time.Duration{20 * time.Millisecond, maxFlush} {
		t.Run(interval.String(), func(t *testing.T) {
			sink := &testSink{}
			cfg := testConfig("netflow", "127.0.0.1:0")
			cfg.FlushInterval = interval
			c := start(t, cfg, sink)
			g := generator(t, gen.Config{Protocol: gen.NetFlowV5, Records: 3})
			send(t, dial(t, c, 0, "127.0.0.1"), g.Append(nil, time.Now().UnixNano()))
			if interval < time.Second {
				waitFor(t, "the flush", func() bool { got, _ := sink.got(); return len(got) == 3 })
				return
			}
			waitFor(t, "the datagram", func() bool { return sum(t, c.m.datagrams) == 1 })
			if got, _ := sink.got(); len(got) != 0 {
				t.Fatalf("%d records handed over before the flush interval", len(got))
			}
			c.Stop()
			if got, _ := sink.got(); len(got) != 3 {
				t.Errorf("Stop handed over %d records, want 3", len(got))
			}
		})
	}
}

// TestLifecycle checks Start and Stop in every order, and that Stop leaves
// no goroutine behind.
func TestLifecycle(t *testing.T) {
	before := runtime.NumGoroutine()
	c, err := New(testConfig("sflow", "127.0.0.1:0"), &testSink{}, prometheus.NewRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Addrs() != nil {
		t.Errorf("Addrs() before Start = %v, want nil", c.Addrs())
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err == nil || !strings.Contains(err.Error(), "already started") {
		t.Errorf("second Start() = %v, want an error saying it is started", err)
	}
	c.Stop()
	c.Stop()
	if err := c.Start(); err == nil || !strings.Contains(err.Error(), "already stopped") {
		t.Errorf("Start() after Stop = %v, want an error saying it is stopped", err)
	}
	waitFor(t, "the goroutines to end", func() bool { return runtime.NumGoroutine() <= before })

	never, err := New(testConfig("sflow", "127.0.0.1:0"), &testSink{}, prometheus.NewRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	never.Stop()
	never.Stop()
}

// TestStartFails checks that a listener whose port another socket holds,
// with or without SO_REUSEPORT, fails Start with ErrPortInUse, leaving the
// holder its datagrams and no socket open, and that a port a stopped
// collector held is free again.
func TestStartFails(t *testing.T) {
	cases := []struct {
		name string
		// hold takes a port on 127.0.0.1 and returns its address, and a
		// check that the holder still gets its datagrams.
		hold func(t *testing.T) (string, func(t *testing.T))
		// sockets is how many sockets the holder has on the port.
		sockets int
		want    error // nil when Start succeeds
	}{
		{
			name: "a plain UDP socket",
			hold: func(t *testing.T) (string, func(t *testing.T)) {
				busy, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { busy.Close() })
				return busy.LocalAddr().String(), func(t *testing.T) {
					conn, err := net.DialUDP("udp", nil, busy.LocalAddr().(*net.UDPAddr))
					if err != nil {
						t.Fatal(err)
					}
					defer conn.Close()
					send(t, conn, []byte("ping"))
					busy.SetReadDeadline(time.Now().Add(10 * time.Second))
					if n, _, err := busy.ReadFrom(make([]byte, 16)); err != nil || n != 4 {
						t.Errorf("the socket holding the port read %d bytes, %v; want its datagram", n, err)
					}
				}
			},
			sockets: 1,
			want:    ErrPortInUse,
		},
		{
			name: "another collector, SO_REUSEPORT sockets",
			hold: func(t *testing.T) (string, func(t *testing.T)) {
				sink := &testSink{}
				first := start(t, testConfig("netflow", "127.0.0.1:0"), sink)
				return first.Addrs()[0].String(), func(t *testing.T) {
					g := generator(t, gen.Config{Protocol: gen.NetFlowV5})
					for range 8 { // from 8 source ports, which the kernel spreads over the sockets
						send(t, dial(t, first, 0, "127.0.0.1"), g.Append(nil, time.Now().UnixNano()))
					}
					waitFor(t, "the first collector's records", func() bool { got, _ := sink.got(); return len(got) == 8*30 })
				}
			},
			sockets: 2, // testConfig's workers
			want:    ErrPortInUse,
		},
		{
			name: "a stopped collector",
			hold: func(t *testing.T) (string, func(t *testing.T)) {
				first := start(t, testConfig("netflow", "127.0.0.1:0"), &testSink{})
				first.Stop()
				return first.Addrs()[0].String(), nil
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			address, holderWorks := tc.hold(t)
			cfg := testConfig("sflow", "127.0.0.1:0")
			cfg.Listeners = append(cfg.Listeners, ListenerConfig{Address: address, Protocol: "netflow"})
			sink := &testSink{}
			c, err := New(cfg, sink, prometheus.NewRegistry(), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Stop()
			err = c.Start()
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Start() = %v, want nil", err)
				}
				g := generator(t, gen.Config{Protocol: gen.NetFlowV5})
				send(t, dial(t, c, 1, "127.0.0.1"), g.Append(nil, time.Now().UnixNano()))
				waitFor(t, "the records", func() bool { got, _ := sink.got(); return len(got) == 30 })
				return
			}
			wantMsg := "collector: listen on " + address + " for netflow: the port is already in use"
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), wantMsg) {
				t.Fatalf("Start() = %v, want %v naming the address", err, tc.want)
			}
			port := int(netip.MustParseAddrPort(address).Port())
			if n := len(procSockets(t, port)); n != tc.sockets {
				t.Errorf("%d sockets on port %d after the failed Start, want only the holder's %d", n, port, tc.sockets)
			}
			holderWorks(t)
		})
	}
}

// TestExporterLabels checks that exporters past MaxExporters share the
// label "other".
func TestExporterLabels(t *testing.T) {
	sink := &testSink{}
	cfg := testConfig("netflow", "127.0.0.1:0")
	cfg.MaxExporters = 1
	c := start(t, cfg, sink)
	g := generator(t, gen.Config{Protocol: gen.NetFlowV5})
	for _, local := range []string{"127.0.0.1", "127.0.0.2", "127.0.0.3"} {
		send(t, dial(t, c, 0, local), g.Append(nil, time.Now().UnixNano()))
		waitFor(t, "the datagram from "+local, func() bool {
			got, _ := sink.got()
			return len(got) == 30*(int(netip.MustParseAddr(local).As4()[3]))
		})
	}
	want := map[string]float64{"127.0.0.1": 1, "other": 2}
	for label, n := range want {
		if got := value(c.m.datagrams, label, "netflow5"); got != n {
			t.Errorf("datagrams_total{exporter=%q} = %v, want %v", label, got, n)
		}
	}
}

// TestHandleAllocations checks that decoding a datagram into a batch
// allocates nothing in steady state.
func TestHandleAllocations(t *testing.T) {
	for _, p := range []gen.Protocol{gen.NetFlowV5, gen.NetFlowV9, gen.IPFIX, gen.SFlow} {
		t.Run(p.String(), func(t *testing.T) {
			w, datagrams := benchWorker(t, p)
			now := time.Now()
			i := 0
			if n := testing.AllocsPerRun(1000, func() {
				w.handle(netip.AddrFrom4([4]byte{127, 0, 0, 1}), now, datagrams[i%len(datagrams)])
				i++
			}); n != 0 {
				t.Errorf("%v allocations per datagram, want 0", n)
			}
		})
	}
}

// discardSink releases every batch.
type discardSink struct{}

func (discardSink) Submit(b *flow.Batch) bool { b.Release(); return true }

// benchWorker returns a worker of protocol p on a socket it never reads,
// and datagrams to feed it, templates first.
func benchWorker(t testing.TB, p gen.Protocol) (*worker, [][]byte) {
	t.Helper()
	proto := "netflow"
	if p == gen.SFlow {
		proto = "sflow"
	}
	cfg := testConfig(proto, "127.0.0.1:0")
	c, err := New(cfg, discardSink{}, prometheus.NewRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ws, err := c.openListener(cfg.Listeners[0], 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws[0].conn.Close() })
	g := generator(t, gen.Config{Protocol: p, SamplingRate: 100, RefreshEvery: 64, Exporter: netip.AddrFrom4([4]byte{127, 0, 0, 1})})
	var datagrams [][]byte
	now := time.Now().UnixNano()
	for i := range 64 {
		datagrams = append(datagrams, g.Append(nil, now+int64(i)*1e6))
	}
	// Learn the templates and fill the pools before measuring.
	for _, d := range datagrams {
		ws[0].handle(netip.AddrFrom4([4]byte{127, 0, 0, 1}), time.Now(), d)
	}
	return ws[0], datagrams
}

// BenchmarkWorkerDatagram measures a worker's path for one datagram of 30
// records (sFlow: 10 samples), socket read aside: decode into the batch,
// metrics, hand-over of full batches.
//
//	go test ./collector -run '^$' -bench WorkerDatagram -benchmem -count=6 -cpu 1,2 | tee new.txt; benchstat old.txt new.txt
func BenchmarkWorkerDatagram(b *testing.B) {
	for _, p := range []gen.Protocol{gen.NetFlowV5, gen.NetFlowV9, gen.IPFIX, gen.SFlow} {
		b.Run(p.String(), func(b *testing.B) {
			w, datagrams := benchWorker(b, p)
			exporter := netip.AddrFrom4([4]byte{127, 0, 0, 1})
			records := sum(b, w.m.records)
			i := 0
			for b.Loop() {
				w.handle(exporter, time.Now(), datagrams[i%len(datagrams)])
				i++
			}
			records = sum(b, w.m.records) - records
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/records, "ns/record")
		})
	}
}

// TestValidate checks that every invalid setting is reported with its
// path.
func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Config)
		want []string
	}{
		{"default", func(*Config) {}, nil},
		{"no listener", func(c *Config) { c.Listeners = nil }, []string{"listeners: is empty"}},
		{"bad address", func(c *Config) { c.Listeners[0].Address = "2055" }, []string{`listeners[0].address: "2055" is not host:port`}},
		{"host name", func(c *Config) { c.Listeners[1].Address = "localhost:6343" }, []string{`listeners[1].address: "localhost:6343" has host "localhost", which is not an IP address`}},
		{"bad port", func(c *Config) { c.Listeners[0].Address = ":70000" }, []string{`listeners[0].address: ":70000" has port "70000"; use a number from 0 to 65535`}},
		{"same address twice", func(c *Config) { c.Listeners[1].Address = "[::]:2055" }, []string{`listeners[1].address: "[::]:2055" is also the address of listeners[0]`}},
		{"bad protocol", func(c *Config) { c.Listeners[1].Protocol = "ipfix" }, []string{`listeners[1].protocol: "ipfix" is not a protocol; use netflow (NetFlow v5, v9 and IPFIX) or sflow`}},
		{"workers", func(c *Config) { c.Workers = -1 }, []string{"workers: -1 is out of range"}},
		{"receive buffer", func(c *Config) { c.ReceiveBuffer = 1 << 40 }, []string{"receive_buffer: 1099511627776 bytes is out of range"}},
		{"flush interval", func(c *Config) { c.FlushInterval = 0 }, []string{"flush_interval: 0s is out of range; use 1ms to 1m0s"}},
		{"max exporters", func(c *Config) { c.MaxExporters = -5 }, []string{"max_exporters: -5 is out of range"}},
		{"templates", func(c *Config) { c.Templates.PendingDatagrams = -1 }, []string{"templates.pending_datagrams: -1 is out of range"}},
		{"several", func(c *Config) { c.Workers = 5000; c.FlushInterval = time.Hour }, []string{"workers: 5000", "flush_interval: 1h0m0s"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tt.edit(&cfg)
			err := cfg.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %v, want it to contain %q", err, w)
				}
			}
			if _, err := New(cfg, &testSink{}, prometheus.NewRegistry(), nil); err == nil || !strings.Contains(err.Error(), "collector."+tt.want[0]) {
				t.Errorf("New() = %v, want the path under collector.", err)
			}
		})
	}
}

// TestReceiveBuffer checks that the receive buffer is set, reported, and
// that a buffer smaller than configured is logged with the fix.
func TestReceiveBuffer(t *testing.T) {
	tests := []struct {
		name      string
		size      int
		effective int // when running as root (SO_RCVBUFFORCE)
		warn      bool
	}{
		{"3 MiB", 3 << 20, 3 << 20, false},
		{"beyond the kernel's limit", math.MaxInt32, math.MaxInt32 / 2, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			cfg := testConfig("netflow", "127.0.0.1:0")
			cfg.ReceiveBuffer = tt.size
			c, err := New(cfg, &testSink{}, prometheus.NewRegistry(), slog.New(slog.NewTextHandler(&logs, nil)))
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Start(); err != nil {
				t.Fatal(err)
			}
			defer c.Stop()
			name := fmt.Sprintf("%s/0", c.Addrs()[0])
			got := gauge(t, c.m.receiveBuffer, name)
			if os.Geteuid() == 0 && got != float64(tt.effective) {
				t.Errorf("receive_buffer_bytes{worker=%q} = %v, want %d", name, got, tt.effective)
			}
			warned := strings.Contains(logs.String(), "receive buffer smaller than configured") &&
				strings.Contains(logs.String(), fmt.Sprintf("sysctl -w net.core.rmem_max=%d", tt.size))
			if os.Geteuid() == 0 && warned != tt.warn || tt.warn && !warned {
				t.Errorf("logs %q: warning with the fix = %v, want %v", logs.String(), warned, tt.warn)
			}
		})
	}
}

// gauge reads one gauge of a vector.
func gauge(t testing.TB, v *prometheus.GaugeVec, labels ...string) float64 {
	t.Helper()
	var d dto.Metric
	if err := v.WithLabelValues(labels...).Write(&d); err != nil {
		t.Fatal(err)
	}
	return d.GetGauge().GetValue()
}

// fullSink is a testSink that tells the workers when it is full.
type fullSink struct{ testSink }

func (s *fullSink) Full() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.full
}

// TestShedding fills the sink: datagrams without templates are dropped
// before decoding and counted, datagrams with templates are still learned,
// so that once the sink has room the exporter's data decodes at once.
func TestShedding(t *testing.T) {
	sink := &fullSink{}
	sink.full = true
	cfg := testConfig("netflow", "127.0.0.1:0")
	cfg.Workers = 1
	c := start(t, cfg, sink)
	conn := dial(t, c, 0, "127.0.0.1")
	g := generator(t, gen.Config{Protocol: gen.NetFlowV9, RefreshEvery: 4})
	var dgs [][]byte
	for range 7 { // templates in the first and the fifth
		dgs = append(dgs, g.Append(nil, time.Now().UnixNano()))
	}
	withTemplates := 0
	for _, d := range dgs {
		if netflow.CarriesTemplates(d) {
			withTemplates++
		}
	}
	if withTemplates != 2 {
		t.Fatalf("%d of 7 datagrams carry templates, want 2 (RefreshEvery 4)", withTemplates)
	}
	send(t, conn, dgs...)
	waitFor(t, "the datagrams", func() bool { return sum(t, c.m.datagrams)+value(c.m.drops, dropQueueFull) >= 7 })
	// 5 datagrams without templates were shed; the batch of the two
	// decoded ones is refused too once the flush interval passes.
	if got := value(c.m.drops, dropQueueFull); got != 5 && got != 7 {
		t.Errorf("queue_full drops = %v, want 5 (the datagrams without templates), 7 after the refused batch", got)
	}
	if got := sum(t, c.m.datagrams); got != 2 {
		t.Errorf("datagrams decoded = %v, want 2 (those with templates)", got)
	}
	if got := sum(t, c.m.templatesLearned); got == 0 {
		t.Error("no template learned while shedding")
	}
	sink.mu.Lock()
	sink.full = false
	sink.mu.Unlock()
	data := g.Append(nil, time.Now().UnixNano())
	if netflow.CarriesTemplates(data) {
		t.Fatal("the eighth datagram carries templates")
	}
	send(t, conn, data)
	waitFor(t, "its records", func() bool { recs, _ := sink.got(); return len(recs) > 0 })
	if got := sum(t, c.m.templateMisses); got != 0 {
		t.Errorf("template misses = %v after shedding, want 0", got)
	}
}
