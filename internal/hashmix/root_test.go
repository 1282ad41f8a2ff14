package hashmix

import (
	"math/bits"
	"testing"
)

// TestMixing checks the finalizer's known value and avalanche (one input
// bit flips about half the output bits), and that Mum folds the product.
func TestMixing(t *testing.T) {
	if got := Fmix64(0); got != 0 {
		t.Errorf("Fmix64(0) = %#x, want 0", got)
	}
	total := 0
	for i := range 64 {
		total += bits.OnesCount64(Fmix64(12345) ^ Fmix64(12345^(1<<i)))
	}
	if avg := float64(total) / 64; avg < 28 || avg > 36 {
		t.Errorf("a flipped input bit flips %.1f output bits on average, want about 32", avg)
	}
	if got := Mum(1<<63, 4); got != 2 {
		t.Errorf("Mum(2^63, 4) = %d, want 2 (high half 2, low half 0)", got)
	}
}
