package samples

import (
	"bytes"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/flowsentry/flowsentry/collector/sflow"
	"github.com/flowsentry/flowsentry/flow"
	"github.com/flowsentry/flowsentry/internal/testcaptures"
)

// The store is the sFlow decoder's sink.
var _ sflow.SampleSink = (*Store)(nil)

// t0 is the time of the tests' first Watch.
var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

var (
	victim  = netip.MustParseAddr("10.10.10.10")
	other   = netip.MustParseAddr("10.10.10.11")
	v6      = netip.MustParseAddr("fd00::10")
	remote  = netip.MustParseAddr("198.51.100.7")
	remote6 = netip.MustParseAddr("2001:db8::7")
)

// newStore returns a store of cfg (DefaultConfig when zero) and its
// registry.
func newStore(t *testing.T, cfg Config) (*Store, *prometheus.Registry) {
	t.Helper()
	if cfg == (Config{}) {
		cfg = DefaultConfig()
	}
	reg := prometheus.NewRegistry()
	s, err := New(cfg, reg)
	if err != nil {
		t.Fatal(err)
	}
	return s, reg
}

// synHeader returns a TCP SYN from src to dst as the header of the given
// sFlow header protocol, with a VLAN tag when vlan is not 0 (Ethernet
// only).
func synHeader(t testing.TB, proto uint32, src, dst netip.Addr, vlan uint16) []byte {
	t.Helper()
	tcp := &layers.TCP{SrcPort: 40000, DstPort: 25565, SYN: true, Seq: 1, Window: 1024}
	var ls []gopacket.SerializableLayer
	ethType := layers.EthernetTypeIPv4
	var ip gopacket.NetworkLayer
	if dst.Is4() {
		ip4 := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: src.AsSlice(), DstIP: dst.AsSlice()}
		ip, ls = ip4, append(ls, ip4)
	} else {
		ethType = layers.EthernetTypeIPv6
		ip6 := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolTCP, SrcIP: src.AsSlice(), DstIP: dst.AsSlice()}
		ip, ls = ip6, append(ls, ip6)
	}
	if err := tcp.SetNetworkLayerForChecksum(ip); err != nil {
		t.Fatal(err)
	}
	ls = append(ls, tcp)
	if proto == ProtoEthernet {
		eth := &layers.Ethernet{SrcMAC: []byte{2, 0, 0, 0, 0, 1}, DstMAC: []byte{2, 0, 0, 0, 0, 2}, EthernetType: ethType}
		if vlan != 0 {
			eth.EthernetType = layers.EthernetTypeDot1Q
			ls = append([]gopacket.SerializableLayer{eth, &layers.Dot1Q{VLANIdentifier: vlan, Type: ethType}}, ls...)
		} else {
			ls = append([]gopacket.SerializableLayer{eth}, ls...)
		}
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// gauge returns the value of a gauge without labels.
func gauge(reg *prometheus.Registry, name string) float64 {
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return -1
}

// dropped returns the value of dropped_total{reason}.
func dropped(reg *prometheus.Registry, reason string) float64 {
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() != "flowsentry_samples_dropped_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.GetLabel()[0].GetValue() == reason {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// TestWatchOffer checks what is kept, for whom and for how long.
func TestWatchOffer(t *testing.T) {
	hdr := synHeader(t, ProtoEthernet, remote, victim, 0)
	at := func(d time.Duration) int64 { return t0.Add(d).UnixNano() }
	type offer struct {
		dst  netip.Addr
		at   time.Duration
		n    int // times
		hdr  []byte
		prot uint32
	}
	type watch struct {
		target netip.Addr
		at     time.Duration
	}
	// step is a Watch or n Offers; steps run in order.
	type step struct {
		watch *watch
		offer *offer
	}
	w := func(a netip.Addr, d time.Duration) step { return step{watch: &watch{a, d}} }
	o := func(a netip.Addr, d time.Duration, n int) step { return step{offer: &offer{dst: a, at: d, n: n}} }
	tests := []struct {
		name  string
		cfg   Config
		steps []step
		want  map[netip.Addr]int
		drops map[string]float64
	}{
		{name: "nothing watched keeps nothing", steps: []step{o(victim, 0, 5)}, want: map[netip.Addr]int{victim: 0}},
		{name: "watched target keeps, others do not",
			steps: []step{w(victim, 0), o(victim, time.Second, 3), o(other, time.Second, 3)},
			want:  map[netip.Addr]int{victim: 3, other: 0}},
		{name: "offers before the watch are not kept",
			steps: []step{o(victim, 0, 3), w(victim, time.Second), o(victim, 2*time.Second, 2)},
			want:  map[netip.Addr]int{victim: 2}},
		{name: "first PerTarget kept, the rest counted",
			cfg:   Config{PerTarget: 20, MaxTargets: 10, MaxHeaderBytes: 128, TTL: time.Hour},
			steps: []step{w(victim, 0), o(victim, time.Second, 25)},
			want:  map[netip.Addr]int{victim: 20}, drops: map[string]float64{dropBufferFull: 5}},
		{name: "watch expires TTL after the last Watch",
			steps: []step{w(victim, 0), w(victim, 30*time.Minute), o(victim, 89*time.Minute, 1), o(victim, 91*time.Minute, 1)},
			want:  map[netip.Addr]int{victim: 1}},
		{name: "a Watch after expiry starts afresh",
			steps: []step{w(victim, 0), o(victim, time.Second, 4), w(victim, 2*time.Hour), o(victim, 2*time.Hour+time.Second, 1)},
			want:  map[netip.Addr]int{victim: 1}},
		{name: "too many targets: the new one is dropped until one expires",
			cfg: Config{PerTarget: 20, MaxTargets: 1, MaxHeaderBytes: 128, TTL: time.Hour},
			steps: []step{w(victim, 0), w(other, time.Minute), o(other, 2*time.Minute, 1),
				w(other, 2*time.Hour), o(other, 2*time.Hour+time.Second, 2)},
			want: map[netip.Addr]int{victim: 0, other: 2}, drops: map[string]float64{dropTooManyTargets: 1}},
		{name: "IPv4-mapped target is its IPv4 address",
			steps: []step{w(netip.AddrFrom16(victim.As16()), 0), o(victim, time.Second, 1)},
			want:  map[netip.Addr]int{victim: 1, netip.AddrFrom16(victim.As16()): 1}},
		{name: "IPv6 target",
			steps: []step{w(v6, 0), {offer: &offer{dst: v6, at: time.Second, n: 2, hdr: synHeader(t, ProtoIPv6, remote6, v6, 0), prot: ProtoIPv6}}},
			want:  map[netip.Addr]int{v6: 2}},
		{name: "unknown header protocol is not kept",
			steps: []step{w(victim, 0), {offer: &offer{dst: victim, at: time.Second, n: 2, hdr: hdr, prot: 7}}},
			want:  map[netip.Addr]int{victim: 0}},
		{name: "invalid target is ignored",
			steps: []step{w(netip.Addr{}, 0), o(victim, time.Second, 1)},
			want:  map[netip.Addr]int{victim: 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, reg := newStore(t, tt.cfg)
			for _, st := range tt.steps {
				if st.watch != nil {
					s.Watch(st.watch.target, t0.Add(st.watch.at))
					continue
				}
				h, p := st.offer.hdr, st.offer.prot
				if h == nil {
					h, p = hdr, ProtoEthernet
				}
				for range st.offer.n {
					s.Offer(st.offer.dst, p, uint32(len(h)+4), 4, h, at(st.offer.at))
				}
			}
			for a, n := range tt.want {
				if got := s.Count(a); got != n {
					t.Errorf("Count(%s) = %d, want %d", a, got, n)
				}
			}
			for _, reason := range []string{dropBufferFull, dropTooManyTargets} {
				if got := dropped(reg, reason); got != tt.drops[reason] {
					t.Errorf("dropped_total{reason=%q} = %v, want %v", reason, got, tt.drops[reason])
				}
			}
		})
	}
}

// TestOfferCopies checks that the store keeps a copy of the header, cut
// to MaxHeaderBytes.
func TestOfferCopies(t *testing.T) {
	s, _ := newStore(t, Config{PerTarget: 20, MaxTargets: 1, MaxHeaderBytes: 64, TTL: time.Hour})
	s.Watch(victim, t0)
	hdr := synHeader(t, ProtoEthernet, remote, victim, 0)
	long := append(append([]byte(nil), hdr...), make([]byte, 100)...) // 154 bytes
	s.Offer(victim, ProtoEthernet, 1518, 4, long, t0.UnixNano())
	want := append([]byte(nil), long[:64]...)
	for i := range long {
		long[i] = 0xff // the datagram buffer is reused
	}
	p := s.packets(victim)
	if len(p) != 1 || !bytes.Equal(p[0].data, want) || p[0].wire != 1514 {
		t.Fatalf("kept %+v, want the first 64 bytes of the header and wire length 1514", p)
	}
}

// TestOfferAllocs checks that Offer allocates nothing for an address not
// watched, nor for a watched one whose buffer is full.
func TestOfferAllocs(t *testing.T) {
	hdr := synHeader(t, ProtoEthernet, remote, victim, 0)
	now := t0.UnixNano()
	var nilStore *Store
	empty, _ := newStore(t, Config{})
	busy, _ := newStore(t, Config{})
	for i := range 500 {
		busy.Watch(netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}), t0)
	}
	full, _ := newStore(t, Config{PerTarget: 20, MaxTargets: 1, MaxHeaderBytes: 128, TTL: time.Hour})
	full.Watch(victim, t0)
	for range 20 {
		full.Offer(victim, ProtoEthernet, 64, 4, hdr, now)
	}
	for _, tc := range []struct {
		name string
		s    *Store
	}{{"nil store", nilStore}, {"nothing watched", empty}, {"others watched", busy}, {"buffer full", full}} {
		t.Run(tc.name, func(t *testing.T) {
			if a := testing.AllocsPerRun(1000, func() { tc.s.Offer(victim, ProtoEthernet, 64, 4, hdr, now) }); a != 0 {
				t.Errorf("%v allocations per Offer, want 0", a)
			}
		})
	}
}

