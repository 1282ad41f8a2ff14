package alert

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"time"
)

// stopFlushTimeout bounds the last commit of StopCommitting: a store that
// still fails then loses only transitions no plugin has heard of.
const stopFlushTimeout = 10 * time.Second

// enqueue appends en's transition op to the outbox; false when the outbox
// is full, in which case the caller does not apply the transition and a
// later Observe or Tick tries again. Called with e.mu held.
func (e *Engine) enqueue(en *entry, op Op) bool {
	if len(e.outbox) >= e.cfg.Outbox {
		e.metrics.deferred.Inc()
		return false
	}
	e.outbox = append(e.outbox, transition{en: en, op: op, a: en.a})
	e.metrics.outbox.Set(float64(len(e.outbox)))
	return true
}

// sealTick orders the transitions of the tick that ends (those of its
// Observe calls and its own) by policy and object. They happen at the same
// time, but the detectors report them in the order they meet their
// objects, which depends on the number of shards; sorted, new alerts get
// their IDs, and the actions their events, in the same order on every
// machine. Transitions of one alert keep their order (the sort is
// stable). Called with e.mu held.
func (e *Engine) sealTick() {
	slices.SortStableFunc(e.outbox[e.sealed:], func(a, b transition) int {
		return cmp.Or(cmp.Compare(a.a.Policy, b.a.Policy), strings.Compare(a.a.Key, b.a.Key))
	})
	e.sealed = len(e.outbox)
}

// StartCommitting starts the goroutine that commits the outbox after each
// Tick and hands the events to the Sink. Start it once the Sink is ready
// to take events (after the action dispatcher started).
func (e *Engine) StartCommitting() {
	e.commitMu.Lock()
	defer e.commitMu.Unlock()
	if e.committing {
		return
	}
	e.committing = true
	go e.commitLoop()
}

// StopCommitting stops the committer goroutine, then commits what the
// outbox still holds and hands it to the Sink: call it after the pipeline
// stopped and before the Sink stops. It is idempotent.
func (e *Engine) StopCommitting() {
	e.cancel()
	e.commitMu.Lock()
	running := e.committing
	e.committing = false
	e.commitMu.Unlock()
	if running {
		<-e.done
	}
	e.mu.Lock()
	e.sealTick() // transitions of Observe calls after the last Tick
	e.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), stopFlushTimeout)
	defer cancel()
	if err := e.Flush(ctx); err != nil {
		e.mu.Lock()
		n := len(e.outbox)
		e.mu.Unlock()
		e.log.Error("alert transitions not saved at stop; no plugin heard of them and they happen again after the restart",
			"transitions", n, "err", err)
	}
}

func (e *Engine) commitLoop() {
	defer close(e.done)
	for {
		select {
		case <-e.ctx.Done():
			return
		case <-e.wake:
		}
		_ = e.Flush(e.ctx) // a failure is counted and logged; the next Tick retries
	}
}

// Flush commits every transition of the ticks done (Tick) in the outbox,
// in transactions of at most maxCommit, and hands their events to the Sink; it returns the
// store's error when a commit fails, leaving the rest in the outbox.
// Replay and tests call it to see a tick's events at once.
func (e *Engine) Flush(ctx context.Context) error {
	e.commitMu.Lock()
	defer e.commitMu.Unlock()
	for {
		if n, err := e.commitOnce(ctx); n == 0 || err != nil {
			return err
		}
	}
}

// commitOnce commits the head of the outbox in one store transaction and
// delivers its events; it returns how many transitions it committed.
// Called with commitMu held.
func (e *Engine) commitOnce(ctx context.Context) (int, error) {
	e.mu.Lock()
	n := e.sealed // the ticks' transitions; later ones may still be sorted
	if n > maxCommit {
		n = maxCommit
	}
	e.batch = append(e.batch[:0], e.outbox[:n]...)
	for i := range e.batch {
		// A transition queued before its alert's CREATE committed has
		// no ID of its own yet.
		if t := &e.batch[i]; t.a.ID == 0 {
			t.a.ID = t.en.a.ID
		}
	}
	e.mu.Unlock()
	if n == 0 {
		return 0, nil
	}
	// One row per alert, its latest state: the store keeps alerts, not
	// transitions. rowOf maps an entry to its row, which gets the ID.
	e.rows = e.rows[:0]
	rowOf := make(map[*entry]int, n)
	for i := range e.batch {
		t := &e.batch[i]
		if r, ok := rowOf[t.en]; ok {
			*e.rows[r] = t.a
			continue
		}
		rowOf[t.en] = len(e.rows)
		row := t.a
		e.rows = append(e.rows, &row)
	}
	start := time.Now()
	if err := e.store.SaveAlerts(ctx, e.rows); err != nil {
		e.failed("commit", err)
		return 0, err
	}
	e.metrics.commitSeconds.Observe(time.Since(start).Seconds())
	if e.storeErr.Swap(nil) != nil {
		e.log.Info("alert store works again")
	}
	e.mu.Lock()
	for en, r := range rowOf {
		if en.a.ID == 0 {
			en.a.ID = e.rows[r].ID
			if !en.ended {
				e.byID[en.a.ID] = en
			}
		}
	}
	e.outbox = append(e.outbox[:0], e.outbox[n:]...)
	e.sealed = max(0, e.sealed-n)
	e.metrics.outbox.Set(float64(len(e.outbox)))
	e.mu.Unlock()
	for i := range e.batch {
		t := &e.batch[i]
		t.a.ID = e.rows[rowOf[t.en]].ID
		e.metrics.events.WithLabelValues(string(t.op)).Inc()
		e.sink.Alert(Event{Op: t.op, Alert: t.a})
		t.en = nil // let ended entries go
	}
	return n, nil
}
