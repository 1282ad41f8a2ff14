package ddos

import (
	"fmt"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/flowsentry/flowsentry/flow"
	"github.com/flowsentry/flowsentry/gen"
	"github.com/flowsentry/flowsentry/internal/replaytest"
	"github.com/flowsentry/flowsentry/internal/testcaptures"
)

func config(family string, threshold float64, extra string) string {
	return fmt.Sprintf(`policies:
  - {id: 1, name: p, cid: 0, family: %s, target: traffic_groups, object_type: TGRP, threshold: %v, severity: 5, actions: []%s}
`, family, threshold, extra)
}

var capStart = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// synthetic writes a capture of rate packets/s for d made by gen.
func synthetic(t *testing.T, rate int, d time.Duration, gen func(i int) replaytest.Packet) string {
	var c replaytest.Capture
	n := int(d.Seconds() * float64(rate))
	for i := range n {
		p := gen(i)
		p.Time = capStart.Add(time.Duration(i) * time.Second / time.Duration(rate))
		c.Add(p)
	}
	return c.Write(t)
}

func pktTCP(flags uint8, dport uint16) func(int) replaytest.Packet {
	return func(i int) replaytest.Packet {
		return replaytest.Packet{Src: spoofed(i), Dst: victim, Proto: flow.ProtoTCP, SrcPort: uint16(1024 + i%60000), DstPort: dport, Flags: flags}
	}
}

