// Package hll is a dense HyperLogLog sketch of 64-bit hashes kept in
// plain byte registers, for the sketches updated on every record (a
// host's peers, a scanner's endpoints): an insert is a shift, a count of
// leading zeros and a compare, a few instructions where a general-purpose
// library's takes tens (BenchmarkInsert). The caller owns the registers,
// 2^p bytes for precision p, so that a sketch can live in a fixed-size
// array and inserting never allocates.
package hll

import (
	"math"
	"math/bits"
)

// Insert adds hash h to regs, the 2^p registers of a sketch of precision
// p (4 or more, the least Estimate corrects for): the register of h's top p bits keeps the longest run of leading zeros
// (plus one) seen in the rest.
func Insert(regs []uint8, p uint8, h uint64) {
	i := h >> (64 - p)
	r := uint8(bits.LeadingZeros64(h<<p|1<<(p-1))) + 1
	if r > regs[i] {
		regs[i] = r
	}
}

// pow2neg[k] is 2^-k.
var pow2neg = func() (t [66]float64) {
	for k := range t {
		t[k] = math.Ldexp(1, -k)
	}
	return
}()

// Estimate returns the number of distinct hashes inserted into regs, a
// power of two of registers: linear counting while the estimate is at
// most 2.5 times the registers and some register is empty, the
// HyperLogLog estimate above (standard error 1.04/√len(regs)).
func Estimate(regs []uint8) uint64 {
	sum, zeros := 0.0, 0
	for _, r := range regs {
		sum += pow2neg[r]
		if r == 0 {
			zeros++
		}
	}
	m := float64(len(regs))
	var alpha float64
	switch len(regs) {
	case 16:
		alpha = 0.673
	case 32:
		alpha = 0.697
	case 64:
		alpha = 0.709
	default:
		alpha = 0.7213 / (1 + 1.079/m)
	}
	e := alpha * m * m / sum
	if e <= 2.5*m && zeros > 0 {
		e = m * math.Log(m/float64(zeros))
	}
	return uint64(math.Round(e))
}
