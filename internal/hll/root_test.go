package hll

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/axiomhq/hyperloglog"
)

// TestEstimate: estimates stay within three standard errors of the true
// count, from a few items (linear counting) to many (HyperLogLog), at
// several precisions, and re-inserting items changes nothing.
func TestEstimate(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, p := range []uint8{4, 8, 11, 14} {
		regs := make([]uint8, 1<<p)
		bound := 3 * 1.04 / math.Sqrt(float64(len(regs)))
		for _, n := range []int{0, 1, 10, 100, 1000, 30000, 300000} {
			clear(regs)
			hashes := make([]uint64, n)
			for i := range hashes {
				hashes[i] = rng.Uint64()
				Insert(regs, p, hashes[i])
			}
			got := Estimate(regs)
			for _, h := range hashes[:n/2] {
				Insert(regs, p, h)
			}
			if again := Estimate(regs); again != got {
				t.Errorf("p %d, %d items: %d, then %d after inserting half again", p, n, got, again)
			}
			if n == 0 {
				if got != 0 {
					t.Errorf("p %d: empty sketch estimates %d", p, got)
				}
				continue
			}
			if err := math.Abs(float64(got)-float64(n)) / float64(n); err > bound && math.Abs(float64(got)-float64(n)) > 2 {
				t.Errorf("p %d, %d items: estimate %d, error %.3f above %.3f", p, n, got, err, bound)
			}
		}
	}
}

// BenchmarkInsert compares an insert into the registers with one into a
// dense sketch of github.com/axiomhq/hyperloglog, both at precision 8.
func BenchmarkInsert(b *testing.B) {
	hashes := make([]uint64, 4096)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range hashes {
		hashes[i] = rng.Uint64()
	}
	b.Run("hll", func(b *testing.B) {
		regs := make([]uint8, 1<<8)
		i := 0
		for b.Loop() {
			Insert(regs, 8, hashes[i&4095])
			i++
		}
	})
	b.Run("axiomhq", func(b *testing.B) {
		sk, _ := hyperloglog.NewSketch(8, false)
		i := 0
		for b.Loop() {
			sk.InsertHash(hashes[i&4095])
			i++
		}
	})
}
