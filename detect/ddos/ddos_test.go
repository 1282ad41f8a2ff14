package ddos

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/flowsentry/flowsentry/flow"
	"github.com/flowsentry/flowsentry/policy"
)

func tcp(flags uint8, dport uint16) func(int) flow.Record {
	return func(i int) flow.Record {
		return flow.Record{Src: spoofed(i), Dst: victim, Proto: flow.ProtoTCP, SrcPort: uint16(1024 + i%60000), DstPort: dport, TCPFlags: flags}
	}
}

func udp(sport, dport uint16) func(int) flow.Record {
	return func(i int) flow.Record {
		return flow.Record{Src: spoofed(i), Dst: victim, Proto: flow.ProtoUDP, SrcPort: sport, DstPort: dport}
	}
}

const (
	syn = flow.TCPSyn
	ack = flow.TCPAck
	rst = flow.TCPRst
	fin = flow.TCPFin
	psh = flow.TCPPsh
	urg = flow.TCPUrg
)

var kinds = map[string]func(int) flow.Record{
	"syn":     tcp(syn, 80),
	"syn-ecn": tcp(syn|flow.TCPEce|flow.TCPCwr, 30120),
	"rst":     tcp(rst|ack, 80),
	"xmas":    tcp(fin|psh|urg, 80),
	"tcpnull": tcp(0, 80),
	"tcpzero": tcp(syn, 0),
	"ipnull": func(i int) flow.Record {
		return flow.Record{Src: spoofed(i), Dst: victim}
	},
	"frag": func(i int) flow.Record {
		return flow.Record{Src: spoofed(i), Dst: victim, Proto: flow.ProtoUDP, Fragment: true}
	},
	"poison": tcp(syn|fin, 80),
	"land": func(i int) flow.Record {
		return flow.Record{Src: victim, Dst: victim, Proto: flow.ProtoTCP, SrcPort: 139, DstPort: 139, TCPFlags: syn}
	},
	"spectrum": spread,
	"udp":      udp(40000, 80),
	"ackpsh":   tcp(ack|psh, 443),
	"dns-amp":  udp(53, 33000),
	"ntp-amp":  udp(123, 33000),
	"syn6": func(i int) flow.Record {
		return flow.Record{Src: spoofed6(i), Dst: netip.MustParseAddr("fc00::10"), Proto: flow.ProtoTCP, SrcPort: uint16(1024 + i), DstPort: 443, TCPFlags: syn}
	},
	"download": func(i int) flow.Record {
		// 4 long sessions of one server, reported per packet (sFlow).
		return flow.Record{Src: netip.MustParseAddr("203.0.113.5"), Dst: victim, Proto: flow.ProtoTCP, SrcPort: 443, DstPort: uint16(50000 + i%4), TCPFlags: ack | psh}
	},
	"copy": func(i int) flow.Record {
		return flow.Record{Src: netip.MustParseAddr("10.1.0.7"), Dst: victim, Proto: flow.ProtoTCP, SrcPort: 445, DstPort: 50001, TCPFlags: ack}
	},
	"dns-client": udp(53, 33000),
	// An HTTP/3 download from one server: two of three records are the
	// data, the third the client's ACK frames back to it.
	"quic": twoWay(netip.MustParseAddr("142.250.74.110"), 443, 50123),
	// An IPsec tunnel over NAT-T, ESP in UDP 4500 both ways.
	"nat-t":         twoWay(netip.MustParseAddr("81.2.69.160"), 4500, 4500),
	"nat-t one-way": single(netip.MustParseAddr("81.2.69.160"), 4500, 4500),
	// The client answers once per 1000 data records, after the first
	// 1000: the reply comes after the data it answers.
	"quic sparse acks": func(i int) flow.Record {
		r := twoWay(netip.MustParseAddr("142.250.74.110"), 443, 50123)(0)
		if i%1000 == 999 {
			r = twoWay(netip.MustParseAddr("142.250.74.110"), 443, 50123)(2)
		}
		return r
	},
	// The same UDP to 443 one-way from many spoofed sources.
	"udp443 spoofed": udp(50123, 443),
	// A service answering every spoofed packet: two-way, from many blocks.
	"udp443 spoofed answered": func(i int) flow.Record {
		r := udp(50123, 443)(i / 3)
		if i%3 == 2 {
			r.Src, r.Dst, r.SrcPort, r.DstPort = r.Dst, r.Src, r.DstPort, r.SrcPort
		}
		return r
	},
	// Reflection from 2000 NAT-T reflectors (ISAKMP amplification).
	"isakmp-amp": func(i int) flow.Record {
		r := udp(4500, 33000)(i % 2000)
		return r
	},
	// The same to random destination ports.
	"isakmp-amp spread": func(i int) flow.Record {
		r := udp(4500, 0)(i % 2000)
		r.DstPort = uint16(1 + (i*7919)%65000)
		return r
	},
	// RST backscatter and UDP to random ports (SYN-ACK reflection):
	// 2/5 RST, not a dominant kind, over many ports.
	"rst and spread": func(i int) flow.Record {
		if i%5 < 2 {
			return tcp(rst, 80)(i)
		}
		return spread(i)
	},
	// SYN and RST floods together: SYN dominant.
	"syn and rst": func(i int) flow.Record {
		if i%5 < 2 {
			return tcp(rst, 80)(i)
		}
		return tcp(syn, 80)(i)
	},
}

