package scan

import (
	"github.com/prometheus/client_golang/prometheus"

	"context"
	"log/slog"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/flowsentry/flowsentry/alert"
	"github.com/flowsentry/flowsentry/detect"
	"github.com/flowsentry/flowsentry/detect/target"
	"github.com/flowsentry/flowsentry/model"
	"github.com/flowsentry/flowsentry/policy"
)

// maxScanners bounds the scanners Whole tracks; the seconds of further
// ones are dropped (and counted).
const maxScanners = 1 << 16

// maxInScanners bounds the remote blocks among them: the last quarter is
// kept for the local hosts.
const maxInScanners = maxScanners - maxScanners/4

// minRecords is the fewest attempt records (not scaled by sampling) a
// scanner must have in the window to alert: one sampled packet standing
// for thousands is no evidence of a scan.
const minRecords = 3

// TopPorts is how many ports PORTS lists at most.
const TopPorts = 8

// second is what every shard together saw of one scanner in one second.
type second struct {
	sec                int64 // Unix second; a slot of another second counts 0
	conns, pkts, bytes uint64
	recs               uint64
	uniq, hosts, ports uint32
}

// scanner is a scanner tracked by Whole while it was active within
// MaxWindow seconds.
type scanner struct {
	key    scanKey
	pol    *policy.Policy
	tg     *model.TrafficGroup
	addr   netip.Addr
	total  uint64 // attempts since tracked (CONNECTION_COUNT)
	last   int64  // last active second
	protos uint8
	proto  uint8
	ntop   uint8
	top    [TopPorts]portCount
	ring   [MaxWindow]second
}

// Whole is the family's stage of the whole: at each tick, after the shards
// closed their second, it sums the shards' tallies per scanner (the
// endpoints of a remote block probing hosts of several shards are
// disjoint: each local address belongs to one shard), keeps the last
// MaxWindow seconds of each, and reports the scanners over their policy's
// threshold. Its methods are called from the pipeline goroutine.
type Whole struct {
	shards   []*Shard
	observer detect.Observer
	log      *slog.Logger
	model    *model.Model

	index    map[scanKey]int32
	list     []scanner
	free     []int32
	nIn      int    // remote blocks tracked
	dropped  uint64 // scanner-seconds not tracked: maxScanners reached
	drops    prometheus.Counter
	warnedAt int64
}

// NewWhole returns the stage of the whole over the family's shard stages
// in d.Shards.
func NewWhole(d detect.Deps) *Whole {
	w := &Whole{observer: d.Observer, log: d.Log, index: map[scanKey]int32{},
		drops: d.Metrics.Dropped(d.Family, "max_scanners")}
	for _, s := range d.Shards {
		if sh, ok := s.(*Shard); ok {
			w.shards = append(w.shards, sh)
		}
	}
	if w.log == nil {
		w.log = slog.New(slog.DiscardHandler)
	}
	return w
}

// Start does nothing: nothing is persisted.
func (w *Whole) Start(context.Context) error { return nil }

// Stop does nothing.
func (w *Whole) Stop() {}

// Dropped returns how many scanner-seconds were not tracked because
// maxScanners scanners (maxInScanners remote blocks, for a remote block)
// were.
func (w *Whole) Dropped() uint64 { return w.dropped }

// Tracked returns how many scanners are tracked.
func (w *Whole) Tracked() int { return len(w.index) }

// SetModel takes a new model snapshot.
func (w *Whole) SetModel(m *model.Model) {
	w.model = m
}

// Tick merges the second the shards closed and reports the scanners over
// threshold.
func (w *Whole) Tick(now int64) {
	sec := now / int64(time.Second)
	if now < 0 && now%int64(time.Second) != 0 {
		sec--
	}
	// The shards' tallies cover the time since the previous tick, which
	// ends at now: they belong to the second before now's start, or to
	// now's second when ticks come more often than each second.
	at := sec
	if now%int64(time.Second) == 0 {
		at = sec - 1
	}
	for _, sh := range w.shards {
		for i := range sh.closed {
			w.merge(&sh.closed[i], at)
		}
	}
	t := time.Unix(0, now)
	for i := 0; i < len(w.list); i++ {
		sc := &w.list[i]
		if !sc.key.scanner.IsValid() {
			continue // free
		}
		if sc.last <= at-MaxWindow {
			w.evict(int32(i))
			continue
		}
		p := Of(sc.pol)
		if p == nil || sc.last <= at-int64(p.Window) {
			continue
		}
		r := sc.rates(at, p.Window)
		v := float64(r.conns)
		if p.Counter == UniqEndpoints {
			v = float64(r.uniq)
		}
		v /= float64(p.Window)
		if v > p.Threshold && r.recs >= minRecords {
			w.observer.Observe(t, w.condition(sc, p, r))
		}
	}
	if w.dropped > 0 && now-w.warnedAt >= int64(time.Minute) {
		w.warnedAt = now
		w.log.Warn("scan detector tracks too many scanners; the activity of further ones is not counted",
			"max", maxScanners, "dropped_total", w.dropped)
	}
}

