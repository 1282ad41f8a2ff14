// Package hashmix holds the 64-bit mixing functions the hash tables and
// sketches of the hot path share: cheap, allocation-free, and identical
// wherever two places must agree on a hash.
package hashmix

import "math/bits"

// Fmix64 is MurmurHash3's 64-bit finalizer: every input bit affects every
// output bit, so structured keys (addresses, ports) spread evenly.
func Fmix64(x uint64) uint64 {
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x
}

// Mum multiplies a and b to 128 bits and folds the halves (wyhash's mum):
// cheaper than Fmix64, but only as random as its inputs, so one of them
// should already be a hash or a random seed.
func Mum(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	return hi ^ lo
}
