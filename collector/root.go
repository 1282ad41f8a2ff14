// Package collector receives flow exports over UDP: NetFlow v5, NetFlow v9
// and IPFIX on "netflow" listeners, sFlow v5 on "sflow" listeners.
//
// Each listener has several workers. A worker owns a socket bound with
// SO_REUSEPORT to the listener's address (the kernel spreads exporters over
// the sockets), reads it with recvmmsg, up to 16 datagrams per system call,
// and owns its decoders, its buffers and the batch it fills; it hands
// batches to a Sink when they are full or after the flush interval. NetFlow
// v9 / IPFIX templates are shared by all workers. Nothing is allocated per
// datagram in steady state. Start refuses a port another socket already
// holds: a second flowsentry would otherwise take a share of the exporters.
//
// The collector counts datagrams, records, decode errors, template events
// and losses per exporter (the UDP source address, with a bounded number of
// label values), reads the kernel's per-socket drop counter, and logs
// repeated decode errors at most once a minute per exporter and reason.
package collector

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flowsentry/flowsentry/collector/netflow"
	"github.com/flowsentry/flowsentry/collector/sflow"
	"github.com/flowsentry/flowsentry/config/check"
	"github.com/flowsentry/flowsentry/flow"
)

// Sink takes batches from the workers. Submit must not block: it returns
// false when its queue is full, and the collector then counts the batch as
// dropped (reason "queue_full") and releases it. When Submit returns true
// the sink owns the batch. Submit is called from several goroutines.
type Sink interface {
	Submit(b *flow.Batch) bool
}

// ErrPortInUse is the error of Start when another socket, of this or
// another process, already holds a listener's port.
var ErrPortInUse = errors.New("the port is already in use by another process (another flowsentry?) or another listener; stop it or choose another address in collector.listeners")

// drainTime is how long Stop lets workers read what the kernel has queued
// before they stop.
const drainTime = 50 * time.Millisecond

// errorLogInterval is the least time between two log lines about the same
// exporter and error reason.
const errorLogInterval = time.Minute

// Collector runs the UDP listeners. Its methods are safe for concurrent
// use.
type Collector struct {
	cfg       Config
	sink      Sink
	log       *slog.Logger
	m         *metrics
	labels    *exporterLabels
	errs      *errorLog
	templates *netflow.Templates
	samples   sflow.SampleSink // nil keeps no packet headers

	mu      sync.Mutex
	started bool
	stopped bool
	workers []*worker
	addrs   []net.Addr
	wg      sync.WaitGroup
}

// New validates cfg, registers the metrics with reg and allocates the
// collector. It opens nothing: Start does. log may be nil to discard logs.
func New(cfg Config, sink Sink, reg prometheus.Registerer, log *slog.Logger) (*Collector, error) {
	if err := cfg.Validate(); err != nil {
		return nil, check.Prefix("collector", err)
	}
	if sink == nil {
		return nil, errors.New("collector: no sink to hand batches to")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	templates := netflow.NewTemplates(cfg.Templates)
	m, err := newMetrics(reg, templates)
	if err != nil {
		return nil, fmt.Errorf("collector: register metrics: %w", err)
	}
	return &Collector{
		cfg:       cfg,
		sink:      sink,
		log:       log,
		m:         m,
		labels:    &exporterLabels{max: cfg.MaxExporters, labels: make(map[netip.Addr]string)},
		errs:      newErrorLog(log, errorLogInterval),
		templates: templates,
	}, nil
}

// SetSamples gives the sFlow decoders a sink for the raw packet headers of
// flow samples (a *samples.Store, which keeps those sent to attacked
// addresses). Call it before Start; nil, the default, keeps none.
func (c *Collector) SetSamples(s sflow.SampleSink) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.samples = s
}

// Start opens the sockets and starts the workers. On error, it closes what
// it opened. A collector starts once.
func (c *Collector) Start() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return errors.New("collector: already stopped; build a new one with New")
	}
	if c.started {
		return errors.New("collector: already started")
	}
	n := c.cfg.Workers
	if n == 0 {
		n = runtime.GOMAXPROCS(0)
	}
	var workers []*worker
	var addrs []net.Addr
	for _, l := range c.cfg.Listeners {
		ws, err := c.openListener(l, n)
		if err != nil {
			for _, w := range workers {
				w.conn.Close()
			}
			return err
		}
		addrs = append(addrs, ws[0].conn.LocalAddr())
		workers = append(workers, ws...)
	}
	c.workers, c.addrs, c.started = workers, addrs, true
	for _, w := range workers {
		c.wg.Go(w.run)
	}
	c.log.Info("collector started", "listeners", len(c.cfg.Listeners), "workers_per_listener", n)
	return nil
}

// openListener opens the n sockets of a listener and their workers. On
// error, it closes what it opened.
func (c *Collector) openListener(l ListenerConfig, n int) (ws []*worker, err error) {
	var conns []*net.UDPConn
	defer func() {
		if err != nil {
			for _, conn := range conns {
				conn.Close()
			}
			err = fmt.Errorf("collector: listen on %s for %s: %w", l.Address, l.Protocol, err)
		}
	}()
	// Port 0 picks a port here: every worker takes the same.
	address, err := probe(l.Address)
	if err != nil {
		return nil, err
	}
	for i := range n {
		conn, size, err := listen(address, c.cfg.ReceiveBuffer)
		if err != nil {
			return nil, err
		}
		conns = append(conns, conn)
		if i == 0 {
			address = conn.LocalAddr().String() // as the kernel has it, for the worker names
			if size < c.cfg.ReceiveBuffer {
				c.log.Warn("receive buffer smaller than configured",
					"listener", address, "configured_bytes", c.cfg.ReceiveBuffer, "effective_bytes", size,
					"fix", fmt.Sprintf("run with CAP_NET_ADMIN, or raise the limit: sysctl -w net.core.rmem_max=%d", c.cfg.ReceiveBuffer))
			}
		}
		name := fmt.Sprintf("%s/%d", address, i)
		c.m.receiveBuffer.WithLabelValues(name).Set(float64(size))
		var dec decoder = sflowDecoder{&sflow.Decoder{Samples: c.samples}}
		if l.Protocol == protocolNetFlow {
			dec = netflowDecoder{netflow.NewDecoder(c.templates)}
		}
		w, err := newWorker(name, conn, dec, c)
		if err != nil {
			return nil, err
		}
		ws = append(ws, w)
	}
	return ws, nil
}

// Stop stops the workers, after they have read what the kernel already
// queued (for at most drainTime) and handed their partial batches to the
// sink, then closes the sockets. It is idempotent and does nothing when
// Start never ran.
func (c *Collector) Stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return
	}
	c.stopped = true
	if !c.started {
		return
	}
	at := time.Now().Add(drainTime)
	for _, w := range c.workers {
		w.stop(at)
	}
	c.wg.Wait()
	for _, w := range c.workers {
		w.conn.Close()
	}
	c.log.Info("collector stopped")
}

// Addrs returns the bound address of each listener, in configuration
// order; nil before Start.
func (c *Collector) Addrs() []net.Addr {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.addrs)
}
