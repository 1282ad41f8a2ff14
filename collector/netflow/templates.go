package netflow

import (
	"bytes"
	"math"
	"net/netip"
	"sync"
	"sync/atomic"
)

// Templates is the state the NetFlow v9 and IPFIX decoders share: templates
// and sampling rates per exporter and observation domain (source ID), and
// data held until its template arrives. It is safe for concurrent use by
// several Decoders; they take its lock once per set, not per record.
//
// The templates are bounded per exporter and in total: learning one more
// evicts the exporter's, or else the cache's, least recently learned or
// refreshed template, so that an exporter sending endless template IDs or
// observation domains cannot take the memory.
type Templates struct {
	pendingMax     int
	pendingAge     int64
	templateMaxAge int64
	maxPerExporter int
	maxTotal       int

	mu      sync.RWMutex
	domains map[domainKey]*domain
	// all orders every template, exporters each exporter's templates,
	// least recently learned or refreshed first.
	all       order
	exporters map[netip.Addr]*order
	held      pendingStore
	// oldestHeld is the receive time of the oldest held datagram, or
	// math.MaxInt64 when none is held, so that Decode checks for expired
	// held data without taking the lock.
	oldestHeld atomic.Int64
}

// domainKey names an exporter's observation domain (IPFIX) or source ID
// (NetFlow v9). The version is part of it: an exporter speaking both keeps
// two template spaces.
type domainKey struct {
	exporter netip.Addr
	domain   uint32
	version  uint16
}

// domain is the state of one observation domain. A domain is forgotten,
// with its sampling state, once it has no templates left.
type domain struct {
	key       domainKey
	templates map[uint16]*template
	// rate is the sampling rate options gave for the whole domain, 0 when
	// unknown.
	rate uint32
	// samplers are the sampling rates options gave per sampler ID.
	samplers map[uint64]uint32
	// sysInit is the exporter's systemInitTimeMilliseconds, the base of
	// IPFIX sysUpTime offsets.
	sysInit    uint64
	sysInitSet bool
}

// NewTemplates returns an empty template cache. cfg should have passed
// Validate; out-of-range values are clamped rather than trusted.
func NewTemplates(cfg Config) *Templates {
	cfg = cfg.withDefaults()
	total := min(max(cfg.MaxTemplates, 1), maxTemplates)
	t := &Templates{
		pendingMax:     min(max(cfg.PendingDatagrams, 0), maxPendingDatagrams),
		pendingAge:     int64(max(cfg.PendingAge, 0)),
		templateMaxAge: int64(max(cfg.TemplateMaxAge, 0)),
		maxPerExporter: min(max(cfg.MaxTemplatesPerExporter, 1), total),
		maxTotal:       total,
		domains:        make(map[domainKey]*domain),
		all:            order{link: allOrder},
		exporters:      make(map[netip.Addr]*order),
	}
	t.oldestHeld.Store(math.MaxInt64)
	return t
}

// Len returns the number of templates in the cache, options templates
// included.
func (t *Templates) Len() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.all.len
}

// lookup returns the domain of key and its template id, nil when either is
// unknown or the template has expired. The caller holds the lock.
func (t *Templates) lookup(key domainKey, id uint16, now int64) (*domain, *template) {
	dm := t.domains[key]
	if dm == nil {
		return nil, nil
	}
	tpl := dm.templates[id]
	if tpl == nil || t.expired(tpl, now) {
		return dm, nil
	}
	return dm, tpl
}

func (t *Templates) expired(tpl *template, now int64) bool {
	return t.templateMaxAge > 0 && now-tpl.refreshed > t.templateMaxAge
}

// domainFor returns the domain of key, creating it. The caller holds the
// write lock.
func (t *Templates) domainFor(key domainKey) *domain {
	dm := t.domains[key]
	if dm == nil {
		dm = &domain{key: key, templates: make(map[uint16]*template)}
		t.domains[key] = dm
	}
	return dm
}

// forgetEmpty forgets dm if it has no templates left. The caller holds the
// write lock.
func (t *Templates) forgetEmpty(dm *domain) {
	if len(dm.templates) == 0 {
		delete(t.domains, dm.key)
	}
}