func (w *Whole) merge(t *tally, at int64) {
	i, ok := w.index[t.key]
	if !ok {
		if len(w.index) >= maxScanners || (t.key.dir == dirIn && w.nIn >= maxInScanners) {
			w.dropped++
			w.drops.Inc()
			return
		}
		if n := len(w.free); n > 0 {
			i, w.free = w.free[n-1], w.free[:n-1]
		} else {
			i = int32(len(w.list))
			w.list = append(w.list, scanner{})
		}
		w.list[i] = scanner{key: t.key, addr: t.addr}
		w.index[t.key] = i
		if t.key.dir == dirIn {
			w.nIn++
		}
	}
	sc := &w.list[i]
	sc.pol, sc.tg, sc.last = t.pol, t.tg, at
	if t.addr.Less(sc.addr) {
		sc.addr = t.addr
	}
	sc.total += t.conns
	sc.protos |= t.protos
	sc.proto = t.proto
	for _, pc := range t.top[:t.ntop] {
		addPort(sc.top[:], &sc.ntop, pc.port, pc.proto, pc.n)
	}
	s := &sc.ring[at%MaxWindow]
	if s.sec != at {
		*s = second{sec: at}
	}
	s.conns += t.conns
	s.recs += t.recs
	s.pkts += t.pkts
	s.bytes += t.bytes
	s.uniq += t.uniq
	s.hosts += t.hosts
	// Ports probed in several shards would count once in each: the
	// busiest shard's count is the floor of the true one.
	s.ports = max(s.ports, t.ports)
}

func (w *Whole) evict(i int32) {
	if w.list[i].key.dir == dirIn {
		w.nIn--
	}
	delete(w.index, w.list[i].key)
	w.list[i] = scanner{}
	w.free = append(w.free, i)
}

// window is what a scanner did over a window: sums, and the distinct
// hosts and ports of its busiest second.
type window struct {
	conns, pkts, bytes uint64
	recs               uint64
	uniq               uint64
	hosts, ports       uint32
}

// rates sums the seconds (at-n, at].
func (sc *scanner) rates(at int64, n int) window {
	var r window
	for _, s := range sc.ring {
		if s.sec <= at-int64(n) || s.sec > at {
			continue
		}
		r.conns += s.conns
		r.recs += s.recs
		r.pkts += s.pkts
		r.bytes += s.bytes
		r.uniq += uint64(s.uniq)
		r.hosts = max(r.hosts, s.hosts)
		r.ports = max(r.ports, s.ports)
	}
	return r
}

// condition builds the alert of sc under its policy.
func (w *Whole) condition(sc *scanner, p *Params, r window) alert.Condition {
	num := func(name string, v uint64) alert.Field {
		return alert.Field{Name: name, Value: strconv.FormatUint(v, 10), Number: true}
	}
	var tgID uint64
	var tgName string
	if sc.tg != nil {
		tgID, tgName = uint64(sc.tg.ID), sc.tg.Name
	}
	dir, cidr := Outbound, netip.PrefixFrom(sc.key.scanner, sc.key.scanner.BitLen())
	if sc.key.dir == dirIn {
		dir, cidr = Inbound, target.Block(sc.key.scanner)
	}
	proto := uint64(0)
	if sc.protos&(sc.protos-1) == 0 {
		proto = uint64(sc.proto)
	}
	f := make([]alert.Field, 0, 16)
	f = append(f,
		alert.Field{Name: "SCANNER_IP", Value: sc.addr.String()},
		alert.Field{Name: "SCANNER_CIDR", Value: cidr.String()})
	if sc.key.dir == dirOut {
		f = append(f, num("SCANNER_TG", tgID), alert.Field{Name: "SCANNER_TG_NAME", Value: tgName})
	} else {
		f = append(f, num("SCANNER_TG", 0))
	}
	f = append(f, alert.Field{Name: "DIRECTION", Value: dir}, num("PROTO", proto))
	if sc.key.dir == dirIn {
		f = append(f, num("TARGET_TG", tgID), alert.Field{Name: "TARGET_TG_NAME", Value: tgName})
	} else {
		f = append(f, num("TARGET_TG", 0))
	}
	f = append(f,
		num("UNIQUE_HOSTS", uint64(r.hosts)),
		num("UNIQUE_PORTS", uint64(r.ports)),
		num("CONNECTION_COUNT", sc.total),
		alert.Field{Name: "PORTS", List: sc.topPorts(), IsList: true, Number: true},
		alert.Field{Name: "THRESHOLD_TYPE", Value: p.Counter},
		alert.Field{Name: "THRESHOLD_VALUE", Value: strconv.FormatFloat(p.Threshold, 'f', 2, 64), Number: true},
	)
	win := float64(p.Window)
	v := alert.Values{NewConn: float64(r.conns) / win}
	if sc.key.dir == dirIn {
		v.PacketsIn, v.BytesIn = float64(r.pkts)/win, float64(r.bytes)/win
		v.UniqLocalEndpoint = float64(r.uniq) / win
	} else {
		v.PacketsOut, v.BytesOut = float64(r.pkts)/win, float64(r.bytes)/win
	}
	key := "out/"
	if sc.key.dir == dirIn {
		key = "in/"
	}
	key += cidr.String() + "/" + strconv.FormatUint(tgID, 10)
	return alert.Condition{
		Policy:   sc.pol.ID,
		Key:      key,
		Type:     AlertType,
		CID:      sc.pol.CID,
		CIDName:  w.model.PartitionName(sc.pol.CID),
		Severity: sc.pol.Severity,
		Fields:   f,
		Values:   v,
		Uniq:     sc.key.dir == dirIn,
	}
}

// topPorts lists the most probed ports, most probed first (ties by port).
func (sc *scanner) topPorts() []string {
	top := slices.Clone(sc.top[:sc.ntop])
	slices.SortFunc(top, func(a, b portCount) int {
		if a.n != b.n {
			if a.n > b.n {
				return -1
			}
			return 1
		}
		return int(a.port) - int(b.port)
	})
	out := make([]string, 0, TopPorts)
	for i := 0; i < len(top) && i < TopPorts; i++ {
		out = append(out, strconv.Itoa(int(top[i].port)))
	}
	return out
}
