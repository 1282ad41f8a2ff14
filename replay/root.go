// Package replay feeds a pcap or pcapng capture through the same pipeline
// serve uses, on the capture's own clock: NetFlow, IPFIX and sFlow
// datagrams found in the capture are decoded as a collector would decode
// them, every other packet goes through the packet meter, which turns
// packets into flows as a probe does. A UDP datagram is an export datagram
// when it goes to a configured export port, or, on any other port, when its
// content is one (see sniff).
package replay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/flowsentry/flowsentry/collector/netflow"
	"github.com/flowsentry/flowsentry/collector/sflow"
	"github.com/flowsentry/flowsentry/flow"
)

// Sink receives what a replay produces — the same pipeline serve uses.
// Replay calls it from one goroutine. Within a Run, the times of Advance
// and Poll together never decrease.
type Sink interface {
	// Process takes ownership of b (it calls b.Release()).
	Process(b *flow.Batch)
	// Advance says the capture clock moved to now (Unix ns), the start of
	// a second: windows close. Replay calls it once per second from the
	// first packet on, skipping only the seconds of a gap after the rates'
	// windows have closed over the traffic before it, and once at the end.
	Advance(now int64)
	// Poll says the capture clock moved to now (Unix ns), between two
	// seconds: what serve's shards do every poll interval (detectors
	// report an attack as it crosses its threshold). Replay calls it every
	// Config.PollInterval of capture time after each second it advances
	// to (at sec+i, sec+2i, ... before the next second), after handing
	// over the records of the packets up to now; never when
	// Config.PollInterval is 0.
	Poll(now int64)
}

// Stats count what one Run read and produced.
type Stats struct {
	// Packets is the number of packets read from the capture.
	Packets uint64
	// Metered is the number of IP packets the meter counted into flows.
	Metered uint64
	// Skipped counts, by reason (the *flow.DecodeError reason such as
	// "not_ip", or "link_type"), the packets that made neither a flow nor
	// an export datagram.
	Skipped map[string]uint64
	// Evicted is the number of flows the meter emitted early because it
	// held MaxFlows flows.
	Evicted uint64
	// Datagrams counts the export datagrams by protocol: sFlow by its
	// port, NetFlow v5, v9 and IPFIX by their version field
	// (SourceUnknown when it is missing or unknown).
	Datagrams map[flow.Source]uint64
	// DecodeErrors counts, by reason, the export datagrams the decoders
	// rejected in whole or in part.
	DecodeErrors map[string]uint64
	// Records is the number of flow records handed to the sink, metered
	// and decoded together; the meter's interim reports count each.
	Records uint64
	// Counters is the number of sFlow interface counter samples handed to
	// the sink.
	Counters uint64
}

// Port kinds in the Replayer's port table.
const (
	portMeter uint8 = iota
	portNetFlow
	portSFlow
)

// second is one second in Unix nanoseconds.
const second = int64(time.Second)

// Replayer reads captures and feeds their flows to a Sink. It is not safe
// for concurrent use. NetFlow v9 and IPFIX templates learned during one Run
// are kept for the next, so a capture holding only templates can be
// replayed before the capture holding the data; each Run has its own
// clock.
type Replayer struct {
	sink     Sink
	log      *slog.Logger
	inactive int64
	// tail is how many seconds after the second of the last packet the
	// clock still ticks each second: the rates window and one more, so
	// that every window holding that packet is evaluated.
	tail int64
	// pollStep is the poll interval in ns; 0: none between seconds.
	pollStep int64
	ports    [1 << 16]uint8
	meter    *flow.Meter
	netflow  *netflow.Decoder
	sflow    *sflow.Decoder
	// wallClock times the progress bar; tests replace it.
	wallClock func() time.Time

	// Reused between packets.
	records []flow.Record
	sampled flow.Batch

	// State of the current Run.
	stats    Stats
	batch    *flow.Batch
	nextTick int64 // the next second to advance to
	nextPoll int64 // the next poll, nextTick when none is due before it
	lastTime int64
	started  bool
}

