package gen_test

import (
	"bytes"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/netsampler/goflow2/v2/decoders/netflow"
	"github.com/netsampler/goflow2/v2/decoders/netflowlegacy"
	"github.com/netsampler/goflow2/v2/decoders/sflow"
	"github.com/netsampler/goflow2/v2/producer"
	protoproducer "github.com/netsampler/goflow2/v2/producer/proto"

	"github.com/flowsentry/flowsentry/flow"
	"github.com/flowsentry/flowsentry/gen"
)

// cmpOpts compares addresses by value and nil slices equal to empty ones.
var cmpOpts = cmp.Options{cmpopts.EquateComparable(netip.Addr{}), cmpopts.EquateEmpty()}

// reference decodes datagrams with goflow2 v2.2.6, keeping templates and
// sampling rates across datagrams like a collector does.
type reference struct {
	templates netflow.NetFlowTemplateSystem
	sampling  protoproducer.SamplingRateSystem
}

func newReference() *reference {
	return &reference{templates: netflow.CreateTemplateSystem(), sampling: protoproducer.CreateSamplingSystem()}
}

// decode returns the records and counters goflow2 finds in payload,
// received at now from exporter, in flowsentry's terms: counts scaled by
// the sampling rate, sFlow bytes at layer 3 (frame length less the
// Ethernet header and FCS), sFlow times set to the receive time.
func (r *reference) decode(t *testing.T, p gen.Protocol, exporter netip.Addr, now int64, payload []byte) ([]flow.Record, []flow.IfCounters) {
	t.Helper()
	var (
		msgs     []producer.ProducerMessage
		counters []flow.IfCounters
		err      error
		source   flow.Source
	)
	buf := bytes.NewBuffer(payload)
	switch p {
	case gen.NetFlowV5:
		var pkt netflowlegacy.PacketNetFlowV5
		if err := netflowlegacy.DecodeMessageVersion(buf, &pkt); err != nil {
			t.Fatalf("goflow2 rejects the NetFlow v5 datagram: %v", err)
		}
		msgs, err = protoproducer.ProcessMessageNetFlowLegacy(&pkt)
		source = flow.SourceNetFlowV5
	case gen.NetFlowV9, gen.IPFIX:
		var v9 netflow.NFv9Packet
		var ipfix netflow.IPFIXPacket
		if err := netflow.DecodeMessageVersion(buf, r.templates, &v9, &ipfix); err != nil {
			t.Fatalf("goflow2 rejects the %v datagram: %v", p, err)
		}
		if p == gen.NetFlowV9 {
			msgs, err = protoproducer.ProcessMessageNetFlowV9Config(&v9, r.sampling, nil)
			source = flow.SourceNetFlowV9
		} else {
			msgs, err = protoproducer.ProcessMessageIPFIXConfig(&ipfix, r.sampling, nil)
			source = flow.SourceIPFIX
		}
	case gen.SFlow:
		var pkt sflow.Packet
		if err := sflow.DecodeMessageVersion(buf, &pkt); err != nil {
			t.Fatalf("goflow2 rejects the sFlow datagram: %v", err)
		}
		msgs, err = protoproducer.ProcessMessageSFlowConfig(&pkt, nil)
		source = flow.SourceSFlow
		agent, _ := netip.AddrFromSlice(pkt.AgentIP)
		exporter = agent.Unmap()
		counters = sflowCounters(pkt, exporter, now)
	}
	if err != nil {
		t.Fatalf("goflow2 cannot produce flows from the %v datagram: %v", p, err)
	}
	var recs []flow.Record
	for _, m := range msgs {
		recs = append(recs, toRecord(m.(*protoproducer.ProtoProducerMessage), source, exporter, now))
	}
	return recs, counters
}

// toRecord converts a goflow2 flow message.
func toRecord(m *protoproducer.ProtoProducerMessage, source flow.Source, exporter netip.Addr, now int64) flow.Record {
	rate := max(m.SamplingRate, 1)
	src, _ := netip.AddrFromSlice(m.SrcAddr)
	dst, _ := netip.AddrFromSlice(m.DstAddr)
	r := flow.Record{
		Start:        int64(m.TimeFlowStartNs),
		End:          int64(m.TimeFlowEndNs),
		Exporter:     exporter,
		InIf:         m.InIf,
		OutIf:        m.OutIf,
		Src:          src,
		Dst:          dst,
		SrcPort:      uint16(m.SrcPort),
		DstPort:      uint16(m.DstPort),
		Packets:      m.Packets * rate,
		Bytes:        m.Bytes * rate,
		SamplingRate: uint32(rate),
		Proto:        uint8(m.Proto),
		TCPFlags:     uint8(m.TcpFlags),
		Source:       source,
	}
	if source == flow.SourceSFlow {
		r.Start, r.End = now, now
		r.Bytes = (m.Bytes - 18) * rate
	}
	return r
}

