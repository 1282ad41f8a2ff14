package pipeline

import (
	"fmt"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flowsentry/flowsentry/model"
)

// maxShards bounds the shards: a record's shards are chosen in a fixed
// array, and more shards than cores only add merging.
const maxShards = 64

func errShardCount(n int) error {
	return fmt.Errorf("pipeline: %d shards; use 1 to %d", n, maxShards)
}

// tickMsg is the coordinator's order to tick at now; last also drains the
// whole queue first and ends the shard's goroutine.
type tickMsg struct {
	now  int64
	last bool
}

// shard runs its stages over the parts routed to it. Its state belongs to
// its goroutine (or to replay's).
type shard struct {
	i       int
	stages  []Stage
	pollers []Poller
	queue   chan *part
	tick    chan tickMsg
	ack     chan struct{}
	resume  chan struct{}
	exited  chan struct{}
	current *model.Model

	queued       prometheus.Gauge
	records      prometheus.Counter
	dropped      prometheus.Counter
	batchSeconds prometheus.Observer
}

func newShard(i int, stages []Stage, queueLength int, m *metrics) *shard {
	label := strconv.Itoa(i)
	var pollers []Poller
	for _, st := range stages {
		if p, ok := st.(Poller); ok {
			pollers = append(pollers, p)
		}
	}
	return &shard{
		pollers: pollers,
		i:       i, stages: stages,
		queue:        make(chan *part, queueLength),
		tick:         make(chan tickMsg),
		ack:          make(chan struct{}),
		resume:       make(chan struct{}),
		exited:       make(chan struct{}),
		queued:       m.queued.WithLabelValues(label),
		records:      m.records.WithLabelValues(label),
		dropped:      m.dropped.WithLabelValues(label, "queue_full"),
		batchSeconds: m.batchSeconds.WithLabelValues(label),
	}
}

// submit queues pt without blocking; a full queue drops it and counts its
// records.
func (s *shard) submit(pt *part) {
	select {
	case s.queue <- pt:
		s.queued.Inc()
	default:
		s.dropped.Add(float64(len(pt.records)))
		pt.release()
	}
}

func (s *shard) full() bool { return len(s.queue) == cap(s.queue) }

// run is the shard's goroutine: it processes its queue until the
// coordinator's last tick, and polls its Pollers every poll (0: never) on
// clock now.
func (s *shard) run(holder *model.Holder, poll time.Duration, now func() int64) {
	defer close(s.exited)
	var pollC <-chan time.Time
	if poll > 0 && len(s.pollers) > 0 {
		t := time.NewTicker(poll)
		defer t.Stop()
		pollC = t.C
	}
	for {
		select {
		case <-pollC:
			if s.current != nil {
				s.poll(now())
			}
		case pt := <-s.queue:
			s.queued.Dec()
			s.process(pt)
		case t := <-s.tick:
			// What was queued before the tick counts in it (at the last
			// tick, the producers have stopped: everything left).
			for n := len(s.queue); n > 0; n-- {
				s.queued.Dec()
				s.process(<-s.queue)
			}
			s.advance(t.now, holder)
			s.ack <- struct{}{}
			<-s.resume
			if t.last {
				return
			}
		}
	}
}

// process runs the records and counter samples of pt through the stages
// and releases pt.
func (s *shard) process(pt *part) {
	s.setModel(pt.model)
	start := time.Now()
	// Stage after stage over the whole batch: each stage's code and
	// state stay in the caches for the batch, and the stages are
	// independent.
	for _, st := range s.stages {
		if b, ok := st.(BatchStage); ok {
			b.AddBatch(pt.records, pt.classes)
			continue
		}
		for i := range pt.records {
			st.AddClass(&pt.records[i], &pt.classes[i])
		}
	}
	for i := range pt.counters {
		for _, st := range s.stages {
			st.AddCounters(&pt.counters[i])
		}
	}
	s.records.Add(float64(len(pt.records)))
	s.batchSeconds.Observe(time.Since(start).Seconds())
	pt.release()
}

// advance ticks the stages at now. A shard that has seen no batch yet
// takes the holder's model, so that its stages know the traffic groups
// from the first tick.
func (s *shard) advance(now int64, holder *model.Holder) {
	if s.current == nil {
		s.setModel(holder.Load())
	}
	for _, st := range s.stages {
		st.Tick(now)
	}
}

// poll polls the Pollers at now, once the stages have a model.
func (s *shard) poll(now int64) {
	if s.current == nil {
		return
	}
	for _, p := range s.pollers {
		p.Poll(now)
	}
}

func (s *shard) setModel(m *model.Model) {
	if m == s.current {
		return
	}
	s.current = m
	for _, st := range s.stages {
		st.SetModel(m)
	}
}