// spread is UDP to random destination ports.
func spread(i int) flow.Record {
	r := udp(40000, 0)(i)
	r.DstPort = uint16(1 + (i*7919)%65000)
	return r
}

// twoWay returns a UDP session between remote:rport and the victim's
// lport: two of three records inbound, the third the victim's answer.
func twoWay(remote netip.Addr, rport, lport uint16) func(int) flow.Record {
	return func(i int) flow.Record {
		if i%3 == 2 {
			return flow.Record{Src: victim, Dst: remote, Proto: flow.ProtoUDP, SrcPort: lport, DstPort: rport}
		}
		return single(remote, rport, lport)(i)
	}
}

// single returns one-way UDP from remote:rport to the victim's lport.
func single(remote netip.Addr, rport, lport uint16) func(int) flow.Record {
	return func(int) flow.Record {
		return flow.Record{Src: remote, Dst: victim, Proto: flow.ProtoUDP, SrcPort: rport, DstPort: lport}
	}
}

// every is a policy of each family of the package at 1000 packets/s.
func every() []policy.Policy {
	var out []policy.Policy
	for i, f := range families {
		out = append(out, pol(uint64(10+i), f, 1000))
	}
	return out
}

// TestFamilies sends each kind of traffic at twice a threshold of 1000
// packets/s (or just below it) for 3 s under given policies.
func TestFamilies(t *testing.T) {
	flood := pol(1, Flood, 1000)
	cases := []struct {
		name     string
		policies []policy.Policy
		traffic  string
		rate     int
		want     string // alert types, comma separated
	}{
		{"flood synflood", []policy.Policy{flood}, "syn", 2000, "ddos_synflood"},
		{"flood synflood ecn", []policy.Policy{flood}, "syn-ecn", 2000, "ddos_synflood"},
		{"flood rstflood", []policy.Policy{flood}, "rst", 2000, "ddos_rstflood"},
		{"flood xmas", []policy.Policy{flood}, "xmas", 2000, "ddos_xmas"},
		{"flood tcpnull", []policy.Policy{flood}, "tcpnull", 2000, "ddos_tcpnull"},
		{"flood tcpzero", []policy.Policy{flood}, "tcpzero", 2000, "ddos_tcpzero"},
		{"flood ipnull", []policy.Policy{flood}, "ipnull", 2000, "ddos_ipnull"},
		{"flood frag", []policy.Policy{flood}, "frag", 2000, "ddos_frag"},
		{"flood poison", []policy.Policy{flood}, "poison", 2000, "ddos_poison"},
		{"flood land", []policy.Policy{flood}, "land", 2000, "ddos_poison"},
		{"flood spectrum", []policy.Policy{flood}, "spectrum", 2000, "ddos_spectrum"},
		{"flood plain udp", []policy.Policy{flood}, "udp", 2000, "ddos_flood"},
		{"flood ack flood many sources", []policy.Policy{flood}, "ackpsh", 2000, "ddos_flood"},
		{"flood ipv6", []policy.Policy{flood}, "syn6", 2000, "ddos_synflood"},
		{"flood below threshold", []policy.Policy{flood}, "syn", 900, ""},
		{"flood large download", []policy.Policy{flood}, "download", 20000, ""},
		{"flood internal copy", []policy.Policy{flood}, "copy", 20000, ""},
		{"flood dns client", []policy.Policy{flood}, "dns-client", 200, ""},

		{"synflood", []policy.Policy{pol(2, SynFlood, 1000)}, "syn", 2000, "ddos_synflood"},
		{"synflood below", []policy.Policy{pol(2, SynFlood, 1000)}, "syn", 900, ""},
		{"synflood other kind", []policy.Policy{pol(2, SynFlood, 1000)}, "rst", 4000, ""},
		{"rstflood", []policy.Policy{pol(2, RstFlood, 1000)}, "rst", 2000, "ddos_rstflood"},
		{"rstflood below", []policy.Policy{pol(2, RstFlood, 1000)}, "rst", 900, ""},
		{"rstflood other kind", []policy.Policy{pol(2, RstFlood, 1000)}, "syn", 4000, ""},
		{"xmas", []policy.Policy{pol(2, Xmas, 1000)}, "xmas", 2000, "ddos_xmas"},
		{"xmas below", []policy.Policy{pol(2, Xmas, 1000)}, "xmas", 900, ""},
		{"xmas other kind", []policy.Policy{pol(2, Xmas, 1000)}, "ackpsh", 4000, ""},
		{"tcpnull", []policy.Policy{pol(2, TCPNull, 1000)}, "tcpnull", 2000, "ddos_tcpnull"},
		{"tcpnull below", []policy.Policy{pol(2, TCPNull, 1000)}, "tcpnull", 900, ""},
		{"tcpnull other kind", []policy.Policy{pol(2, TCPNull, 1000)}, "syn", 4000, ""},
		{"tcpzero", []policy.Policy{pol(2, TCPZero, 1000)}, "tcpzero", 2000, "ddos_tcpzero"},
		{"tcpzero below", []policy.Policy{pol(2, TCPZero, 1000)}, "tcpzero", 900, ""},
		{"tcpzero other kind", []policy.Policy{pol(2, TCPZero, 1000)}, "syn", 4000, ""},
		{"ipnull", []policy.Policy{pol(2, IPNull, 1000)}, "ipnull", 2000, "ddos_ipnull"},
		{"ipnull below", []policy.Policy{pol(2, IPNull, 1000)}, "ipnull", 900, ""},
		{"ipnull other kind", []policy.Policy{pol(2, IPNull, 1000)}, "udp", 4000, ""},
		{"frag", []policy.Policy{pol(2, Frag, 1000)}, "frag", 2000, "ddos_frag"},
		{"frag below", []policy.Policy{pol(2, Frag, 1000)}, "frag", 900, ""},
		{"frag other kind", []policy.Policy{pol(2, Frag, 1000)}, "udp", 4000, ""},
		{"poison", []policy.Policy{pol(2, Poison, 1000)}, "poison", 2000, "ddos_poison"},
		{"poison land", []policy.Policy{pol(2, Poison, 1000)}, "land", 2000, "ddos_poison"},
		{"poison below", []policy.Policy{pol(2, Poison, 1000)}, "poison", 900, ""},
		{"poison other kind", []policy.Policy{pol(2, Poison, 1000)}, "syn", 4000, ""},
		{"spectrum", []policy.Policy{pol(2, Spectrum, 1000)}, "spectrum", 2000, "ddos_spectrum"},
		{"spectrum below", []policy.Policy{pol(2, Spectrum, 1000)}, "spectrum", 900, ""},
		{"spectrum one port", []policy.Policy{pol(2, Spectrum, 1000)}, "udp", 4000, ""},

		{"amp any port", []policy.Policy{pol(3, Amp, 1000)}, "dns-amp", 2000, "ddos_amp"},
		{"amp dns", []policy.Policy{ampPol(3, 53, 1000)}, "dns-amp", 2000, "ddos_amp"},
		{"amp below", []policy.Policy{ampPol(3, 53, 1000)}, "dns-amp", 900, ""},
		{"amp other port", []policy.Policy{ampPol(3, 53, 1000)}, "ntp-amp", 4000, ""},
		{"amp not reflector", []policy.Policy{pol(3, Amp, 1000)}, "udp", 4000, ""},

		// One attack, one alert.
		{"subtype policy wins", []policy.Policy{flood, pol(2, SynFlood, 1000)}, "syn", 2000, "ddos_synflood"},
		{"amp wins over plain flood", []policy.Policy{flood, pol(3, Amp, 1000)}, "dns-amp", 2000, "ddos_amp"},
		{"every policy syn flood", every(), "syn", 2000, "ddos_synflood"},
		{"every policy rst and spread", every(), "rst and spread", 5000, "ddos_spectrum"},
		{"flood only rst and spread", []policy.Policy{flood}, "rst and spread", 5000, "ddos_spectrum"},
		{"every policy syn and rst", every(), "syn and rst", 5000, "ddos_synflood"},
		{"subtypes syn and rst", []policy.Policy{pol(2, SynFlood, 1000), pol(3, RstFlood, 1000)}, "syn and rst", 5000, "ddos_synflood"},
		{"subtypes rst and spread", []policy.Policy{pol(2, RstFlood, 1000), pol(3, Spectrum, 1000)}, "rst and spread", 5000, "ddos_spectrum"},
		{"subtypes without the dominant", []policy.Policy{pol(2, RstFlood, 1000), pol(3, TCPNull, 1000)}, "rst and spread", 5000, "ddos_rstflood"},
		{"every policy amp", every(), "isakmp-amp", 9000, "ddos_amp"},
		{"every policy amp to random ports", every(), "isakmp-amp spread", 9000, "ddos_amp"},
		{"spectrum and amp to random ports", []policy.Policy{pol(2, Spectrum, 1000), pol(3, Amp, 1000)}, "isakmp-amp spread", 9000, "ddos_amp"},

		// Two-way UDP is a session, as established TCP is.
		{"every policy quic download", every(), "quic", 13500, ""},
		{"every policy nat-t tunnel", every(), "nat-t", 12000, ""},
		{"every policy quic sparse acks", every(), "quic sparse acks", 9000, ""},
		{"flood quic one-way", []policy.Policy{flood}, "nat-t one-way", 9000, "ddos_flood"},
		{"every policy udp 443 spoofed", every(), "udp443 spoofed", 9000, "ddos_flood"},
		{"every policy udp 443 spoofed answered", every(), "udp443 spoofed answered", 13500, "ddos_flood"},
		{"flood one-way from a reflector port, one source", every(), "nat-t one-way", 9000, "ddos_flood"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, tc.policies...)
			h.run(3*time.Second, tc.rate, kinds[tc.traffic])
			got := strings.Join(h.rec.Types(), ",")
			if got != tc.want {
				t.Fatalf("alert types %q, want %q", got, tc.want)
			}
			if tc.want == "" {
				return
			}
			ids := map[uint64]bool{}
			for _, o := range h.rec.Got {
				ids[o.Policy] = true
			}
			if len(ids) != 1 {
				t.Errorf("alerts of %d policies, want 1", len(ids))
			}
		})
	}
}