// New validates cfg and builds a Replayer that hands its batches to sink.
// log receives one warning per kind of decode error and Run; nil discards.
func New(cfg Config, sink Sink, log *slog.Logger) (*Replayer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if sink == nil {
		return nil, errors.New("replay: no sink to hand the flows to")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Replayer{
		sink:      sink,
		log:       log,
		meter:     flow.NewMeter(cfg.meterConfig()),
		netflow:   netflow.NewDecoder(netflow.NewTemplates(cfg.Templates)),
		sflow:     sflow.NewDecoder(),
		wallClock: time.Now,
		records:   make([]flow.Record, 0, flow.BatchSize),
	}
	r.inactive = int64(r.meter.Config().InactiveTimeout)
	r.tail = int64(cfg.ratesWindow()) + second
	r.pollStep = cfg.pollStep()
	for _, p := range cfg.NetFlowPorts {
		r.ports[p] = portNetFlow
	}
	for _, p := range cfg.SFlowPorts {
		r.ports[p] = portSFlow
	}
	return r, nil
}

// Run replays the capture at path on the capture's clock, ticking each
// second as a live collector does: at the start of each second, the meter
// expires its flows and reports the packets of the others since the last
// report (so traffic reaches the rates within a second of capture time),
// the sink gets what is queued, then Advance(start of that second). Every
// Config.PollInterval between the seconds, the meter reports the packets
// since its last report, the sink gets them, then Poll(that time): the
// records of an interval reach the detectors in that interval, as they
// would live. In a gap between packets the seconds (and their polls) are
// ticked until the rates window and one more second have passed since the
// last packet's second, then the clock jumps to the next packet. Run stops at the end of the file, at the
// first unreadable record, or when ctx is done; in every case the flows
// gathered so far are flushed to the sink before it returns, followed by
// the same ticks through the last windows and a last Advance to at least
// the time of the last packet + the inactive timeout + 1 s, the moment a
// probe would have exported the last flows (no Advance at all when the
// capture holds no packet). When progress is not nil and the replay takes
// more than 2 s, a progress line is drawn on it and erased at the end.
func (r *Replayer) Run(ctx context.Context, path string, progress io.Writer) (Stats, error) {
	f, err := os.Open(path)
	if err != nil {
		return Stats{}, fmt.Errorf("replay: %w", err)
	}
	defer f.Close()
	c, err := OpenCapture(f)
	if err != nil {
		return Stats{}, fmt.Errorf("%s: %w", path, err)
	}
	r.stats = Stats{Skipped: map[string]uint64{}, Datagrams: map[flow.Source]uint64{}, DecodeErrors: map[string]uint64{}}
	r.started = false
	evicted := r.meter.Stats().Evicted

	var size int64
	if fi, err := f.Stat(); err == nil {
		size = fi.Size()
	}
	bar := newProgressBar(progress, filepath.Base(path), size, r.wallClock)
	var runErr error
	for {
		if r.stats.Packets%1024 == 0 {
			if err := ctx.Err(); err != nil {
				runErr = fmt.Errorf("%s: replay stopped after %d packets: %w", path, r.stats.Packets, err)
				break
			}
			bar.update(c.Offset(), r.stats.Packets)
		}
		off := c.Offset()
		p, err := c.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			runErr = fmt.Errorf("%s: %s capture is cut short or corrupt from byte offset %d on; the %d packets before were replayed: %w", path, c.Format(), off, r.stats.Packets, err)
			break
		}
		r.stats.Packets++
		r.packet(p)
	}
	bar.clear()
	r.finish()
	r.stats.Evicted = r.meter.Stats().Evicted - evicted
	return r.stats, runErr
}

// packet routes one packet to a decoder or the meter, after moving the
// clock.
func (r *Replayer) packet(p Packet) {
	if !r.started {
		r.started, r.lastTime = true, p.Time
		r.tick(secondOf(p.Time))
	}
	if p.Time >= r.nextPoll {
		r.clockTo(p.Time)
	}
	r.lastTime = max(r.lastTime, p.Time)
	link, ok := flowLink(p.LinkType)
	if !ok {
		r.stats.Skipped[flow.ErrLinkType.Reason]++
		return
	}
	if src, port, payload, ok := flow.UDPPayload(p.Data, link); ok {
		kind := r.ports[port]
		if kind == portMeter {
			kind = sniff(payload)
		}
		if kind != portMeter {
			r.datagram(kind, src, p.Time, payload)
			return
		}
	}
	if err := r.meter.Packet(p.Time, p.Data, link); err != nil {
		r.stats.Skipped[reason(err)]++
		return
	}
	r.stats.Metered++
}

// datagram decodes one export datagram and queues its records.
func (r *Replayer) datagram(kind uint8, exporter netip.Addr, now int64, payload []byte) {
	var err error
	if kind == portSFlow {
		r.stats.Datagrams[flow.SourceSFlow]++
		r.sampled.Records, r.sampled.Counters = r.sampled.Records[:0], r.sampled.Counters[:0]
		_, err = r.sflow.Decode(now, payload, &r.sampled)
		r.emit(r.sampled.Records)
		r.emitCounters(r.sampled.Counters)
	} else {
		var st netflow.Stats
		r.records, st, err = r.netflow.Decode(exporter, now, payload, r.records[:0])
		r.stats.Datagrams[netflowSource(st.Version)]++
		r.emit(r.records)
	}
	if err != nil {
		why := reason(err)
		r.stats.DecodeErrors[why]++
		if r.stats.DecodeErrors[why] == 1 {
			r.log.Warn("export datagram rejected", "reason", why, "exporter", exporter, "packet", r.stats.Packets, "err", err)
		}
	}
}