// TestReplay replays shared and synthetic captures through the binary.
func TestReplay(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs flowsentry")
	}
	v6 := netip.MustParseAddr("fd00::10")
	cases := []struct {
		name    string
		config  string
		capture func(t *testing.T) (string, time.Time)
		want    string // alert_type expected on target, "" for nothing at all
		target  string
		port    string
	}{
		{"synflood spoofed", config("ddos_flood", 1000, ""), shared("attacks/ddos/pkt.TCP.synflood.spoofed.pcap", 1619605821), "ddos_synflood", "10.10.10.10", "25565"},
		{"synflood sflow 1:10", config("ddos_flood", 1000, ""), shared("flow-exports/derived/pmacct-sflow-s10-synflood.pcap", 1795643131), "ddos_synflood", "10.10.10.10", "25565"},
		{"synflood family", config("ddos_synflood", 1000, ""), shared("attacks/ddos/pkt.TCP.synflood.spoofed.pcap", 1619605821), "ddos_synflood", "10.10.10.10", ""},
		{"synflood above the capture's rate", config("ddos_flood", 30000, ""), shared("attacks/ddos/pkt.TCP.synflood.spoofed.pcap", 0), "", "", ""},
		{"dominate syn ecn cwr", config("ddos_flood", 200, ""), shared("attacks/ddos/pkt.TCP.DOMINATE.syn.ecn.cwr.pcapng", 1617292578), "ddos_synflood", "10.10.10.10", "30120"},
		{"snmp amp", config("ddos_amp", 1000, ", port: 161"), shared("attacks/ddos/amp.UDP.snmp.src161.pcapng", 1621090240), "ddos_amp", "10.10.10.10", "161"},
		{"snmp amp other port", config("ddos_amp", 1000, ", port: 53"), shared("attacks/ddos/amp.UDP.snmp.src161.pcapng", 0), "", "", ""},
		{"dns rrsig amp with fragments", config("ddos_amp", 40, ", port: 53"), shared("attacks/ddos/amp.dns.RRSIG.fragmented.pcap", 1632239124), "ddos_amp", "10.10.10.10", "53"},
		{"dns rrsig frag", config("ddos_frag", 40, ""), shared("attacks/ddos/amp.dns.RRSIG.fragmented.pcap", 1632239124), "ddos_frag", "10.10.10.10", ""},
		{"bacnet amp", config("ddos_amp", 1000, ""), shared("attacks/ddos/amp.UDP.bacnet.IOT.37810.pcapng", 1626105669), "ddos_amp", "10.10.10.1", "47808"},
		{"bacnet amp 37810", config("ddos_amp", 1000, ", port: 37810"), shared("attacks/ddos/amp.UDP.bacnet.IOT.37810.pcapng", 1626105669), "ddos_amp", "10.10.10.1", "37810"},
		{"isakmp amp", config("ddos_amp", 1000, ", port: 4500"), shared("attacks/ddos/amp.UDP.isakmp.pcap", 1623699901), "ddos_amp", "10.10.10.10", "4500"},
		{"fragmented garbage", config("ddos_flood", 500, ""), shared("attacks/anomalies/ip_fragmented_garbage.pcap", 1534244024), "ddos_frag", "10.128.0.2", ""},
		{"all flags at a low threshold", config("ddos_flood", 0.5, ""), shared("attacks/anomalies/tcp_one_way_all_flags.pcap", 1597873420), "*", "10.0.0.80", "80"},
		{"all flags at the default", config("ddos_flood", 1000, ""), shared("attacks/anomalies/tcp_one_way_all_flags.pcap", 0), "", "", ""},

		{"xmas", config("ddos_flood", 1000, ""), synth(2000, pktTCP(fin|psh|urg, 80)), "ddos_xmas", "10.10.10.10", "80"},
		{"xmas family", config("ddos_xmas", 1000, ""), synth(2000, pktTCP(fin|psh|urg, 80)), "ddos_xmas", "10.10.10.10", ""},
		{"xmas below", config("ddos_xmas", 1000, ""), synth(800, pktTCP(fin|psh|urg, 80)), "", "", ""},
		{"tcpnull", config("ddos_tcpnull", 1000, ""), synth(2000, pktTCP(0, 80)), "ddos_tcpnull", "10.10.10.10", ""},
		{"tcpzero", config("ddos_flood", 1000, ""), synth(2000, pktTCP(syn, 0)), "ddos_tcpzero", "10.10.10.10", "0"},
		{"ipnull", config("ddos_flood", 1000, ""), synth(2000, func(i int) replaytest.Packet {
			return replaytest.Packet{Src: spoofed(i), Dst: victim, Proto: 0, Payload: 20}
		}), "ddos_ipnull", "10.10.10.10", "0"},
		{"poison syn fin", config("ddos_poison", 1000, ""), synth(2000, pktTCP(syn|fin, 80)), "ddos_poison", "10.10.10.10", ""},
		{"land", config("ddos_flood", 1000, ""), synth(2000, func(i int) replaytest.Packet {
			return replaytest.Packet{Src: victim, Dst: victim, Proto: flow.ProtoTCP, SrcPort: 139, DstPort: 139, Flags: syn}
		}), "ddos_poison", "10.10.10.10", ""},
		{"rstflood", config("ddos_flood", 1000, ""), synth(2000, pktTCP(rst, 443)), "ddos_rstflood", "10.10.10.10", "443"},
		{"rstflood family below", config("ddos_rstflood", 1000, ""), synth(900, pktTCP(rst, 443)), "", "", ""},
		{"spectrum", config("ddos_flood", 1000, ""), synth(2000, func(i int) replaytest.Packet {
			return replaytest.Packet{Src: spoofed(i), Dst: victim, Proto: flow.ProtoUDP, SrcPort: 40000, DstPort: uint16(1 + (i*7919)%65000), Payload: 100}
		}), "ddos_spectrum", "10.10.10.10", "0"},
		{"ipv6 synflood", config("ddos_flood", 1000, ""), synth(2000, func(i int) replaytest.Packet {
			return replaytest.Packet{Src: spoofed6(i), Dst: v6, Proto: flow.ProtoTCP, SrcPort: uint16(1024 + i), DstPort: 443, Flags: syn}
		}), "ddos_synflood", "fd00::10", "443"},
		{"ipv6 udp flood", config("ddos_flood", 1000, ""), synth(3000, func(i int) replaytest.Packet {
			return replaytest.Packet{Src: spoofed6(i), Dst: v6, Proto: flow.ProtoUDP, SrcPort: uint16(1024 + i), DstPort: 27015, Payload: 200}
		}), "ddos_flood", "fd00::10", "27015"},
		{"large download", config("ddos_flood", 1000, ""), synth(8000, func(i int) replaytest.Packet {
			// Three long sessions from one server.
			return replaytest.Packet{Src: netip.MustParseAddr("203.0.113.5"), Dst: victim, Proto: flow.ProtoTCP, SrcPort: 443, DstPort: uint16(50000 + i%3), Flags: ack | psh, Payload: 1400}
		}), "", "", ""},
		{"dns and ntp clients", config("ddos_amp", 1000, "") + "  - {id: 2, name: f, cid: 0, family: ddos_flood, target: traffic_groups, object_type: TGRP, threshold: 1000, severity: 5, actions: []}\n",
			synth(300, func(i int) replaytest.Packet {
				port := uint16(53)
				if i%3 == 0 {
					port = 123
				}
				return replaytest.Packet{Src: netip.MustParseAddr("198.51.100.53"), Dst: netip.AddrFrom4([4]byte{10, 0, byte(i % 7), 5}), Proto: flow.ProtoUDP, SrcPort: port, DstPort: uint16(30000 + i), Payload: 120}
			}), "", "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path, start := tc.capture(t)
			events := replaytest.Run(t, tc.config, path)
			creates := replaytest.Creates(events, "")
			if tc.want == "" {
				if len(creates) > 0 {
					t.Fatalf("raised %s on %s", creates[0].Type(), creates[0].Str("target_ip"))
				}
				return
			}
			var hit *replaytest.Event
			for i, e := range creates {
				if e.Str("target_ip") == tc.target && (tc.want == "*" || e.Type() == tc.want) {
					hit = &creates[i]
				}
			}
			if hit == nil {
				var got []string
				for _, e := range creates {
					got = append(got, e.Type()+" "+e.Str("target_ip"))
				}
				t.Fatalf("no %s on %s; got %v", tc.want, tc.target, got)
			}
			if tc.port != "" && hit.Str("server_port") != tc.port {
				t.Errorf("server_port %s, want %s", hit.Str("server_port"), tc.port)
			}
			earliest, _ := strconv.ParseFloat(hit.Str("earliest_utc"), 64)
			if delay := earliest - float64(start.UnixNano())/1e9; delay > 10 {
				t.Errorf("alert %.1f s after the attack started, want at most 10", delay)
			}
			if hit.Str("total_sources") == "" || hit.Str("threshold_value") == "" {
				t.Errorf("DDoS fields missing: %v", hit.Alert)
			}
		})
	}
}

