package all_test

import (
	"bufio"
	"cmp"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/flowsentry/flowsentry/flow"
)

// snap is how many bytes of each packet the captures keep, as the hidden
// acceptance captures do: the headers are whole, the payload is cut, and
// the packet's original length stays in the record header (and in the
// IP total length the meter counts).
const snap = 128

// TCP flags, short.
const (
	fin = flow.TCPFin
	syn = flow.TCPSyn
	rst = flow.TCPRst
	psh = flow.TCPPsh
	ack = flow.TCPAck
)

// mss is the TCP payload of a full-size segment (1500-byte IP packets).
const mss = 1460

// pkt is one synthetic packet.
type pkt struct {
	t                time.Time
	src, dst         netip.Addr
	proto            uint8
	sport, dport     uint16
	flags            uint8
	payload          int   // layer-4 payload bytes
	icmpType, icmpID uint8 // ICMP echo: type 8 request, 0 reply
}

// frame is a packet as stored in a capture.
type frame struct {
	ci   gopacket.CaptureInfo
	data []byte
}

// encode builds the Ethernet frame of p (headers whole, payload zeros)
// cut to snap bytes, with the original length in ci.Length.
func encode(p pkt) frame {
	var l4 []byte
	switch p.proto {
	case flow.ProtoTCP:
		l4 = make([]byte, 20)
		binary.BigEndian.PutUint16(l4[0:], p.sport)
		binary.BigEndian.PutUint16(l4[2:], p.dport)
		binary.BigEndian.PutUint32(l4[4:], uint32(p.t.UnixNano()))
		if p.flags&ack != 0 {
			binary.BigEndian.PutUint32(l4[8:], uint32(p.t.UnixNano()>>3))
		}
		l4[12] = 5 << 4
		l4[13] = p.flags
		binary.BigEndian.PutUint16(l4[14:], 64240)
	case flow.ProtoUDP:
		l4 = make([]byte, 8)
		binary.BigEndian.PutUint16(l4[0:], p.sport)
		binary.BigEndian.PutUint16(l4[2:], p.dport)
		binary.BigEndian.PutUint16(l4[4:], uint16(8+p.payload))
	case flow.ProtoICMP, flow.ProtoICMPv6:
		l4 = make([]byte, 8)
		l4[0] = p.icmpType
		l4[5] = p.icmpID
		binary.BigEndian.PutUint16(l4[6:], uint16(p.t.Unix()))
	}
	l4len := len(l4) + p.payload
	var ip []byte
	eth := make([]byte, 14)
	copy(eth, []byte{2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1})
	if p.src.Is4() {
		binary.BigEndian.PutUint16(eth[12:], 0x0800)
		ip = make([]byte, 20)
		ip[0] = 0x45
		binary.BigEndian.PutUint16(ip[2:], uint16(20+l4len))
		binary.BigEndian.PutUint16(ip[6:], 0x4000) // DF
		ip[8] = 60
		ip[9] = p.proto
		s, d := p.src.As4(), p.dst.As4()
		copy(ip[12:], s[:])
		copy(ip[16:], d[:])
		var sum uint32
		for i := 0; i < 20; i += 2 {
			sum += uint32(binary.BigEndian.Uint16(ip[i:]))
		}
		for sum > 0xffff {
			sum = sum&0xffff + sum>>16
		}
		binary.BigEndian.PutUint16(ip[10:], ^uint16(sum))
	} else {
		binary.BigEndian.PutUint16(eth[12:], 0x86dd)
		ip = make([]byte, 40)
		ip[0] = 0x60
		binary.BigEndian.PutUint16(ip[4:], uint16(l4len))
		ip[6] = p.proto
		ip[7] = 60
		s, d := p.src.As16(), p.dst.As16()
		copy(ip[8:], s[:])
		copy(ip[24:], d[:])
	}
	full := len(eth) + len(ip) + l4len
	data := make([]byte, 0, min(full, snap))
	data = append(append(append(data, eth...), ip...), l4...)
	data = append(data, make([]byte, min(full, snap)-len(data))...)
	return frame{ci: gopacket.CaptureInfo{Timestamp: p.t, CaptureLength: len(data), Length: full}, data: data}
}

