package rates

import (
	"net/netip"

	"github.com/flowsentry/flowsentry/internal/hashmix"
	"github.com/flowsentry/flowsentry/internal/hll"
)

// uniq estimates the distinct peers of one host per tumbling window: local
// endpoints (index 0) and remote CIDRs (index 1), in the registers of
// two dense HyperLogLog sketches (package hll), so inserting never
// allocates.
type uniq struct {
	sk    [2][]uint8
	p     uint8 // the sketches' precision
	dirty bool  // something was inserted in the open window
	cur   [2]float64
	peak  [2]float64
	sum   [2]uint64 // estimates of every closed window, summed
}

func newUniq(precision uint8) *uniq {
	// Config.Validate keeps precision in 4..16, which hll takes.
	regs := make([]uint8, 2<<precision)
	return &uniq{sk: [2][]uint8{regs[:1<<precision], regs[1<<precision:]}, p: precision}
}

// roll closes the open window: its estimates become the current rates
// (unless later windows passed empty, skipped), join the sums and raise
// the peaks; the sketches start over.
func (u *uniq) roll(window int64, skipped bool) {
	for i, sk := range u.sk {
		var n uint64
		if u.dirty {
			n = hll.Estimate(sk)
			clear(sk)
		}
		r := float64(n) / float64(window)
		u.sum[i] += n
		u.peak[i] = max(u.peak[i], r)
		u.cur[i] = r
		if skipped {
			u.cur[i] = 0
		}
	}
	u.dirty = false
}

// observePeer records that host h sent a flow to dst; local says whether
// dst is in h's traffic group or in the INT blocks of its partition.
func (e *Engine) observePeer(h *Object, dst netip.Addr, local bool) {
	if h.uniq == nil {
		h.uniq = newUniq(e.cfg.HLLPrecision)
	}
	u := h.uniq
	hi, lo := halves(dst)
	switch {
	case local:
		hll.Insert(u.sk[0], u.p, hash2(hi, lo))
	case dst.Is4():
		// Masking the last byte of the mapped form gives the /24; its lo is
		// never 0, so no IPv4 block hashes like an IPv6 /64.
		hll.Insert(u.sk[1], u.p, hash2(hi, lo&^0xff))
	default:
		hll.Insert(u.sk[1], u.p, hash2(hi, 0))
	}
	u.dirty = true
}

// hash2 mixes two words into a uniformly distributed hash (the MurmurHash3
// 64-bit finalizer, applied twice with distinct offsets so that zero input
// does not hash to zero).
func hash2(hi, lo uint64) uint64 {
	return hashmix.Fmix64(hi ^ hashmix.Fmix64(lo^0x9e3779b97f4a7c15) ^ 0xc2b2ae3d27d4eb4f)
}