// readPCAP reads a pcap written by WritePCAP and decodes its packets.
func readPCAP(t *testing.T, b []byte) ([]gopacket.Packet, []gopacket.CaptureInfo) {
	t.Helper()
	r, err := pcapgo.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if r.LinkType() != layers.LinkTypeEthernet {
		t.Fatalf("link type %v, want Ethernet", r.LinkType())
	}
	var pkts []gopacket.Packet
	var cis []gopacket.CaptureInfo
	for {
		data, ci, err := r.ReadPacketData()
		if err != nil {
			break
		}
		pkts = append(pkts, gopacket.NewPacket(data, layers.LinkTypeEthernet, gopacket.Default))
		cis = append(cis, ci)
	}
	return pkts, cis
}

// dstOf returns the destination IP address of a decoded packet.
func dstOf(p gopacket.Packet) netip.Addr {
	if nl := p.NetworkLayer(); nl != nil {
		a, _ := netip.AddrFromSlice(nl.NetworkFlow().Dst().Raw())
		return a
	}
	return netip.Addr{}
}

// TestWritePCAP writes Ethernet (with and without a VLAN tag), raw IPv4
// and raw IPv6 headers and reads them back with pcapgo and gopacket.
func TestWritePCAP(t *testing.T) {
	s, _ := newStore(t, Config{})
	s.Watch(victim, t0)
	s.Watch(v6, t0)
	offers := []struct {
		proto uint32
		dst   netip.Addr
		vlan  uint16
	}{{ProtoEthernet, victim, 0}, {ProtoEthernet, victim, 42}, {ProtoIPv4, victim, 0}, {ProtoIPv6, v6, 0}}
	for i, o := range offers {
		src := remote
		if o.dst.Is6() {
			src = remote6
		}
		h := synHeader(t, o.proto, src, o.dst, o.vlan)
		// A 1500-byte frame, of which the agent stripped the 4-byte FCS.
		s.Offer(o.dst, o.proto, 1504, 4, h, t0.Add(time.Duration(i)*time.Millisecond).UnixNano())
	}
	tests := []struct {
		target   netip.Addr
		n        int
		vlans    []uint16
		lengths  []int // original lengths
		captured []int
	}{
		{victim, 3, []uint16{0, 42, 0}, []int{1500, 1500, 1514}, []int{60, 60, 54}}, // gopacket pads Ethernet frames to 60 bytes,
		{v6, 1, []uint16{0}, []int{1514}, []int{74}},
		{other, 0, nil, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.target.String(), func(t *testing.T) {
			var buf bytes.Buffer
			n, err := s.WritePCAP(&buf, tt.target)
			if err != nil || n != tt.n {
				t.Fatalf("WritePCAP = %d, %v; want %d, nil", n, err, tt.n)
			}
			pkts, cis := readPCAP(t, buf.Bytes())
			if len(pkts) != tt.n {
				t.Fatalf("read %d packets, want %d", len(pkts), tt.n)
			}
			for i, p := range pkts {
				if got := dstOf(p); got != tt.target {
					t.Errorf("packet %d: destination %s, want %s", i, got, tt.target)
				}
				tcp, _ := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
				if tcp == nil || !tcp.SYN || tcp.DstPort != 25565 {
					t.Errorf("packet %d: not the SYN to port 25565: %v", i, p)
				}
				var vlan uint16
				if q, ok := p.Layer(layers.LayerTypeDot1Q).(*layers.Dot1Q); ok {
					vlan = q.VLANIdentifier
				}
				if vlan != tt.vlans[i] {
					t.Errorf("packet %d: VLAN %d, want %d", i, vlan, tt.vlans[i])
				}
				if cis[i].Length != tt.lengths[i] || cis[i].CaptureLength != tt.captured[i] {
					t.Errorf("packet %d: lengths %d/%d, want %d/%d", i, cis[i].CaptureLength, cis[i].Length, tt.captured[i], tt.lengths[i])
				}
				if want := t0.Add(time.Duration(i) * time.Millisecond); tt.target == victim && !cis[i].Timestamp.Equal(want) {
					t.Errorf("packet %d: time %s, want %s", i, cis[i].Timestamp, want)
				}
			}
		})
	}
}