// capture gathers synthetic packets.
type capture struct {
	pkts []pkt
	rng  *rand.Rand
}

func newCapture(seed uint64) *capture { return &capture{rng: rand.New(rand.NewPCG(seed, 7))} }

func (c *capture) add(p ...pkt) { c.pkts = append(c.pkts, p...) }

// frames returns the capture's frames in time order.
func (c *capture) frames() []frame {
	out := make([]frame, len(c.pkts))
	for i, p := range c.pkts {
		out[i] = encode(p)
	}
	sortFrames(out)
	return out
}

func sortFrames(f []frame) {
	slices.SortStableFunc(f, func(a, b frame) int { return a.ci.Timestamp.Compare(b.ci.Timestamp) })
}

// writeFrames writes an Ethernet pcap of frames (snaplen snap) in the
// test's temporary folder.
func writeFrames(tb testing.TB, name string, frames []frame) string {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), name)
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	w := pcapgo.NewWriterNanos(bw)
	if err := w.WriteFileHeader(snap, layers.LinkTypeEthernet); err != nil {
		tb.Fatal(err)
	}
	for _, fr := range frames {
		if err := w.WritePacket(fr.ci, fr.data); err != nil {
			tb.Fatal(err)
		}
	}
	if err := bw.Flush(); err != nil {
		tb.Fatal(err)
	}
	if err := f.Close(); err != nil {
		tb.Fatal(err)
	}
	return path
}

// readTruncated reads a pcap or pcapng capture (Ethernet) and returns its
// packets cut to snap bytes, each keeping its original length.
func readTruncated(tb testing.TB, path string) []frame {
	tb.Helper()
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	type source interface {
		ReadPacketData() ([]byte, gopacket.CaptureInfo, error)
		LinkType() layers.LinkType
	}
	var src source
	br := bufio.NewReader(f)
	magic, err := br.Peek(4)
	if err != nil {
		tb.Fatalf("%s: %v", path, err)
	}
	if string(magic) == "\x0a\x0d\x0d\x0a" { // pcapng section header
		r, err := pcapgo.NewNgReader(br, pcapgo.DefaultNgReaderOptions)
		if err != nil {
			tb.Fatal(err)
		}
		src = r
	} else {
		r, err := pcapgo.NewReader(br)
		if err != nil {
			tb.Fatal(err)
		}
		src = r
	}
	if src.LinkType() != layers.LinkTypeEthernet {
		tb.Fatalf("%s: link type %v, want Ethernet", path, src.LinkType())
	}
	var out []frame
	for {
		data, ci, err := src.ReadPacketData()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			tb.Fatalf("%s: %v", path, err)
		}
		n := min(len(data), snap)
		d := slices.Clone(data[:n])
		ci.CaptureLength = n
		ci.Length = max(ci.Length, len(data))
		ci.InterfaceIndex = 0
		ci.AncillaryData = nil
		out = append(out, frame{ci: ci, data: d})
	}
	return out
}

// shift returns frames moved in time by d.
func shift(frames []frame, d time.Duration) []frame {
	out := slices.Clone(frames)
	for i := range out {
		out[i].ci.Timestamp = out[i].ci.Timestamp.Add(d)
	}
	return out
}

// merge returns the frames of every list in time order.
func merge(lists ...[]frame) []frame {
	var out []frame
	for _, l := range lists {
		out = append(out, l...)
	}
	sortFrames(out)
	return out
}

// span returns the first and last packet times.
func span(frames []frame) (time.Time, time.Time) {
	first := slices.MinFunc(frames, func(a, b frame) int { return a.ci.Timestamp.Compare(b.ci.Timestamp) })
	last := slices.MaxFunc(frames, func(a, b frame) int { return a.ci.Timestamp.Compare(b.ci.Timestamp) })
	return first.ci.Timestamp, last.ci.Timestamp
}

// ms is n milliseconds.
func ms(n float64) time.Duration { return time.Duration(n * float64(time.Millisecond)) }

// between returns a random duration in [lo, hi).
func (c *capture) between(lo, hi time.Duration) time.Duration {
	return lo + time.Duration(c.rng.Int64N(int64(hi-lo)+1))
}

