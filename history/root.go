// Package history keeps the per-minute average and peak of every flow
// counter (packets, bytes and new connections, in and out) of the traffic
// groups, the exporter interfaces and the port lines, for
// history.retention (7 days by default), in the store: the numbers an
// operator sets thresholds from.
//
// # What is recorded
//
// Every TGRP and EXPORTER_ADDR+IFINDEX object, and the TGRP+PROTO+PORT and
// EXPORTER_ADDR+IFINDEX+PROTO+PORT objects of the port lines: the
// protocol and port that a port_threshold policy of that object type
// names (any traffic group or interface, any partition; a policy with
// proto 0 names the port in every protocol). A policy on any port (port
// 0) adds no line: recording every port would fill the cap with
// ephemeral noise.
//
// # How
//
// Record runs on the pipeline's goroutine after each tick's merge. It adds
// each object's current rate (rates.Object.Cur, the last window's) to its
// series' sum and raises its maximum; when the minute changes, the
// minute's Batch (sum / ticks of the minute, and the maximum) goes to a
// writer goroutine over a short queue, so a slow disk never holds the
// tick: when the queue is full the minute is dropped and counted. A
// failed write is logged, counted and retried before the next minute's,
// for up to maxPending minutes. Every hour (of recorded time) the writer
// prunes hours older than Retention, and series with nothing since.
//
// At most MaxSeries series are held, stored ones included: a new series
// beyond is refused and counted each minute it is seen. A minute without a
// record means the object was idle (dropped by the rate engine) or nothing
// was recording.
//
// # Size
//
// The store keeps one row per series and hour, its minutes appended as 49
// bytes each (the minute, then twelve float32 values): 2940 bytes an hour,
// one 4 KiB page. Measured by the store's TestHistorySize: 98.7 KB per
// series per day when busy every minute, so 200 traffic groups + 100
// interfaces + 200 port lines over 7 days take about 345 MB (less for
// series idle part of the day).
package history

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flowsentry/flowsentry/detect/threshold"
	"github.com/flowsentry/flowsentry/policy"
	"github.com/flowsentry/flowsentry/rates"
)

const (
	// queueLength is how many minutes may wait for the writer.
	queueLength = 4
	// maxPending is how many failed minutes are kept for a retry.
	maxPending = 10
	// pruneEvery is how often (in recorded time) old history is pruned.
	pruneEvery = time.Hour
	// storeTimeout bounds one store call.
	storeTimeout = 30 * time.Second
)

// Store persists the history (*store.Store).
type Store interface {
	// WriteHistory stores one minute of every series in b.
	WriteHistory(ctx context.Context, b Batch) error
	// PruneHistory deletes the minutes before before, and returns the
	// series left with none.
	PruneHistory(ctx context.Context, before time.Time) ([]rates.Key, error)
	// HistorySeries returns the key of every stored series.
	HistorySeries(ctx context.Context) ([]rates.Key, error)
}

// Objects are the rate objects as of a tick (*rates.Shards after Merge).
type Objects interface {
	// Each calls fn for every object of kind k.
	Each(k rates.Kind, fn func(o *rates.Object))
}

// Deps are the recorder's dependencies.
type Deps struct {
	// Store keeps the history.
	Store Store
	// Policies returns the policies in force, whose port_threshold
	// policies name the port lines; nil records no port line.
	Policies func() *policy.Set
	// Registerer takes the metrics; nil registers none.
	Registerer prometheus.Registerer
	// Log is the logger.
	Log *slog.Logger
}

// Recorder records the history. Record belongs to the pipeline's
// goroutine; Start and Stop to the caller's, Stop after the pipeline
// stopped.
type Recorder struct {
	cfg Config
	d   Deps
	m   *metrics

	// The pipeline goroutine's: the minute accumulated (Unix minutes),
	// its ticks, its series, the series refused in it, the port lines.
	minute  int64
	ticks   int
	acc     map[rates.Key]*sums
	refused map[rates.Key]struct{}
	lines   map[line]struct{}
	observe func(o *rates.Object)

	// known are the series held, against MaxSeries; the writer removes
	// the pruned ones.
	mu    sync.Mutex
	known map[rates.Key]struct{}

	batches   chan Batch
	done      chan struct{}
	started   bool
	stopOnce  sync.Once
	pending   []Batch // the writer's failed batches, oldest first
	lastPrune time.Time
}

// sums are one series' sums and maxima of the minute.
type sums struct {
	sum [NumCounters]float64
	max [NumCounters]float64
}

// line is a port line: an object kind, protocol (0: any) and port.
type line struct {
	kind  rates.Kind
	proto uint8
	port  uint16
}

// New validates cfg and builds a recorder; it opens nothing.
func New(cfg Config, d Deps) (*Recorder, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	r := &Recorder{
		cfg: cfg, d: d,
		acc:     map[rates.Key]*sums{},
		refused: map[rates.Key]struct{}{},
		known:   map[rates.Key]struct{}{},
		batches: make(chan Batch, queueLength),
		done:    make(chan struct{}),
	}
	r.observe = r.add
	var err error
	r.m, err = newMetrics(d.Registerer, func() float64 {
		r.mu.Lock()
		defer r.mu.Unlock()
		return float64(len(r.known))
	})
	if err != nil {
		return nil, err
	}
	return r, nil
}

