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
	"spectrum": func(i int) flow.Record {
		r := udp(40000, 0)(i)
		r.DstPort = uint16(1 + (i*7919)%65000)
		return r
	},
	"udp":     udp(40000, 80),
	"ackpsh":  tcp(ack|psh, 443),
	"dns-amp": udp(53, 33000),
	"ntp-amp": udp(123, 33000),
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
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, tc.policies...)
			h.run(3*time.Second, tc.rate, kinds[tc.traffic])
			got := strings.Join(h.rec.types(), ",")
			if got != tc.want {
				t.Fatalf("alert types %q, want %q", got, tc.want)
			}
			if tc.want == "" {
				return
			}
			ids := map[uint64]bool{}
			for _, o := range h.rec.got {
				ids[o.c.Policy] = true
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
