// Package model holds the configured network: partitions, traffic groups,
// internal (INT) blocks, exporter interface names and blacklists. Build
// turns a Config into an immutable Model whose prefix tables answer the hot
// path's look-ups without locks; a Holder publishes the Model in use, and a
// Refresher re-reads blacklist files that changed and swaps in refreshed
// snapshots.
//
// Reload (SIGHUP) is config.Load followed by Build and Holder.Store: either
// step failing leaves the model in use untouched.
package model

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// RefresherDeps are what a Refresher works with.
type RefresherDeps struct {
	// Holder holds the model whose blacklists are refreshed; required.
	Holder *Holder
	// Logger receives refresh failures; nil discards them.
	Logger *slog.Logger
	// Registerer receives the metrics; nil leaves them unregistered.
	Registerer prometheus.Registerer
	// Tick delivers the times at which blacklists due for a refresh are
	// re-read; nil means a ticker firing every second, started by Start.
	Tick <-chan time.Time
}

// Refresher checks each blacklist file every Blacklist.Refresh and stores a
// snapshot holding the new entries when the file changed. A file whose size
// and mtime did not change is not opened, one whose content did not change
// is not parsed, and neither rebuilds the model. When a file cannot be read
// or has a bad line, the previous entries stay in use, the error is logged
// and flowsentry_model_blacklist_errors_total{blacklist=NAME} is
// incremented; the file is tried again one period later. Every due check is
// counted in flowsentry_model_blacklist_refreshes_total by its result.
//
// The refresher never overwrites a model stored by someone else meanwhile
// (a reload): that model was built from freshly read files.
type Refresher struct {
	holder  *Holder
	logger  *slog.Logger
	metrics metrics
	tick    <-chan time.Time

	// next is when each blacklist, by ID, is due; only the refresh
	// goroutine touches it.
	next map[uint32]schedule

	mu      sync.Mutex
	started bool
	cancel  context.CancelFunc
	done    chan struct{}
}

// schedule is when a blacklist is due, and for which file and period that
// was computed, so that a reload changing either starts over; and what the
// file was when last checked.
type schedule struct {
	file  string
	every time.Duration
	at    time.Time
	watch fileWatch
}

// NewRefresher returns a stopped Refresher.
func NewRefresher(deps RefresherDeps) (*Refresher, error) {
	if deps.Holder == nil {
		return nil, errors.New("blacklist refresher: no model holder given")
	}
	m, err := newMetrics(deps.Registerer)
	if err != nil {
		return nil, err
	}
	logger := deps.Logger
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Refresher{
		holder:  deps.Holder,
		logger:  logger,
		metrics: m,
		tick:    deps.Tick,
		next:    make(map[uint32]schedule),
	}, nil
}

// Start starts refreshing in a goroutine.
func (r *Refresher) Start() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.started {
		return errors.New("blacklist refresher: already started; create a new one")
	}
	r.started = true
	tick, stopTicker := r.tick, func() {}
	if tick == nil {
		t := time.NewTicker(time.Second)
		tick, stopTicker = t.C, t.Stop
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel, r.done = cancel, make(chan struct{})
	go func() {
		defer close(r.done)
		defer stopTicker()
		for {
			select {
			case <-ctx.Done():
				return
			case now, ok := <-tick:
				if !ok {
					return
				}
				r.refresh(now)
			}
		}
	}()
	return nil
}

// Stop stops refreshing and waits for a refresh in progress to end. It is
// idempotent and safe when Start never ran.
func (r *Refresher) Stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cancel == nil {
		return
	}
	r.cancel()
	<-r.done
	r.cancel = nil
}

// refresh re-reads the blacklists due at now and stores the result.
func (r *Refresher) refresh(now time.Time) {
	m := r.holder.Load()
	if m == nil {
		return
	}
	for id := range r.next {
		if !slices.ContainsFunc(m.Blacklists, func(b Blacklist) bool { return b.ID == id }) {
			delete(r.next, id)
		}
	}
	var lists []Blacklist // copied on the first change
	for i, b := range m.Blacklists {
		if b.Refresh == 0 {
			continue
		}
		s, ok := r.next[b.ID]
		if !ok || s.file != b.File || s.every != b.Refresh {
			// Just built from the file: due one period from now.
			r.next[b.ID] = schedule{file: b.File, every: b.Refresh, at: now.Add(b.Refresh), watch: newFileWatch(b.entries)}
			continue
		}
		if now.Before(s.at) {
			continue
		}
		s.at = now.Add(b.Refresh)
		if s.watch.inUse != b.entries {
			// A reload read the file again.
			s.watch = newFileWatch(b.entries)
		}
		e, err := s.watch.reread(b.File)
		r.next[b.ID] = s
		switch {
		case err != nil:
			r.metrics.refreshes.WithLabelValues(b.Name, resultFailed).Inc()
			r.metrics.errors.WithLabelValues(b.Name).Inc()
			r.logger.Warn("blacklist refresh failed; the previous entries stay in use",
				"blacklist", b.Name, "err", err)
		case e == nil:
			r.metrics.refreshes.WithLabelValues(b.Name, resultUnchanged).Inc()
		default:
			r.metrics.refreshes.WithLabelValues(b.Name, resultReloaded).Inc()
			if lists == nil {
				lists = slices.Clone(m.Blacklists)
			}
			lists[i].entries = e
		}
	}
	if lists != nil {
		r.holder.p.CompareAndSwap(m, m.withBlacklists(lists))
	}
}
