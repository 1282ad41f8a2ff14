package netflow

import (
	"bytes"
	"errors"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/flowsentry/flowsentry/internal/testcaptures"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// datagram is one UDP payload of a capture.
type datagram struct {
	exporter netip.Addr
	time     int64
	payload  []byte
}

// packetReader is what pcapgo's pcap and pcapng readers share.
type packetReader interface {
	gopacket.PacketDataSource
	LinkType() layers.LinkType
}

// pcapngMagic starts a pcapng file (some captures are pcapng whatever
// their extension).
var pcapngMagic = []byte{0x0a, 0x0d, 0x0d, 0x0a}

// readDatagrams returns the UDP payloads of a pcap or pcapng file under
// flow-exports/, in capture order, with the IP source address as the
// exporter.
func readDatagrams(tb testing.TB, name string) []datagram {
	tb.Helper()
	data, err := os.ReadFile(filepath.Join(testcaptures.Dir(tb), "flow-exports", name))
	if err != nil {
		tb.Fatal(err)
	}
	var r packetReader
	if bytes.HasPrefix(data, pcapngMagic) {
		r, err = pcapgo.NewNgReader(bytes.NewReader(data), pcapgo.DefaultNgReaderOptions)
	} else {
		r, err = pcapgo.NewReader(bytes.NewReader(data))
	}
	if err != nil {
		tb.Fatalf("%s: %v", name, err)
	}
	var out []datagram
	for {
		data, ci, err := r.ReadPacketData()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			tb.Fatalf("%s: %v", name, err)
		}
		pkt := gopacket.NewPacket(data, r.LinkType(), gopacket.Default)
		udp, ok := pkt.Layer(layers.LayerTypeUDP).(*layers.UDP)
		if !ok {
			tb.Fatalf("%s: packet %d is not UDP", name, len(out)+1)
		}
		var src netip.Addr
		switch ip := pkt.NetworkLayer().(type) {
		case *layers.IPv4:
			src, _ = netip.AddrFromSlice(ip.SrcIP.To4())
		case *layers.IPv6:
			src, _ = netip.AddrFromSlice(ip.SrcIP)
		}
		out = append(out, datagram{exporter: src, time: ci.Timestamp.UnixNano(), payload: udp.Payload})
	}
}

// readAll concatenates the datagrams of several captures, in order.
func readAll(tb testing.TB, names ...string) []datagram {
	var out []datagram
	for _, n := range names {
		out = append(out, readDatagrams(tb, n)...)
	}
	return out
}

// checkCache reports a template cache whose bookkeeping disagrees with its
// contents or breaks its bounds: the eviction orders must hold exactly the
// templates of the domains, and no domain is kept without templates.
func checkCache(tb testing.TB, t *Templates) {
	tb.Helper()
	t.mu.RLock()
	defer t.mu.RUnlock()
	perExporter := make(map[netip.Addr]int)
	total := 0
	for key, dm := range t.domains {
		if len(dm.templates) == 0 {
			tb.Errorf("domain %+v kept without templates", key)
		}
		for id, tpl := range dm.templates {
			if tpl.dm != dm || tpl.id != id {
				tb.Errorf("template %d of %+v filed as %d", id, key, tpl.id)
			}
		}
		perExporter[key.exporter] += len(dm.templates)
		total += len(dm.templates)
	}
	if n := countOrder(&t.all); total != t.all.len || n != total {
		tb.Errorf("%d templates in domains, all order counts %d and links %d", total, t.all.len, n)
	}
	if total > t.maxTotal {
		tb.Errorf("%d templates, over the bound of %d", total, t.maxTotal)
	}
	if len(perExporter) != len(t.exporters) {
		tb.Errorf("%d exporters with templates, %d exporter orders", len(perExporter), len(t.exporters))
	}
	for addr, o := range t.exporters {
		if n := countOrder(o); n != perExporter[addr] || o.len != n {
			tb.Errorf("exporter %s: %d templates, order counts %d and links %d", addr, perExporter[addr], o.len, n)
		}
		if o.len > t.maxPerExporter {
			tb.Errorf("exporter %s: %d templates, over the bound of %d", addr, o.len, t.maxPerExporter)
		}
	}
}

// countOrder walks o from its head.
func countOrder(o *order) int {
	n := 0
	for tpl := o.head; tpl != nil; tpl = tpl.links[o.link].next {
		n++
	}
	return n
}