// sflowCounters extracts the generic interface counters of pkt.
func sflowCounters(pkt sflow.Packet, exporter netip.Addr, now int64) []flow.IfCounters {
	var out []flow.IfCounters
	for _, s := range pkt.Samples {
		cs, ok := s.(sflow.CounterSample)
		if !ok {
			continue
		}
		for _, rec := range cs.Records {
			c, ok := rec.Data.(sflow.IfCounters)
			if !ok {
				continue
			}
			out = append(out, flow.IfCounters{
				Time:        now,
				Exporter:    exporter,
				IfIndex:     c.IfIndex,
				Speed:       c.IfSpeed,
				InOctets:    c.IfInOctets,
				OutOctets:   c.IfOutOctets,
				InPackets:   uint64(c.IfInUcastPkts) + uint64(c.IfInMulticastPkts) + uint64(c.IfInBroadcastPkts),
				OutPackets:  uint64(c.IfOutUcastPkts) + uint64(c.IfOutMulticastPkts) + uint64(c.IfOutBroadcastPkts),
				InErrors:    c.IfInErrors,
				OutErrors:   c.IfOutErrors,
				InDiscards:  c.IfInDiscards,
				OutDiscards: c.IfOutDiscards,
			})
		}
	}
	return out
}

// TestGoflowDecodes checks that goflow2 v2.2.6 decodes every generated
// datagram to the records and counters the generator says it encoded.
func TestGoflowDecodes(t *testing.T) {
	v6Src := netip.MustParsePrefix("2001:db8:1::/64")
	v6Dst := netip.MustParsePrefix("2001:db8:2::/48")
	tests := []struct {
		name string
		cfg  gen.Config
	}{
		{"v5", gen.Config{Protocol: gen.NetFlowV5}},
		{"v5 sampled", gen.Config{Protocol: gen.NetFlowV5, SamplingRate: 100, Seed: 2}},
		{"v5 icmp", gen.Config{Protocol: gen.NetFlowV5, Protocols: []uint8{flow.ProtoICMP}, Records: 3}},
		{"v9", gen.Config{Protocol: gen.NetFlowV9, Domain: 7}},
		{"v9 sampled", gen.Config{Protocol: gen.NetFlowV9, SamplingRate: 1000, RefreshEvery: 5}},
		{"v9 ipv6", gen.Config{Protocol: gen.NetFlowV9, SrcPrefix: v6Src, DstPrefix: v6Dst, Records: 7}},
		{"ipfix", gen.Config{Protocol: gen.IPFIX, Domain: 42}},
		{"ipfix sampled", gen.Config{Protocol: gen.IPFIX, SamplingRate: 64, Seed: 9}},
		{"ipfix ipv6", gen.Config{Protocol: gen.IPFIX, SrcPrefix: v6Src, DstPrefix: v6Dst, Protocols: []uint8{6, 17, 58}}},
		{"sflow", gen.Config{Protocol: gen.SFlow}},
		{"sflow sampled", gen.Config{Protocol: gen.SFlow, SamplingRate: 512, Interfaces: 12, RefreshEvery: 3}},
		{"sflow ipv6", gen.Config{Protocol: gen.SFlow, SrcPrefix: v6Src, DstPrefix: v6Dst, Exporter: netip.MustParseAddr("2001:db8::1")}},
		{"sflow ipv6 udp", gen.Config{Protocol: gen.SFlow, SrcPrefix: v6Src, DstPrefix: v6Dst, Protocols: []uint8{flow.ProtoUDP}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, err := gen.New(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			ref := newReference()
			exporter := g.Config().Exporter
			now := int64(1_764_000_000_123_456_789)
			var buf []byte
			var total, counters int
			for i := range 45 {
				now += 1_000_017
				buf = g.Append(buf[:0], now)
				gotRecs, gotCounters := ref.decode(t, tt.cfg.Protocol, exporter, now, buf)
				if diff := cmp.Diff(gotRecs, g.Records(), cmpOpts); diff != "" {
					t.Fatalf("datagram %d records (-goflow2 +generator):\n%s", i, diff)
				}
				if diff := cmp.Diff(gotCounters, g.Counters(), cmpOpts); diff != "" {
					t.Fatalf("datagram %d counters (-goflow2 +generator):\n%s", i, diff)
				}
				total += len(gotRecs)
				counters += len(gotCounters)
			}
			if want := 45 * g.Config().Records; total != want {
				t.Errorf("goflow2 decoded %d records, want %d", total, want)
			}
			if tt.cfg.Protocol == gen.SFlow && counters == 0 {
				t.Error("no counter sample in 45 sFlow datagrams")
			}
		})
	}
}

// TestTemplateRefresh checks that templates come in the first datagram and
// then every RefreshEvery datagrams: a collector that missed the first one
// decodes nothing until the next refresh.
func TestTemplateRefresh(t *testing.T) {
	for _, p := range []gen.Protocol{gen.NetFlowV9, gen.IPFIX} {
		t.Run(p.String(), func(t *testing.T) {
			g, err := gen.New(gen.Config{Protocol: p, RefreshEvery: 4, SamplingRate: 10})
			if err != nil {
				t.Fatal(err)
			}
			late := newReference()
			var got []int
			var buf []byte
			for i := range 10 {
				buf = g.Append(buf[:0], 1_764_000_000e9+int64(i)*1e9)
				if i == 0 {
					continue // lost on the way
				}
				var v9 netflow.NFv9Packet
				var ipfix netflow.IPFIXPacket
				err := netflow.DecodeMessageVersion(bytes.NewBuffer(buf), late.templates, &v9, &ipfix)
				if err == nil {
					got = append(got, i)
				}
			}
			if diff := cmp.Diff(got, []int{4, 5, 6, 7, 8, 9}); diff != "" {
				t.Errorf("datagrams decoded after missing the first (-got +want):\n%s", diff)
			}
		})
	}
}
