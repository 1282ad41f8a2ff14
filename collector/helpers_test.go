package collector

import (
	"bytes"
	"net"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/flowsentry/flowsentry/flow"
	"github.com/flowsentry/flowsentry/gen"
)

// testSink keeps copies of the batches it takes, or refuses them all when
// full is set.
type testSink struct {
	mu       sync.Mutex
	full     bool
	batches  int
	records  []flow.Record
	counters []flow.IfCounters
}

func (s *testSink) Submit(b *flow.Batch) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.full {
		return false
	}
	s.batches++
	s.records = append(s.records, b.Records...)
	s.counters = append(s.counters, b.Counters...)
	b.Release()
	return true
}

// got returns copies of what the sink took so far.
func (s *testSink) got() ([]flow.Record, []flow.IfCounters) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]flow.Record(nil), s.records...), append([]flow.IfCounters(nil), s.counters...)
}

// testConfig is one listener of protocol on address with two workers and
// a short flush interval.
func testConfig(protocol, address string) Config {
	cfg := DefaultConfig()
	cfg.Listeners = []ListenerConfig{{Address: address, Protocol: protocol}}
	cfg.Workers = 2
	cfg.ReceiveBuffer = 4 << 20
	cfg.FlushInterval = 10 * time.Millisecond
	return cfg
}

// start builds and starts a collector; it is stopped when the test ends.
func start(t testing.TB, cfg Config, sink Sink) *Collector {
	t.Helper()
	c, err := New(cfg, sink, prometheus.NewRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	return c
}

// dial returns a UDP socket from local (an address, port 0) to the
// collector's i-th listener.
func dial(t testing.TB, c *Collector, i int, local string) *net.UDPConn {
	t.Helper()
	to := c.Addrs()[i].(*net.UDPAddr)
	conn, err := net.DialUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(local), 0)), to)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// send writes each payload as one datagram.
func send(t testing.TB, conn *net.UDPConn, payloads ...[]byte) {
	t.Helper()
	for _, p := range payloads {
		if _, err := conn.Write(p); err != nil {
			t.Fatalf("send %d bytes: %v", len(p), err)
		}
	}
}

// waitFor polls cond until it holds, failing the test after 10 s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// value reads one series of a counter vector.
func value(v *prometheus.CounterVec, labels ...string) float64 {
	return testutil.ToFloat64(v.WithLabelValues(labels...))
}

// generator returns a generator of cfg.
func generator(t testing.TB, cfg gen.Config) *gen.Generator {
	t.Helper()
	g, err := gen.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// udpPayloads returns the UDP payloads of a pcap file, in order.
func udpPayloads(t testing.TB, path string) [][]byte {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var src interface {
		gopacket.PacketDataSource
		LinkType() layers.LinkType
	}
	if r, err := pcapgo.NewReader(bytes.NewReader(raw)); err == nil {
		src = r
	} else if r, err := pcapgo.NewNgReader(bytes.NewReader(raw), pcapgo.DefaultNgReaderOptions); err == nil {
		src = r
	} else {
		t.Fatalf("%s is neither pcap nor pcapng: %v", path, err)
	}
	var out [][]byte
	for {
		data, _, err := src.ReadPacketData()
		if err != nil {
			break
		}
		p := gopacket.NewPacket(data, src.LinkType(), gopacket.Default)
		if udp, ok := p.Layer(layers.LayerTypeUDP).(*layers.UDP); ok {
			out = append(out, udp.Payload)
		}
	}
	if len(out) == 0 {
		t.Fatalf("%s holds no UDP datagram", path)
	}
	return out
}
