package scan

import (
	"math"
	"math/bits"
)

// sketchP is the precision of the HyperLogLog sketches: 2^sketchP
// registers of one byte, a standard error of 1.04/√2048 ≈ 2.3% above
// about 2.5 × 2048 distinct items, less below (linear counting).
const sketchP = 11

// sketchM is the number of registers of a sketch.
const sketchM = 1 << sketchP

// sketch is a dense HyperLogLog sketch of 64-bit hashes: a register per
// value of the hash's top sketchP bits keeps the longest run of leading
// zeros (plus one) of the rest. It never allocates.
type sketch [sketchM]uint8

// insert adds hash h.
func (s *sketch) insert(h uint64) {
	i := h >> (64 - sketchP)
	r := uint8(bits.LeadingZeros64(h<<sketchP|1<<(sketchP-1))) + 1
	if r > s[i] {
		s[i] = r
	}
}

// pow2neg[k] is 2^-k.
var pow2neg = func() (t [66]float64) {
	for k := range t {
		t[k] = math.Ldexp(1, -k)
	}
	return
}()

// estimate returns the number of distinct hashes inserted: linear
// counting while at most 2.5 × sketchM (and some register is empty), the
// HyperLogLog estimate above.
func (s *sketch) estimate() uint32 {
	sum, zeros := 0.0, 0
	for _, r := range s {
		sum += pow2neg[r]
		if r == 0 {
			zeros++
		}
	}
	const m = float64(sketchM)
	e := 0.7213 / (1 + 1.079/m) * m * m / sum
	if e <= 2.5*m && zeros > 0 {
		e = m * math.Log(m/float64(zeros))
	}
	return uint32(math.Round(e))
}

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
