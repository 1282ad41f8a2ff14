package collector

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flowsentry/flowsentry/flow"
)

// shedPause is the step in which a worker waits for room in the shards.
const shedPause = 100 * time.Microsecond

// maxSubmitWait is how long a worker waits for room in the shards before
// it drops (a decoded batch, or a datagram without templates).
const maxSubmitWait = 100 * time.Millisecond

// maxOtherCache bounds a worker's memory of exporters labelled "other".
const maxOtherCache = 4096

// Log messages.
const (
	msgDecodeError = "datagram rejected"
	msgReadError   = "socket read failed"
)

// worker reads one socket and decodes its datagrams into batches for the
// sink. Everything but mu and stopAt belongs to the worker's goroutine.
type worker struct {
	name string
	conn *net.UDPConn
	dec  decoder
	sink Sink
	// full, when the sink has it, says that the sink would refuse a
	// batch: the worker then waits for room before it decodes (see
	// handle).
	full   func() bool
	m      *metrics
	labels *exporterLabels
	errs   *errorLog
	flush  time.Duration

	reader *batchReader
	// batch is being filled; batchStart is when its first datagram came,
	// batchDatagrams how many datagrams added to it.
	batch          *flow.Batch
	batchStart     time.Time
	batchDatagrams int
	// drops is the socket drop count the kernel last reported.
	drops uint32

	// exporters caches the metrics of exporters with their own label;
	// others remembers exporters labelled "other", whose metrics are other.
	exporters map[netip.Addr]*exporterMetrics
	others    map[netip.Addr]struct{}
	other     *exporterMetrics

	dropQueue, dropRecords, dropSocket, readErrors prometheus.Counter

	// mu guards stopAt, the read deadline Stop set (zero before Stop), and
	// the socket's read deadline.
	mu     sync.Mutex
	stopAt time.Time
}

func newWorker(name string, conn *net.UDPConn, dec decoder, c *Collector) (*worker, error) {
	reader, err := newBatchReader(conn)
	if err != nil {
		return nil, err
	}
	var full func() bool
	if f, ok := c.sink.(interface{ Full() bool }); ok {
		full = f.Full
	}
	return &worker{
		full:        full,
		name:        name,
		conn:        conn,
		reader:      reader,
		dec:         dec,
		sink:        c.sink,
		m:           c.m,
		labels:      c.labels,
		errs:        c.errs,
		flush:       c.cfg.FlushInterval,
		batch:       flow.NewBatch(),
		exporters:   make(map[netip.Addr]*exporterMetrics),
		others:      make(map[netip.Addr]struct{}),
		dropQueue:   c.m.drops.WithLabelValues(dropQueueFull),
		dropRecords: c.m.droppedRecords.WithLabelValues(dropQueueFull),
		dropSocket:  c.m.drops.WithLabelValues(dropSocket),
		readErrors:  c.m.readErrors.WithLabelValues(name),
	}, nil
}

// run reads datagrams until Stop, then hands over the partial batch.
func (w *worker) run() {
	defer w.flushBatch()
	for {
		d, err := w.reader.Next()
		if err != nil {
			if w.readFailed(err) {
				return
			}
			continue
		}
		if drops, ok := socketDrops(d.oob); ok {
			w.dropSocket.Add(float64(drops - w.drops)) // wraps like the kernel's counter
			w.drops = drops
		}
		w.handle(d.src.Addr().Unmap(), d.received, d.payload)
	}
}

// readFailed handles a read error and reports whether the worker must end.
func (w *worker) readFailed(err error) bool {
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		if w.stopping() {
			return true
		}
		w.flushBatch() // the flush interval has passed
		return false
	case errors.Is(err, net.ErrClosed):
		return true
	}
	w.readErrors.Inc()
	w.errs.report(msgReadError, w.name, netip.Addr{}, "read", err, time.Now())
	return false
}