// decodeCapture runs the sFlow decoder, with s as its sink, over the
// datagrams of a capture of sFlow exports, and returns the records.
func decodeCapture(t *testing.T, s *Store, name string, now int64) []flow.Record {
	t.Helper()
	frames, _ := testcaptures.Frames(t, name)
	d := &sflow.Decoder{Samples: s}
	var recs []flow.Record
	for _, f := range frames {
		_, _, p, ok := flow.UDPPayload(f, flow.LinkEthernet)
		if !ok {
			continue
		}
		b := &flow.Batch{}
		if _, err := d.Decode(now, p, b); err != nil {
			t.Fatalf("decode: %v", err)
		}
		recs = append(recs, b.Records...)
	}
	return recs
}

// TestSFlowCaptures feeds real sFlow exports through the decoder into the
// store and checks the pcap holds the packets sent to the watched address.
func TestSFlowCaptures(t *testing.T) {
	now := t0.Add(time.Second).UnixNano()
	t.Run("pmacct SYN flood sampled 1/10", func(t *testing.T) {
		s, reg := newStore(t, Config{})
		s.Watch(victim, t0)
		recs := decodeCapture(t, s, "flow-exports/derived/pmacct-sflow-s10-synflood.pcap", now)
		toVictim := 0
		for _, r := range recs {
			if r.Dst == victim {
				toVictim++
			}
		}
		if toVictim < 100 {
			t.Fatalf("only %d records to %s", toVictim, victim)
		}
		var buf bytes.Buffer
		n, err := s.WritePCAP(&buf, victim)
		if err != nil || n != 100 {
			t.Fatalf("WritePCAP = %d, %v; want the first 100", n, err)
		}
		if got := dropped(reg, dropBufferFull); got != float64(toVictim-100) {
			t.Errorf("buffer_full drops %v, want %d", got, toVictim-100)
		}
		pkts, cis := readPCAP(t, buf.Bytes())
		for i, p := range pkts {
			tcp, _ := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
			if dstOf(p) != victim || tcp == nil || !tcp.SYN || tcp.ACK || tcp.DstPort != 25565 {
				t.Fatalf("packet %d is not a SYN to %s:25565: %v", i, victim, p)
			}
			// 60-byte frames on the wire (40-byte IP packets, padded).
			if cis[i].Length < 54 || cis[i].Length > 64 {
				t.Errorf("packet %d: original length %d", i, cis[i].Length)
			}
		}
		tcpdump := tsharkDsts(t, buf.Bytes())
		for i, dst := range tcpdump {
			if dst != victim.String()+"\t1" {
				t.Fatalf("tshark packet %d: %q, want %q", i, dst, victim.String()+"\t1")
			}
		}
		if len(tcpdump) != 100 {
			t.Errorf("tshark read %d packets, want 100", len(tcpdump))
		}
	})
	t.Run("akvorado 1140", func(t *testing.T) {
		s, _ := newStore(t, Config{})
		// Decode once unwatched: nothing is kept, and the records tell
		// which address to watch.
		recs := decodeCapture(t, s, "flow-exports/akvorado/sflow-data-1140.pcap", now)
		if len(recs) == 0 {
			t.Fatal("no records")
		}
		target := recs[0].Dst
		want := 0
		for _, r := range recs {
			if r.Dst == target {
				want++
			}
		}
		if s.Count(target) != 0 {
			t.Fatalf("%d headers kept for %s while unwatched", s.Count(target), target)
		}
		s.Watch(target, t0)
		decodeCapture(t, s, "flow-exports/akvorado/sflow-data-1140.pcap", now)
		var buf bytes.Buffer
		if n, err := s.WritePCAP(&buf, target); err != nil || n != want {
			t.Fatalf("WritePCAP = %d, %v; want %d, nil", n, err, want)
		}
		pkts, _ := readPCAP(t, buf.Bytes())
		for i, p := range pkts {
			if dstOf(p) != target {
				t.Errorf("packet %d: destination %s, want %s", i, dstOf(p), target)
			}
		}
	})
}

