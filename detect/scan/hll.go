package scan

import (
	"unsafe"

	"github.com/flowsentry/flowsentry/internal/hll"
	"github.com/flowsentry/flowsentry/internal/prefetch"
)

// sketchP is the precision of the HyperLogLog sketches: 2^sketchP
// registers of one byte, a standard error of 1.04/√2048 ≈ 2.3% above
// about 2.5 × 2048 distinct items, less below (linear counting).
const sketchP = 11

// sketchM is the number of registers of a sketch.
const sketchM = 1 << sketchP

// sketch is the registers of a dense HyperLogLog sketch (package hll).
type sketch [sketchM]uint8

// insert adds hash h.
func (s *sketch) insert(h uint64) { hll.Insert(s[:], sketchP, h) }

// estimate returns the number of distinct hashes inserted (see
// hll.Estimate).
func (s *sketch) estimate() uint32 { return uint32(hll.Estimate(s[:])) }

// sketches (6 KiB) are the three sketches of a tally counted approximately:
// distinct endpoints, hosts and ports.
type sketches [3]sketch

// chunkLen is how many hashes a chunk of a tally's list holds.
const chunkLen = 30

// chunk is a piece of the list of the distinct item hashes (the kind in
// their low 2 bits) a tally counted exactly this second, kept so that its
// sketches can start from them when it grows past exactLimit.
type chunk struct {
	h    [chunkLen]uint64
	n    int32
	next int32 // the next chunk's index + 1; 0: the last
}

// laterLen is how many sketch inserts wait, a power of two: under a load
// of new endpoints, each insert's register misses the cache, so
// insertLater asks the processor for it and inserts laterLen inserts
// later, while the shard goes on with the records between.
const laterLen = 8

// laterInsert is an insert of hash h into sketch kind of the shard's
// sketches sk (an index: the slice may grow meanwhile).
type laterInsert struct {
	h    uint64
	sk   int32
	kind uint8
}

// insertLater inserts h into sketch kind of s.sk[sk] laterLen inserts
// from now, or at flushLater. The sketches are read only at the tick,
// which flushes first, and an insert commutes with every other.
func (s *Shard) insertLater(sk int32, kind uint8, h uint64) {
	r := &s.sk[sk][kind][h>>(64-sketchP)]
	prefetch.Lines(unsafe.Pointer(r), unsafe.Pointer(r))
	l := &s.later[s.nlater&(laterLen-1)]
	if s.nlater >= laterLen {
		s.sk[l.sk][l.kind].insert(l.h)
	}
	*l = laterInsert{h: h, sk: sk, kind: kind}
	s.nlater++
}

// flushLater does the inserts insertLater left waiting.
func (s *Shard) flushLater() {
	for i := max(0, s.nlater-laterLen); i < s.nlater; i++ {
		l := &s.later[i&(laterLen-1)]
		s.sk[l.sk][l.kind].insert(l.h)
	}
	s.nlater = 0
}