// Start loads the stored series (which count against MaxSeries) and
// starts the writer.
func (r *Recorder) Start() error {
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	keys, err := r.d.Store.HistorySeries(ctx)
	if err != nil {
		return err
	}
	r.mu.Lock()
	for _, k := range keys {
		r.known[k] = struct{}{}
	}
	r.mu.Unlock()
	r.started = true
	go r.write()
	return nil
}

// Stop writes the minute begun, as far as it went, and waits for the
// writer. It is idempotent and safe when Start never ran.
func (r *Recorder) Stop() {
	r.stopOnce.Do(func() {
		if !r.started {
			return
		}
		r.roll()
		close(r.batches)
		<-r.done
	})
}

// Record adds the objects' current rates at now (Unix ns) to the minute;
// a new minute first hands the last one to the writer. It never waits on
// the store.
func (r *Recorder) Record(now int64, objs Objects) {
	minute := now / int64(time.Minute)
	if now < 0 && now%int64(time.Minute) != 0 {
		minute--
	}
	if minute != r.minute {
		r.roll()
		r.minute = minute
		r.lines = r.portLines()
	}
	r.ticks++
	objs.Each(rates.KindGroup, r.observe)
	objs.Each(rates.KindInterface, r.observe)
	if len(r.lines) > 0 {
		objs.Each(rates.KindGroupPort, r.observe)
		objs.Each(rates.KindInterfacePort, r.observe)
	}
}

// add adds o's current rates to its series.
func (r *Recorder) add(o *rates.Object) {
	k := o.Key()
	if k.Kind == rates.KindGroupPort || k.Kind == rates.KindInterfacePort {
		_, anyProto := r.lines[line{k.Kind, 0, k.Port}]
		if _, one := r.lines[line{k.Kind, k.Proto, k.Port}]; !anyProto && !one {
			return
		}
	}
	s := r.acc[k]
	if s == nil {
		if !r.admit(k) {
			return
		}
		s = new(sums)
		r.acc[k] = s
	}
	for c := range NumCounters {
		v := o.Cur(rates.Counter(c))
		s.sum[c] += v
		s.max[c] = max(s.max[c], v)
	}
}

// admit reports whether series k may be recorded, holding it if so.
func (r *Recorder) admit(k rates.Key) bool {
	if _, ok := r.refused[k]; ok {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.known[k]; ok {
		return true
	}
	if len(r.known) >= r.cfg.MaxSeries {
		r.refused[k] = struct{}{}
		r.m.refused.Inc()
		return false
	}
	r.known[k] = struct{}{}
	return true
}

// roll hands the minute accumulated to the writer and starts afresh.
func (r *Recorder) roll() {
	if len(r.acc) > 0 && r.ticks > 0 {
		b := Batch{Time: time.Unix(r.minute*60, 0).UTC(), Entries: make([]Entry, 0, len(r.acc))}
		n := float64(r.ticks)
		for k, s := range r.acc {
			e := Entry{Key: k}
			for c := range NumCounters {
				e.Avg[c], e.Peak[c] = float32(s.sum[c]/n), float32(s.max[c])
			}
			b.Entries = append(b.Entries, e)
		}
		select {
		case r.batches <- b:
		default:
			r.m.droppedFull.Inc()
		}
	}
	clear(r.acc)
	clear(r.refused)
	r.ticks = 0
}

// portLines returns the port lines of the policies in force.
func (r *Recorder) portLines() map[line]struct{} {
	if r.d.Policies == nil {
		return nil
	}
	set := r.d.Policies()
	if set == nil {
		return nil
	}
	lines := map[line]struct{}{}
	for _, p := range set.All() {
		if p.Family != threshold.PortFamily {
			continue
		}
		tp := threshold.Of(&p)
		if tp == nil || tp.Port == 0 {
			continue
		}
		switch p.Object {
		case policy.ObjectGroupPort:
			lines[line{rates.KindGroupPort, tp.Proto, tp.Port}] = struct{}{}
		case policy.ObjectInterfacePort:
			lines[line{rates.KindInterfacePort, tp.Proto, tp.Port}] = struct{}{}
		}
	}
	return lines
}

// write stores the batches as they come, retrying failed ones first, and
// prunes every pruneEvery.
func (r *Recorder) write() {
	defer close(r.done)
	for b := range r.batches {
		r.pending = append(r.pending, b)
		if len(r.pending) > maxPending {
			r.pending = r.pending[1:]
			r.m.droppedRetry.Inc()
		}
		for len(r.pending) > 0 {
			ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
			err := r.d.Store.WriteHistory(ctx, r.pending[0])
			cancel()
			if err != nil {
				r.m.writeErrors.Inc()
				r.d.Log.Warn("history not written; retrying with the next minute", "minute", r.pending[0].Time, "pending", len(r.pending), "err", err)
				break
			}
			r.m.written.Inc()
			r.pending = r.pending[1:]
		}
		if b.Time.Sub(r.lastPrune) >= pruneEvery {
			r.prune(b.Time)
		}
	}
}

// prune deletes the history older than Retention before now and forgets
// the series left empty.
func (r *Recorder) prune(now time.Time) {
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	gone, err := r.d.Store.PruneHistory(ctx, now.Add(-r.cfg.Retention))
	if err != nil {
		r.d.Log.Warn("history not pruned; retrying in a minute", "err", err)
		return
	}
	r.lastPrune = now
	r.m.pruned.Add(float64(len(gone)))
	r.mu.Lock()
	for _, k := range gone {
		delete(r.known, k)
	}
	r.mu.Unlock()
}