// tsharkDsts returns the "ip.dst<TAB>tcp.flags.syn" lines tshark prints
// for a pcap; the test fails without tshark (scripts/test.sh installs it).
func tsharkDsts(t *testing.T, pcap []byte) []string {
	t.Helper()
	path, err := exec.LookPath("tshark")
	if err != nil {
		t.Fatal("tshark is not installed: run scripts/test.sh, which installs it (apt-get install tshark)")
	}
	file := filepath.Join(t.TempDir(), "alert.pcap")
	if err := os.WriteFile(file, pcap, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(path, "-r", file, "-T", "fields", "-e", "ip.dst", "-e", "tcp.flags.syn").Output()
	if err != nil {
		t.Fatalf("tshark -r %s: %v", file, err)
	}
	return strings.Split(strings.TrimSpace(string(out)), "\n")
}

// TestConcurrent runs Offer, Watch and WritePCAP from several goroutines
// (run with -race).
func TestConcurrent(t *testing.T) {
	s, reg := newStore(t, Config{PerTarget: 50, MaxTargets: 8, MaxHeaderBytes: 128, TTL: time.Minute})
	hdr := synHeader(t, ProtoEthernet, remote, victim, 0)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 2000 {
				at := t0.Add(time.Duration(i) * time.Second)
				switch g {
				case 0:
					s.Watch(netip.AddrFrom4([4]byte{10, 10, 10, byte(i % 16)}), at)
				case 1:
					var buf bytes.Buffer
					if _, err := s.WritePCAP(&buf, victim); err != nil {
						t.Error(err)
						return
					}
				default:
					s.Offer(victim, ProtoEthernet, 64, 4, hdr, at.UnixNano())
				}
			}
		})
	}
	wg.Wait()
	if n := s.Targets(); n > 8 {
		t.Errorf("%d targets held, want at most 8", n)
	}
	if got := gauge(reg, "flowsentry_samples_targets"); got != float64(s.Targets()) {
		t.Errorf("targets gauge %v, want %d", got, s.Targets())
	}
}