// ephemeral returns a random client port (Linux range).
func (c *capture) ephemeral() uint16 { return uint16(32768 + c.rng.IntN(28232)) }

// tcp is one TCP connection.
type tcp struct {
	c                *capture
	cli, srv         netip.Addr
	cport, sport     uint16
	rtt              time.Duration
	at               time.Time // time of the last packet sent
	clientFIN, close bool
}

// dial adds the three-way handshake at t and returns the connection.
func (c *capture) dial(t time.Time, cli, srv netip.Addr, sport uint16, rtt time.Duration) *tcp {
	x := &tcp{c: c, cli: cli, srv: srv, cport: c.ephemeral(), sport: sport, rtt: rtt}
	x.send(t, true, syn, 0)
	x.send(t.Add(rtt/2), false, syn|ack, 0)
	x.send(t.Add(rtt), true, ack, 0)
	return x
}

// send adds one segment of the connection.
func (x *tcp) send(t time.Time, fromClient bool, flags uint8, payload int) {
	p := pkt{t: t, src: x.cli, dst: x.srv, proto: flow.ProtoTCP, sport: x.cport, dport: x.sport, flags: flags, payload: payload}
	if !fromClient {
		p.src, p.dst, p.sport, p.dport = x.srv, x.cli, x.sport, x.cport
	}
	x.c.add(p)
	x.at = t
}

// transfer sends n bytes from one side at pps full segments a second
// starting at t, the receiver acknowledging every second segment (delayed
// ACK), and returns when the last ACK left.
func (x *tcp) transfer(t time.Time, fromClient bool, n int, pps float64) time.Time {
	gap := time.Duration(float64(time.Second) / pps)
	segs := 0
	for n > 0 {
		size := min(n, mss)
		n -= size
		flags := uint8(ack)
		if n == 0 {
			flags |= psh
		}
		x.send(t, fromClient, flags, size)
		segs++
		if segs%2 == 0 || n == 0 {
			x.send(t.Add(x.rtt/2), !fromClient, ack, 0)
		}
		t = t.Add(gap)
	}
	return x.at
}

// exchange sends a request of req bytes and a reply of resp bytes.
func (x *tcp) exchange(t time.Time, req, resp int, pps float64) time.Time {
	t = x.transfer(t, true, req, pps)
	return x.transfer(t.Add(x.rtt/2+ms(2)), false, resp, pps)
}

// finish closes the connection from one side at t.
func (x *tcp) finish(t time.Time, fromClient bool) {
	x.send(t, fromClient, fin|ack, 0)
	x.send(t.Add(x.rtt/2), !fromClient, fin|ack, 0)
	x.send(t.Add(x.rtt), fromClient, ack, 0)
}

// udp adds a request/response pair.
func (c *capture) udp(t time.Time, cli netip.Addr, cport uint16, srv netip.Addr, sport uint16, req, resp int, rtt time.Duration) {
	c.add(pkt{t: t, src: cli, dst: srv, proto: flow.ProtoUDP, sport: cport, dport: sport, payload: req},
		pkt{t: t.Add(rtt), src: srv, dst: cli, proto: flow.ProtoUDP, sport: sport, dport: cport, payload: resp})
}

// ping adds an echo request and its reply.
func (c *capture) ping(t time.Time, from, to netip.Addr, id uint8, rtt time.Duration) {
	proto, req, rep := uint8(flow.ProtoICMP), uint8(8), uint8(0)
	if from.Is6() {
		proto, req, rep = flow.ProtoICMPv6, 128, 129
	}
	c.add(pkt{t: t, src: from, dst: to, proto: proto, icmpType: req, icmpID: id, payload: 56},
		pkt{t: t.Add(rtt), src: to, dst: from, proto: proto, icmpType: rep, icmpID: id, payload: 56})
}

// hosts returns n addresses from base upwards.
func hosts(base string, n int) []netip.Addr {
	a := netip.MustParseAddr(base)
	out := make([]netip.Addr, n)
	for i := range out {
		out[i] = a
		a = a.Next()
	}
	return out
}

// sortedKeys returns the keys of m sorted.
func sortedKeys[K cmp.Ordered, V any](m map[K]V) []K {
	out := make([]K, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