// handle decodes one datagram from exporter received at now into the
// batch, counts it, and hands the batch over when full. While the sink is
// full it sheds load first: the worker waits for room without reading, so
// that the kernel drops what the socket cannot hold, at no cost to the
// process; when there is still none, a datagram without templates is
// dropped undecoded (counted as a queue_full drop): an overloaded server
// spends its CPU on the records it can take.
func (w *worker) handle(exporter netip.Addr, now time.Time, payload []byte) {
	if w.full != nil && !w.waitRoom() && !w.dec.templates(payload) {
		w.dropQueue.Inc()
		return
	}
	b := w.batch
	nRecords, nCounters := len(b.Records), len(b.Counters)
	st, err := w.dec.decode(exporter, now.UnixNano(), payload, b)
	e := w.exporter(exporter)
	e.count(st)
	if err != nil {
		reason := "unknown"
		if de, ok := errors.AsType[*flow.DecodeError](err); ok {
			reason = de.Reason
		}
		e.decodeError(reason)
		w.errs.report(msgDecodeError, w.name, exporter, reason, err, now)
	}
	if len(b.Records) == nRecords && len(b.Counters) == nCounters {
		return
	}
	w.batchDatagrams++
	if nRecords == 0 && nCounters == 0 {
		w.batchStart = now
		w.setDeadline(now.Add(w.flush))
	}
	if len(b.Records) >= flow.BatchSize || len(b.Counters) >= flow.BatchSize {
		w.flushBatch()
	}
}

// flushBatch clears the flush deadline and hands the batch, if not empty,
// to the sink; when the sink is full, the batch is dropped and counted.
func (w *worker) flushBatch() {
	w.setDeadline(time.Time{})
	b := w.batch
	if len(b.Records) == 0 && len(b.Counters) == 0 {
		return
	}
	w.batch = flow.NewBatch()
	if w.submit(b) {
		w.m.batchDelay.Observe(time.Since(w.batchStart).Seconds())
	} else {
		w.dropQueue.Add(float64(w.batchDatagrams))
		w.dropRecords.Add(float64(len(b.Records)))
		b.Release()
	}
	w.batchDatagrams = 0
}

// submit hands b to the sink. A sink that tells when it is full gets a
// little time to make room (the socket buffers meanwhile) before the batch
// is dropped: a short stall is better lost by the kernel, which costs
// nothing, than by dropping decoded records.
func (w *worker) submit(b *flow.Batch) bool {
	for !w.sink.Submit(b) {
		if w.full == nil || !w.waitRoom() {
			return false
		}
	}
	return true
}

// waitRoom waits, in steps of shedPause and for maxSubmitWait at most,
// until the sink is no longer full; false when it still is, or when the
// worker stops.
func (w *worker) waitRoom() bool {
	var start time.Time
	for w.full() {
		if start.IsZero() {
			start = time.Now()
		} else if time.Since(start) >= maxSubmitWait || w.stopping() {
			return false
		}
		time.Sleep(shedPause)
	}
	return true
}

// exporter returns the metrics of exporter a.
func (w *worker) exporter(a netip.Addr) *exporterMetrics {
	if e, ok := w.exporters[a]; ok {
		return e
	}
	if _, ok := w.others[a]; !ok {
		label, own := w.labels.label(a)
		if own {
			e := newExporterMetrics(w.m, label)
			w.exporters[a] = e
			return e
		}
		if len(w.others) >= maxOtherCache {
			clear(w.others)
		}
		w.others[a] = struct{}{}
	}
	if w.other == nil {
		w.other = newExporterMetrics(w.m, otherExporter)
	}
	return w.other
}

// setDeadline sets the socket's read deadline to t (zero for none), or
// keeps the one Stop set.
func (w *worker) setDeadline(t time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.stopAt.IsZero() {
		return
	}
	// A deadline cannot fail on an open socket; on a closed one the next
	// read ends the worker.
	_ = w.conn.SetReadDeadline(t)
}

// stop makes the worker end once it has read what the socket holds, or at
// the latest at t.
func (w *worker) stop(t time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stopAt = t
	_ = w.conn.SetReadDeadline(t)
}

// stopping reports whether stop was called.
func (w *worker) stopping() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return !w.stopAt.IsZero()
}
