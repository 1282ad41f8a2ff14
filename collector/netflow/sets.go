package netflow

import (
	"encoding/binary"

	"github.com/flowsentry/flowsentry/flow"
)

// setIDs are the set IDs of template and options template sets, which
// differ between NetFlow v9 and IPFIX.
type setIDs struct {
	template, options uint16
}

// decodeSets decodes the sets of a NetFlow v9 or IPFIX message body in
// order. Sets with reserved IDs are skipped; bytes after the last set too
// short to hold a set header are padding.
func (d *Decoder) decodeSets(c *msgContext, now int64, body []byte, out []flow.Record, st *Stats) ([]flow.Record, error) {
	ids := ipfixSets
	if c.key.version == 9 {
		ids = v9Sets
	}
	d.missed = d.missed[:0]
	missedSets := 0
	var err error
	for len(body) >= 4 {
		id := binary.BigEndian.Uint16(body)
		n := int(binary.BigEndian.Uint16(body[2:]))
		if n < 4 || n > len(body) {
			err = errSetLength
			break
		}
		set := body[:n]
		body = body[n:]
		switch {
		case id == ids.template || id == ids.options:
			out, err = d.templateSet(c, id == ids.options, set[4:], missedSets, now, out, st)
			d.missed, missedSets = d.missed[:0], 0
		case id >= 256:
			var missed bool
			out, missed, err = d.dataSet(c, id, set, now, out, st)
			if missed {
				d.missed = append(d.missed, set...)
				missedSets++
			}
		}
		if err != nil {
			break
		}
	}
	if missedSets > 0 {
		d.t.mu.Lock()
		d.t.hold(c, d.missed, missedSets, now, st)
		d.t.mu.Unlock()
	}
	return out, err
}

// templateSet holds the data sets of the datagram missed so far (they come
// before the templates in the datagram), learns the templates of one set,
// then decodes held data the templates unlock.
func (d *Decoder) templateSet(c *msgContext, options bool, body []byte, missedSets int, now int64, out []flow.Record, st *Stats) ([]flow.Record, error) {
	t := d.t
	t.mu.Lock()
	defer t.mu.Unlock()
	if missedSets > 0 {
		t.hold(c, d.missed, missedSets, now, st)
	}
	t.expire(now, st)
	dm := t.domainFor(c.key)
	var err error
	if c.key.version == 9 {
		err = d.v9Templates(dm, options, body, now, st)
	} else {
		err = d.ipfixTemplates(dm, options, body, now, st)
	}
	t.forgetEmpty(dm)
	if len(t.held.held) > 0 {
		out = d.replay(c.key, now, out, st)
	}
	return out, err
}

// dataSet decodes one data set, reporting a miss when its template is not
// known. Data sets take the read lock; options data sets, which change the
// sampling state, the write lock.
func (d *Decoder) dataSet(c *msgContext, id uint16, set []byte, now int64, out []flow.Record, st *Stats) ([]flow.Record, bool, error) {
	t := d.t
	t.mu.RLock()
	dm, tpl := t.lookup(c.key, id, now)
	if tpl != nil && !tpl.options {
		var err error
		out, err = d.decodeData(tpl, dm, c, set[4:], out, st)
		t.mu.RUnlock()
		return out, false, err
	}
	t.mu.RUnlock()
	if tpl == nil {
		st.TemplateMisses++
		return out, true, nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	// The template may have changed while the lock was free.
	if dm, tpl = t.lookup(c.key, id, now); tpl == nil {
		st.TemplateMisses++
		return out, true, nil
	}
	out, err := d.decodeData(tpl, dm, c, set[4:], out, st)
	return out, false, err
}

// decodeData decodes the records of a data set body with template tpl of
// domain dm: flow records are appended to out, options records update dm.
// Bytes after the last record too short to hold one are padding. The
// caller holds the read lock, or the write lock for options templates.
func (d *Decoder) decodeData(tpl *template, dm *domain, c *msgContext, body []byte, out []flow.Record, st *Stats) ([]flow.Record, error) {
	d.samplerOK = false
	l := &tpl.layout
	for len(body) >= tpl.minLen {
		n := tpl.minLen
		if tpl.steps != nil {
			l = &d.layout
			if n = tpl.locate(body, l); n < 0 {
				return out, errTruncated
			}
		}
		rec := body[:n]
		body = body[n:]
		switch {
		case tpl.options:
			dm.applyOptions(l, rec)
			continue
		case !tpl.addressed:
			st.NoAddress++
			continue
		}
		// Filled in place: building the record aside and copying it in
		// costs a quarter of the decoding time.
		out = append(out, flow.Record{Start: c.exportNs, End: c.exportNs, Exporter: c.key.exporter, Source: c.source})
		r := &out[len(out)-1]
		tpl.record(rec, l, c, dm, r)
		finish(r, d.recordRate(tpl, l, rec, dm))
	}
	return out, nil
}
