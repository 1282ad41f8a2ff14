package gen_test

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/flowsentry/flowsentry/flow"
	"github.com/flowsentry/flowsentry/gen"
)

func TestNewRejects(t *testing.T) {
	tests := []struct {
		name string
		cfg  gen.Config
		want string
	}{
		{"no protocol", gen.Config{}, "protocol 0 unknown"},
		{"v5 too many records", gen.Config{Protocol: gen.NetFlowV5, Records: 31}, "exceed NetFlow v5's limit of 30"},
		{"v5 ipv6", gen.Config{Protocol: gen.NetFlowV5, SrcPrefix: netip.MustParsePrefix("2001:db8::/64"), DstPrefix: netip.MustParsePrefix("2001:db8:1::/64")}, "NetFlow v5 carries only IPv4"},
		{"mixed families", gen.Config{Protocol: gen.IPFIX, SrcPrefix: netip.MustParsePrefix("2001:db8::/64")}, "different families"},
		{"too many sources", gen.Config{Protocol: gen.NetFlowV9, SrcPrefix: netip.MustParsePrefix("10.1.2.0/24"), SrcAddrs: 255}, "255 source addresses do not fit in 10.1.2.0/24, which holds 254"},
		{"negative destinations", gen.Config{Protocol: gen.NetFlowV9, DstAddrs: -1}, "use at least 1"},
		{"no ports", gen.Config{Protocol: gen.SFlow, Ports: []uint16{}}, "ports are empty"},
		{"no protocols", gen.Config{Protocol: gen.SFlow, Protocols: []uint8{}}, "protocols are empty"},
		{"too many interfaces", gen.Config{Protocol: gen.SFlow, Interfaces: 70000}, "interfaces 70000 out of range"},
		{"v5 rate", gen.Config{Protocol: gen.NetFlowV5, SamplingRate: 20000}, "14-bit limit"},
		{"datagram too big", gen.Config{Protocol: gen.IPFIX, Records: 2000}, "more than the 65507 a UDP datagram holds"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := gen.New(tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New() error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestParseProtocol(t *testing.T) {
	for _, p := range []gen.Protocol{gen.NetFlowV5, gen.NetFlowV9, gen.IPFIX, gen.SFlow} {
		got, err := gen.ParseProtocol(p.String())
		if err != nil || got != p {
			t.Errorf("ParseProtocol(%q) = %v, %v; want %v", p.String(), got, err, p)
		}
	}
	if _, err := gen.ParseProtocol("v7"); err == nil || !strings.Contains(err.Error(), "use v5, v9, ipfix or sflow") {
		t.Errorf("ParseProtocol(v7) error = %v, want the list of valid names", err)
	}
}

// TestDeterministic checks that the seed alone decides the datagrams.
func TestDeterministic(t *testing.T) {
	datagrams := func(seed uint64) [][]byte {
		g, err := gen.New(gen.Config{Protocol: gen.NetFlowV9, Seed: seed})
		if err != nil {
			t.Fatal(err)
		}
		var out [][]byte
		for i := range 5 {
			out = append(out, g.Append(nil, 1_764_000_000e9+int64(i)*1e9))
		}
		return out
	}
	if diff := cmp.Diff(datagrams(1), datagrams(1)); diff != "" {
		t.Errorf("same seed, different datagrams (-first +second):\n%s", diff)
	}
	if bytes.Equal(bytes.Join(datagrams(1), nil), bytes.Join(datagrams(2), nil)) {
		t.Error("seeds 1 and 2 give the same datagrams")
	}
}

// TestCardinality checks that addresses, ports, protocols and interfaces
// stay within what the configuration allows and reach its cardinality.
func TestCardinality(t *testing.T) {
	tests := []struct {
		name string
		cfg  gen.Config
	}{
		{"ipv4", gen.Config{Protocol: gen.IPFIX, SrcPrefix: netip.MustParsePrefix("192.0.2.0/24"), SrcAddrs: 7, DstAddrs: 50, Ports: []uint16{25, 587}, Interfaces: 3}},
		{"ipv6", gen.Config{Protocol: gen.SFlow, SrcPrefix: netip.MustParsePrefix("2001:db8::/120"), DstPrefix: netip.MustParsePrefix("2001:db8:ffff:ffff:ffff:ffff::/64"), SrcAddrs: 254, DstAddrs: 3, Protocols: []uint8{flow.ProtoUDP}}},
		{"single address", gen.Config{Protocol: gen.NetFlowV5, SrcPrefix: netip.MustParsePrefix("198.51.100.7/32"), SrcAddrs: 1, DstAddrs: 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, err := gen.New(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			c := g.Config()
			srcs := map[netip.Addr]bool{}
			dsts := map[netip.Addr]bool{}
			var buf []byte
			for i := range 400 {
				buf = g.Append(buf[:0], 1_764_000_000e9+int64(i)*1e6)
				for _, r := range g.Records() {
					srcs[r.Src] = true
					dsts[r.Dst] = true
					if !c.SrcPrefix.Contains(r.Src) || !c.DstPrefix.Contains(r.Dst) {
						t.Fatalf("record %v -> %v outside %v -> %v", r.Src, r.Dst, c.SrcPrefix, c.DstPrefix)
					}
					if r.Src == c.SrcPrefix.Addr() && c.SrcPrefix.Bits() < c.SrcPrefix.Addr().BitLen()-1 {
						t.Fatalf("record uses the network address %v", r.Src)
					}
					if !contains(c.Protocols, r.Proto) {
						t.Fatalf("protocol %d not among %v", r.Proto, c.Protocols)
					}
					if (r.Proto == flow.ProtoTCP || r.Proto == flow.ProtoUDP) && (!contains(c.Ports, r.DstPort) || r.SrcPort < 32768 || r.SrcPort > 60999) {
						t.Fatalf("ports %d -> %d outside 32768-60999 -> %v", r.SrcPort, r.DstPort, c.Ports)
					}
					if r.InIf < 1 || r.InIf > uint32(c.Interfaces) || r.OutIf < 1 || r.OutIf > uint32(c.Interfaces) {
						t.Fatalf("interfaces %d, %d outside 1-%d", r.InIf, r.OutIf, c.Interfaces)
					}
				}
			}
			if len(srcs) != c.SrcAddrs || len(dsts) != c.DstAddrs {
				t.Errorf("distinct sources, destinations = %d, %d; want %d, %d", len(srcs), len(dsts), c.SrcAddrs, c.DstAddrs)
			}
		})
	}
}

func contains[T comparable](s []T, v T) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// TestAppendAllocates checks that encoding into a buffer with room
// allocates nothing.
func TestAppendAllocates(t *testing.T) {
	for _, p := range []gen.Protocol{gen.NetFlowV5, gen.NetFlowV9, gen.IPFIX, gen.SFlow} {
		t.Run(p.String(), func(t *testing.T) {
			g, err := gen.New(gen.Config{Protocol: p, RefreshEvery: 3, SamplingRate: 10})
			if err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 0, 65536)
			now := int64(1_764_000_000e9)
			if n := testing.AllocsPerRun(100, func() {
				now += 1e6
				buf = g.Append(buf[:0], now)
			}); n != 0 {
				t.Errorf("Append allocates %v times per datagram, want 0", n)
			}
		})
	}
}

// BenchmarkAppend measures encoding one datagram of 30 records (sFlow: 10
// samples).
//
//	go test ./gen -run '^$' -bench Append -benchmem -count=6 -cpu 1,2 | tee new.txt; benchstat old.txt new.txt
func BenchmarkAppend(b *testing.B) {
	for _, p := range []gen.Protocol{gen.NetFlowV5, gen.NetFlowV9, gen.IPFIX, gen.SFlow} {
		b.Run(p.String(), func(b *testing.B) {
			g, err := gen.New(gen.Config{Protocol: p})
			if err != nil {
				b.Fatal(err)
			}
			buf := make([]byte, 0, 65536)
			now := int64(1_764_000_000e9)
			for b.Loop() {
				now += 1e6
				buf = g.Append(buf[:0], now)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*g.Config().Records), "ns/record")
		})
	}
}
