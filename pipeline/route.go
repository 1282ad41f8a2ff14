package pipeline

import (
	"encoding/binary"
	"net/netip"
	"slices"
	"sync"

	"github.com/flowsentry/flowsentry/flow"
	"github.com/flowsentry/flowsentry/model"
)

// part is what one batch holds for one shard: copies of its records, with
// their classes, and its counter samples, classified with model.
type part struct {
	model    *model.Model
	records  []flow.Record
	classes  []model.Class
	counters []flow.IfCounters
}

var partPool = sync.Pool{New: func() any {
	return &part{
		records: make([]flow.Record, 0, flow.BatchSize),
		classes: make([]model.Class, 0, flow.BatchSize),
	}
}}

func (pt *part) release() {
	pt.model = nil
	pt.records, pt.classes, pt.counters = pt.records[:0], pt.classes[:0], pt.counters[:0]
	partPool.Put(pt)
}

// Submit classifies the records of b, routes them to their shards' queues
// and releases b; it never blocks. It returns false, having done nothing,
// when any shard's queue is full: the caller then still owns b, and may
// wait and try again or drop it. A part of b for a full shard is dropped and counted.
func (p *Pipeline) Submit(b *flow.Batch) bool {
	if p.Full() {
		return false
	}
	p.route(b, (*shard).submit)
	b.Release()
	return true
}

// Full reports whether any shard's queue is full, so that Submit would
// refuse a batch: collectors then shed load before decoding.
func (p *Pipeline) Full() bool {
	for _, s := range p.shards {
		if s.full() {
			return true
		}
	}
	return false
}

// route classifies every record of b once and hands each shard its part
// (see the package documentation) through deliver.
func (p *Pipeline) route(b *flow.Batch, deliver func(*shard, *part)) {
	m := p.model.Load()
	n := len(p.shards)
	if n == 1 {
		// One shard owns everything: it takes the batch's records and
		// counters as they are, without a copy.
		pt := partPool.Get().(*part)
		pt.model = m
		pt.records, b.Records = b.Records, pt.records[:0]
		pt.counters, b.Counters = b.Counters, pt.counters[:0]
		pt.classes = slices.Grow(pt.classes[:0], len(pt.records))[:len(pt.records)]
		for i := range pt.records {
			m.Classify(&pt.records[i], &pt.classes[i])
		}
		deliver(p.shards[0], pt)
		return
	}
	var parts [maxShards]*part
	take := func(i int) *part {
		if parts[i] == nil {
			parts[i] = partPool.Get().(*part)
			parts[i].model = m
		}
		return parts[i]
	}
	var c model.Class
	for i := range b.Records {
		r := &b.Records[i]
		m.Classify(r, &c)
		srcShard, dstShard := -1, -1
		inSrc, inDst := len(c.Src.Groups) > 0, len(c.Dst.Groups) > 0
		if inSrc {
			srcShard = shardOf(r.Src, n)
		}
		if inDst {
			dstShard = shardOf(r.Dst, n)
		}
		var recShard int
		switch {
		case inDst && !inSrc:
			recShard = dstShard
		case inSrc && !inDst:
			recShard = srcShard
		default: // the lower address: the same for both directions
			lower := r.Src
			if r.Dst.Unmap().Less(r.Src.Unmap()) {
				lower = r.Dst
			}
			recShard = shardOf(lower, n)
		}
		// One copy per shard, owning the parts that are its.
		owners := [3]int{recShard, srcShard, dstShard}
		for j, s := range owners {
			if s < 0 || slices.Contains(owners[:j], s) {
				continue
			}
			c.Own = 0
			for k, part := range [3]model.Own{model.OwnRecord, model.OwnSrc, model.OwnDst} {
				if owners[k] == s {
					c.Own |= part
				}
			}
			pt := take(s)
			pt.records = append(pt.records, *r)
			pt.classes = append(pt.classes, c)
		}
	}
	for i := range b.Counters {
		ic := &b.Counters[i]
		pt := take(shardOf(ic.Exporter, n))
		pt.counters = append(pt.counters, *ic)
	}
	for i, pt := range parts[:n] {
		if pt != nil {
			deliver(p.shards[i], pt)
		}
	}
}

// shardOf returns the shard of address a among n: a hash of its 16-byte
// form, so that an IPv4 address and its IPv4-mapped form agree.
func shardOf(a netip.Addr, n int) int {
	if n == 1 {
		return 0
	}
	b := a.Unmap().As16()
	h := binary.BigEndian.Uint64(b[:8])*0x9e3779b97f4a7c15 ^ binary.BigEndian.Uint64(b[8:])
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	return int(h % uint64(n))
}