// netflowSource tells NetFlow v5, v9 and IPFIX apart by the version field.
func netflowSource(version uint16) flow.Source {
	switch version {
	case 5:
		return flow.SourceNetFlowV5
	case 9:
		return flow.SourceNetFlowV9
	case 10:
		return flow.SourceIPFIX
	}
	return flow.SourceUnknown
}

// reason is the metric label of a decoder or parser error.
func reason(err error) string {
	if de, ok := errors.AsType[*flow.DecodeError](err); ok {
		return de.Reason
	}
	return "other"
}

// secondOf returns the start of the second holding t (Unix ns).
func secondOf(t int64) int64 {
	sec := t - t%second
	if t < 0 && t%second != 0 {
		sec -= second
	}
	return sec
}

// quiet is the last second ticked after the last packet: by then every
// rates window holding it has been evaluated.
func (r *Replayer) quiet() int64 { return secondOf(r.lastTime) + r.tail }

// clockTo runs the polls and ticks due at or before t: every second up to
// the quiet one after the last packet, with its polls, then the second of
// t when the clock jumps over a gap, and its polls up to t.
func (r *Replayer) clockTo(t int64) {
	for r.nextPoll <= t {
		if r.nextPoll < r.nextTick {
			r.poll(r.nextPoll)
			continue
		}
		s := r.nextTick
		if s > r.quiet() {
			s = secondOf(t)
		}
		r.tick(s)
	}
}

// tick moves the clock to sec, the start of a second: it expires flows,
// reports the others' new packets, hands the sink what is queued, then
// advances the sink.
func (r *Replayer) tick(sec int64) {
	r.nextTick = sec + second
	r.nextPoll = r.nextTick
	if r.pollStep > 0 {
		r.nextPoll = sec + r.pollStep
	}
	r.records = r.meter.Expire(sec, r.records[:0])
	r.records = r.meter.Report(r.records)
	r.emit(r.records)
	r.flush()
	r.sink.Advance(sec)
}

// poll moves the clock to now, between two seconds: the meter reports its
// flows' new packets, the sink gets what is queued, then is polled.
func (r *Replayer) poll(now int64) {
	r.nextPoll = min(now+r.pollStep, r.nextTick)
	r.records = r.meter.Report(r.records[:0])
	r.emit(r.records)
	r.flush()
	r.sink.Poll(now)
}

// finish flushes the meter, ticks (and polls) through the capture's last
// windows and closes them.
func (r *Replayer) finish() {
	r.records = r.meter.Flush(r.records[:0])
	r.emit(r.records)
	r.flush()
	if !r.started {
		return
	}
	end := max(r.lastTime+r.inactive+second, r.quiet())
	for {
		if r.nextPoll < r.nextTick {
			if r.nextPoll >= end {
				break
			}
			r.poll(r.nextPoll)
			continue
		}
		if r.nextTick >= end || r.nextTick > r.quiet() {
			break
		}
		r.tick(r.nextTick)
	}
	r.sink.Advance(end)
}

// emit queues records, handing each full batch to the sink.
func (r *Replayer) emit(recs []flow.Record) {
	for len(recs) > 0 {
		if r.batch == nil {
			r.batch = flow.NewBatch()
		}
		n := min(len(recs), flow.BatchSize-len(r.batch.Records))
		r.batch.Records = append(r.batch.Records, recs[:n]...)
		recs = recs[n:]
		if len(r.batch.Records) == flow.BatchSize {
			r.flush()
		}
	}
}

// emitCounters queues interface counter samples.
func (r *Replayer) emitCounters(cs []flow.IfCounters) {
	if len(cs) == 0 {
		return
	}
	if r.batch == nil {
		r.batch = flow.NewBatch()
	}
	r.batch.Counters = append(r.batch.Counters, cs...)
}

// flush hands the current batch to the sink.
func (r *Replayer) flush() {
	if r.batch == nil {
		return
	}
	r.stats.Records += uint64(len(r.batch.Records))
	r.stats.Counters += uint64(len(r.batch.Counters))
	r.sink.Process(r.batch)
	r.batch = nil
}