func shared(name string, start int64) func(t *testing.T) (string, time.Time) {
	return func(t *testing.T) (string, time.Time) {
		return testcaptures.Path(t, name), time.Unix(start, 0)
	}
}

func synth(rate int, gen func(i int) replaytest.Packet) func(t *testing.T) (string, time.Time) {
	return func(t *testing.T) (string, time.Time) {
		return synthetic(t, rate, 4*time.Second, gen), capStart
	}
}

// TestReplaySampledSFlow replays sFlow datagrams sampled 1:1000 (gen's
// encoder, sent to the sFlow port): 30 samples a second from 2,000 sources
// stand for a 30,000 packets/s flood, which raises ddos_flood at 5,000
// packets/s with packets_in scaled back; at 50,000 it stays quiet.
func TestReplaySampledSFlow(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs flowsentry")
	}
	g, err := gen.New(gen.Config{
		Protocol: gen.SFlow, SamplingRate: 1000, Records: 3,
		SrcPrefix: netip.MustParsePrefix("198.18.0.0/16"), SrcAddrs: 2000,
		DstPrefix: netip.MustParsePrefix("10.20.30.40/32"), DstAddrs: 1,
		Protocols: []uint8{flow.ProtoUDP}, Ports: []uint16{80}, Seed: 3,
	})
	if err != nil {
		t.Fatal(err)
	}
	var c replaytest.Capture
	agent, collector := netip.MustParseAddr("127.0.0.2"), netip.MustParseAddr("127.0.0.1")
	for i := range 100 { // 10 datagrams of 3 samples a second, for 10 s
		at := capStart.Add(time.Duration(i) * 100 * time.Millisecond)
		c.Add(replaytest.Packet{Time: at, Src: agent, Dst: collector, Proto: flow.ProtoUDP, SrcPort: 40000, DstPort: 6343,
			Data: g.Append(nil, at.UnixNano())})
	}
	path := c.Write(t)
	events := replaytest.Run(t, config("ddos_flood", 5000, ""), path)
	creates := replaytest.Creates(events, "ddos_flood")
	if len(creates) != 1 || creates[0].Str("target_ip") != "10.20.30.40" {
		t.Fatalf("CREATEs %v, want one ddos_flood on 10.20.30.40", creates)
	}
	// The CREATE comes as the trailing second crosses 5,000; the peak of
	// the alert's last event is the flood's full rate.
	peak, _ := events[len(events)-1].Alert["peak_values"].(map[string]any)
	if pin, _ := peak["packets_in"].(float64); pin < 25000 || pin > 35000 {
		t.Errorf("peak packets_in %v, want about 30,000 (30 samples a second × 1000)", peak["packets_in"])
	}
	if got := replaytest.Creates(replaytest.Run(t, config("ddos_flood", 50000, ""), path), ""); len(got) != 0 {
		t.Errorf("threshold 50,000: CREATEs %v, want none", got)
	}
}