// watcher is a fake samples store.
type watcher struct{ got []netip.Addr }

func (w *watcher) Watch(a netip.Addr, _ time.Time) { w.got = append(w.got, a) }

// TestWatchesAttackedTargets checks that a new attack asks the samples
// store to keep its headers, once per alert, and that no traffic below
// the threshold does.
func TestWatchesAttackedTargets(t *testing.T) {
	h := newHarness(t, pol(1, Flood, 1000))
	w := &watcher{}
	h.st.samples = w
	syn := func(i int) flow.Record {
		return flow.Record{Src: spoofed(i), Dst: victim, Proto: flow.ProtoTCP, SrcPort: 40000, DstPort: 80, TCPFlags: flow.TCPSyn}
	}
	h.run(2*time.Second, 500, syn)
	if len(w.got) != 0 {
		t.Fatalf("watched %v at half the threshold, want nothing", w.got)
	}
	h.run(3*time.Second, 4000, syn)
	if len(w.got) != 1 || w.got[0] != victim {
		t.Errorf("watched %v during a 4x flood, want [%s] once", w.got, victim)
	}
}

// TestOneAlertPerAttack: a flood family policy does not open a second
// alert of another type on a target while the first holds; a subtype
// policy with a higher threshold than the ddos_flood alert holding
// escalates with an alert of its own.
func TestOneAlertPerAttack(t *testing.T) {
	mix := func(synShare int) func(int) flow.Record {
		return func(i int) flow.Record {
			if i%10 < synShare {
				return tcp(syn, 80)(i)
			}
			return tcp(rst, 80)(i)
		}
	}
	type phase struct {
		rate int
		gen  func(int) flow.Record
	}
	cases := []struct {
		name     string
		policies []policy.Policy
		phases   []phase
		want     string // alert types in order
		npol     int
	}{
		{"second vector joins", []policy.Policy{pol(1, SynFlood, 1000), pol(2, RstFlood, 1000)},
			[]phase{{3000, mix(10)}, {6000, mix(3)}}, "ddos_synflood", 1},
		{"next attack after the first stopped", []policy.Policy{pol(1, SynFlood, 1000), pol(2, RstFlood, 1000)},
			[]phase{{3000, mix(10)}, {4000, mix(0)}}, "ddos_synflood,ddos_rstflood", 2},
		{"flood holds, subtype at the same threshold", []policy.Policy{pol(1, Flood, 1000), pol(2, SynFlood, 1000)},
			[]phase{{1500, mix(6)}, {5000, mix(6)}}, "ddos_synflood", 1},
		{"flood holds, subtype escalates", []policy.Policy{pol(1, Flood, 1000), pol(2, SynFlood, 10000)},
			[]phase{{3000, mix(10)}, {20000, mix(10)}}, "ddos_synflood", 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, tc.policies...)
			for _, p := range tc.phases {
				h.run(3*time.Second, p.rate, p.gen)
			}
			if got := strings.Join(h.rec.Types(), ","); got != tc.want {
				t.Errorf("alert types %q, want %q", got, tc.want)
			}
			ids := map[uint64]bool{}
			for _, o := range h.rec.Got {
				ids[o.Policy] = true
			}
			if len(ids) != tc.npol {
				t.Errorf("alerts of %d policies, want %d", len(ids), tc.npol)
			}
		})
	}
}
