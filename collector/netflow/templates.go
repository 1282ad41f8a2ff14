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
type Templates struct {
	pendingMax     int
	pendingAge     int64
	templateMaxAge int64

	mu      sync.RWMutex
	domains map[domainKey]*domain
	held    pendingStore
	// lastSweep is when templates were last checked for expiry.
	lastSweep int64
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

// domain is the state of one observation domain.
type domain struct {
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
	t := &Templates{
		pendingMax:     min(max(cfg.PendingDatagrams, 0), maxPendingDatagrams),
		pendingAge:     int64(max(cfg.PendingAge, 0)),
		templateMaxAge: int64(max(cfg.TemplateMaxAge, 0)),
		domains:        make(map[domainKey]*domain),
	}
	t.oldestHeld.Store(math.MaxInt64)
	return t
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
		dm = &domain{templates: make(map[uint16]*template)}
		t.domains[key] = dm
	}
	return dm
}

// learn stores the template record raw, with fields already parsed from
// it, as template id. A record identical to the stored one only refreshes
// it. It reports whether a template was added or changed. The caller
// holds the Templates write lock.
func (dm *domain) learn(id uint16, raw []byte, fields []field, ipfix, options bool, now int64) (bool, error) {
	if old := dm.templates[id]; old != nil && bytes.Equal(old.raw, raw) {
		old.refreshed = now
		return false, nil
	}
	tpl, err := compile(fields, ipfix, options)
	if err != nil {
		return false, err
	}
	tpl.raw = bytes.Clone(raw)
	tpl.refreshed = now
	dm.templates[id] = tpl
	return true, nil
}

// withdraw removes template id (RFC 7011 section 8.1) and reports how many
// templates went. The caller holds the Templates write lock.
func (dm *domain) withdraw(id uint16) int {
	if _, ok := dm.templates[id]; !ok {
		return 0
	}
	delete(dm.templates, id)
	return 1
}

// withdrawAll removes every data template (options false) or every options
// template (options true) and reports how many went. The caller holds the
// Templates write lock.
func (dm *domain) withdrawAll(options bool) int {
	n := 0
	for id, tpl := range dm.templates {
		if tpl.options == options {
			delete(dm.templates, id)
			n++
		}
	}
	return n
}

// sweep forgets expired templates, and domains left without templates, at
// most once per TemplateMaxAge. The caller holds the write lock.
func (t *Templates) sweep(now int64) {
	if t.templateMaxAge == 0 || now-t.lastSweep < t.templateMaxAge {
		return
	}
	t.lastSweep = now
	for key, dm := range t.domains {
		for id, tpl := range dm.templates {
			if t.expired(tpl, now) {
				delete(dm.templates, id)
			}
		}
		if len(dm.templates) == 0 {
			delete(t.domains, key)
		}
	}
}