// learn stores the template record raw of domain dm, with fields already
// parsed from it, as template id, evicting the oldest templates when a new
// one would break a bound; dm itself is kept even if evictions empty it. A
// record identical to the stored one only refreshes it. The caller holds
// the write lock.
func (t *Templates) learn(dm *domain, id uint16, raw []byte, fields []field, ipfix, options bool, now int64, st *Stats) error {
	old := dm.templates[id]
	if old != nil && bytes.Equal(old.raw, raw) {
		old.refreshed = now
		t.all.moveBack(old)
		t.exporters[dm.key.exporter].moveBack(old)
		return nil
	}
	tpl, err := compile(fields, ipfix, options)
	if err != nil {
		return err
	}
	tpl.raw = bytes.Clone(raw)
	tpl.refreshed = now
	tpl.dm, tpl.id = dm, id
	if old != nil {
		t.remove(old)
	} else {
		for e := t.exporters[dm.key.exporter]; e != nil && e.len >= t.maxPerExporter; {
			t.evict(e.head, dm)
			st.Evicted.ExporterLimit++
		}
		for t.all.len >= t.maxTotal {
			t.evict(t.all.head, dm)
			st.Evicted.TotalLimit++
		}
	}
	dm.templates[id] = tpl
	t.all.pushBack(tpl)
	e := t.exporters[dm.key.exporter]
	if e == nil {
		e = &order{link: exporterOrder}
		t.exporters[dm.key.exporter] = e
	}
	e.pushBack(tpl)
	st.TemplatesLearned++
	return nil
}

// remove takes tpl out of its domain and of the eviction orders. The
// caller holds the write lock.
func (t *Templates) remove(tpl *template) {
	delete(tpl.dm.templates, tpl.id)
	t.all.remove(tpl)
	addr := tpl.dm.key.exporter
	e := t.exporters[addr]
	e.remove(tpl)
	if e.len == 0 {
		delete(t.exporters, addr)
	}
}

// evict removes tpl, and its domain if that leaves it empty, unless the
// domain is keep. The caller holds the write lock.
func (t *Templates) evict(tpl *template, keep *domain) {
	t.remove(tpl)
	if tpl.dm != keep {
		t.forgetEmpty(tpl.dm)
	}
}

// withdraw removes template id of dm (RFC 7011 section 8.1) and reports
// how many templates went. The caller holds the write lock.
func (t *Templates) withdraw(dm *domain, id uint16) int {
	tpl := dm.templates[id]
	if tpl == nil {
		return 0
	}
	t.remove(tpl)
	return 1
}

// withdrawAll removes every data template (options false) or every options
// template (options true) of dm and reports how many went. The caller
// holds the write lock.
func (t *Templates) withdrawAll(dm *domain, options bool) int {
	n := 0
	for _, tpl := range dm.templates {
		if tpl.options == options {
			t.remove(tpl)
			n++
		}
	}
	return n
}

// expire forgets the templates not learned or refreshed within
// TemplateMaxAge, and domains left without templates. They are the oldest
// of the cache, so this costs nothing when none has expired. The caller
// holds the write lock.
func (t *Templates) expire(now int64, st *Stats) {
	if t.templateMaxAge == 0 {
		return
	}
	for t.all.head != nil && t.expired(t.all.head, now) {
		t.evict(t.all.head, nil)
		st.Evicted.Age++
	}
}

// Indexes of template.links, one per eviction order.
const (
	allOrder = iota
	exporterOrder
)

// link is a template's place in one eviction order.
type link struct{ prev, next *template }

// order is a list of templates, least recently learned or refreshed first,
// threaded through the templates' links[link].
type order struct {
	link       int
	head, tail *template
	len        int
}

// pushBack appends tpl, which is in no list of this kind.
func (o *order) pushBack(tpl *template) {
	l := &tpl.links[o.link]
	l.prev, l.next = o.tail, nil
	if o.tail != nil {
		o.tail.links[o.link].next = tpl
	} else {
		o.head = tpl
	}
	o.tail = tpl
	o.len++
}

// remove takes tpl, which is in o, out of o.
func (o *order) remove(tpl *template) {
	l := &tpl.links[o.link]
	if l.prev != nil {
		l.prev.links[o.link].next = l.next
	} else {
		o.head = l.next
	}
	if l.next != nil {
		l.next.links[o.link].prev = l.prev
	} else {
		o.tail = l.prev
	}
	*l = link{}
	o.len--
}

// moveBack makes tpl, which is in o, the most recent.
func (o *order) moveBack(tpl *template) {
	if o.tail != tpl {
		o.remove(tpl)
		o.pushBack(tpl)
	}
}