// TestConfigValidate checks the limits of the settings.
func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"default", func(*Config) {}, ""},
		{"FastNetMon's 20", func(c *Config) { c.PerTarget = 20 }, ""},
		{"fewer than FastNetMon", func(c *Config) { c.PerTarget = 19 }, "samples.per_target: 19 is out of range"},
		{"no targets", func(c *Config) { c.MaxTargets = 0 }, "samples.max_targets: 0 is out of range"},
		{"tiny headers", func(c *Config) { c.MaxHeaderBytes = 20 }, "samples.max_header_bytes: 20 is out of range"},
		{"short TTL", func(c *Config) { c.TTL = time.Second }, "samples.ttl: 1s is too short"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tc.edit(&cfg)
			_, err := New(cfg, nil)
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("New: %v, want %q", err, tc.want)
			}
		})
	}
}

// BenchmarkOffer measures Offer on the collector's hot path.
func BenchmarkOffer(b *testing.B) {
	hdr := synHeader(b, ProtoEthernet, remote, victim, 0)
	now := t0.UnixNano()
	for _, tc := range []struct {
		name    string
		watched int
	}{{"nothing watched", 0}, {"1000 others watched", 1000}, {"victim watched, full", -1}} {
		b.Run(tc.name, func(b *testing.B) {
			s, err := New(DefaultConfig(), nil)
			if err != nil {
				b.Fatal(err)
			}
			for i := range tc.watched {
				s.Watch(netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}), t0)
			}
			if tc.watched < 0 {
				s.Watch(victim, t0)
				for range s.cfg.PerTarget {
					s.Offer(victim, ProtoEthernet, 64, 4, hdr, now)
				}
			}
			b.ReportAllocs()
			for b.Loop() {
				s.Offer(victim, ProtoEthernet, 64, 4, hdr, now)
			}
		})
	}
}
