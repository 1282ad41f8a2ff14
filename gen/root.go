// Package gen encodes synthetic NetFlow v5, NetFlow v9, IPFIX and sFlow v5
// datagrams for tests, benchmarks and the flowgen load generator.
//
// A Generator is deterministic for a given Config (seed included) and
// reports the records and interface counters each datagram carries, as a
// collector should decode them, so that tests compare what went in with
// what came out. Address, port and protocol cardinality are controlled, and
// templates are re-sent periodically like real exporters do.
package gen

import (
	"encoding/binary"
	"math/bits"
	"math/rand/v2"
	"net/netip"

	"github.com/flowsentry/flowsentry/flow"
)

// bootAge is how long the simulated exporter has been up at the first
// datagram; NetFlow v5 and v9 times are relative to its boot.
const bootAge = int64(3600e9)

// Generator encodes datagrams of one export protocol. It is not safe for
// concurrent use; give each goroutine its own.
type Generator struct {
	cfg Config
	rng *rand.PCG
	// records and counters describe the last datagram; reused.
	records  []flow.Record
	counters []flow.IfCounters
	// boot is the simulated exporter's boot time in Unix nanoseconds, set
	// by the first Append.
	boot int64
	// datagrams and sent count what was encoded so far: datagrams, and
	// data records (including options data records).
	datagrams, sent uint32
	// ifaces holds per-interface sFlow state, index ifIndex-1.
	ifaces []iface
	// nextCounter is the next interface (index) sFlow counter samples
	// start with.
	nextCounter int
}

// iface is the cumulative state an sFlow agent keeps per interface.
type iface struct {
	flowSeq, counterSeq, pool uint32
	inOctets, outOctets       uint64
	inPkts, outPkts           uint32
	multicast, broadcast      uint32
}

// New returns a generator for cfg, with zero fields set to their defaults.
func New(cfg Config) (*Generator, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Generator{
		cfg:      cfg,
		rng:      rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15),
		records:  make([]flow.Record, 0, cfg.Records),
		counters: make([]flow.IfCounters, 0, maxCounterSamples),
		ifaces:   make([]iface, cfg.Interfaces),
	}, nil
}

// Config returns the configuration with defaults applied.
func (g *Generator) Config() Config { return g.cfg }

// Append encodes the next datagram, received at now (Unix nanoseconds),
// appends it to dst and returns the result. It allocates nothing when dst
// has room for the datagram.
func (g *Generator) Append(dst []byte, now int64) []byte {
	if g.boot == 0 {
		g.boot = now - bootAge
	}
	g.records = g.records[:0]
	g.counters = g.counters[:0]
	refresh := g.datagrams%uint32(g.cfg.RefreshEvery) == 0
	switch g.cfg.Protocol {
	case NetFlowV5:
		dst = g.appendV5(dst, now)
	case NetFlowV9:
		dst = g.appendV9(dst, now, refresh)
	case IPFIX:
		dst = g.appendIPFIX(dst, now, refresh)
	case SFlow:
		dst = g.appendSFlow(dst, now, refresh)
	}
	g.datagrams++
	return dst
}

// Records returns the flow records the last datagram carries, as a
// collector should decode them: Packets and Bytes multiplied by the
// sampling rate, times in Unix nanoseconds at the precision of the wire
// format, Exporter set to Config.Exporter. The slice is reused by the next
// Append.
func (g *Generator) Records() []flow.Record { return g.records }

// Counters returns the sFlow interface counters the last datagram carries,
// with Time set to the now given to Append. The slice is reused by the next
// Append.
func (g *Generator) Counters() []flow.IfCounters { return g.counters }

// flowTemplate is the traffic of one generated flow before encoding: End is
// how many milliseconds before now the flow ended and Duration how long it
// lasted; Packets and Bytes are unscaled.
type flowTemplate struct {
	rec           flow.Record
	endAgo, durMs uint32
}

// tcpFlagSets are the flag combinations TCP flows carry.
var tcpFlagSets = [...]uint8{
	flow.TCPSyn,
	flow.TCPSyn | flow.TCPAck,
	flow.TCPAck | flow.TCPPsh,
	flow.TCPSyn | flow.TCPAck | flow.TCPPsh | flow.TCPFin,
	flow.TCPAck | flow.TCPRst,
}

// intn returns a number in [0, n), n > 0. Multiply-shift keeps it cheap;
// its bias, below 2^-32 for the n used here, does not matter for load.
func (g *Generator) intn(n int) int {
	hi, _ := bits.Mul64(g.rng.Uint64(), uint64(n))
	return int(hi)
}

// next draws the next flow.
func (g *Generator) next() flowTemplate {
	c := &g.cfg
	var f flowTemplate
	f.rec.Exporter = c.Exporter
	f.rec.Src = nthAddr(c.SrcPrefix, uint64(g.intn(c.SrcAddrs)))
	f.rec.Dst = nthAddr(c.DstPrefix, uint64(g.intn(c.DstAddrs)))
	f.rec.Proto = c.Protocols[g.intn(len(c.Protocols))]
	if f.rec.Proto == flow.ProtoTCP || f.rec.Proto == flow.ProtoUDP {
		f.rec.SrcPort = uint16(32768 + g.intn(60999-32768+1))
		f.rec.DstPort = c.Ports[g.intn(len(c.Ports))]
	}
	if f.rec.Proto == flow.ProtoTCP {
		f.rec.TCPFlags = tcpFlagSets[g.intn(len(tcpFlagSets))]
	}
	f.rec.InIf = uint32(1 + g.intn(c.Interfaces))
	f.rec.OutIf = uint32(1 + g.intn(c.Interfaces))
	f.rec.Packets = uint64(1 + g.intn(64))
	f.rec.Bytes = f.rec.Packets * uint64(40+g.intn(1461))
	f.rec.SamplingRate = c.SamplingRate
	f.rec.Source = c.Protocol.source()
	f.endAgo = uint32(g.intn(1000))
	f.durMs = uint32(g.intn(30000))
	return f
}

// scale multiplies the counts of rec by its sampling rate.
func scale(rec *flow.Record) {
	rec.Packets *= uint64(rec.SamplingRate)
	rec.Bytes *= uint64(rec.SamplingRate)
}

// uptime is the simulated exporter's uptime at now, in milliseconds.
func (g *Generator) uptime(now int64) uint32 {
	return uint32((now - g.boot) / 1e6)
}

// appendAddr appends the 4 or 16 bytes of a.
func appendAddr(dst []byte, a netip.Addr) []byte {
	if a.Is4() {
		b := a.As4()
		return append(dst, b[:]...)
	}
	b := a.As16()
	return append(dst, b[:]...)
}

// be is the byte order of every export format.
var be = binary.BigEndian
