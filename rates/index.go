package rates

import (
	"math/bits"
	"math/rand/v2"

	"github.com/flowsentry/flowsentry/internal/hashmix"
)

// index maps packed integer keys to objects. It is a hash table with open
// addressing and linear probing over key/object pairs, 4 to a cache line,
// so that the usual look-up reads one line after hashing with two
// multiplications, where a Go map reads its control word and then its
// slot. The hash is seeded per index: keys come from the network (ports,
// addresses), and a known hash would let a sender pile them into one long
// probe sequence.
type index struct {
	slots []indexSlot // a power of two long; obj == nil marks a free slot
	n     int         // occupied slots
	shift uint8       // 64 - log2(len(slots))
	seed  uint64
}

type indexSlot struct {
	key uint64
	obj *Object
}

// minIndexSlots is the size of a new index's table.
const minIndexSlots = 8

func newIndex() *index {
	x := &index{seed: rand.Uint64()}
	x.resize(minIndexSlots)
	return x
}

// home is the slot where k's probe sequence starts: the top bits of its
// hash.
func (x *index) home(k uint64) int { return int(hashmix.Fmix64(k^x.seed) >> x.shift) }

// get returns the object at k, nil when none.
func (x *index) get(k uint64) *Object {
	mask := len(x.slots) - 1
	for i := x.home(k); ; i = (i + 1) & mask {
		s := &x.slots[i]
		if s.obj == nil || s.key == k {
			return s.obj
		}
	}
}

// add stores o at k, which must not be present, unless o is nil (a
// refused object), and returns o.
func (x *index) add(k uint64, o *Object) *Object {
	if o == nil {
		return nil
	}
	if 4*(x.n+1) > 3*len(x.slots) { // keep probe sequences short
		x.resize(2 * len(x.slots))
	}
	x.insert(k, o)
	x.n++
	return o
}

func (x *index) insert(k uint64, o *Object) {
	mask := len(x.slots) - 1
	i := x.home(k)
	for x.slots[i].obj != nil {
		i = (i + 1) & mask
	}
	x.slots[i] = indexSlot{key: k, obj: o}
}

// resize rehashes into a table of size slots, a power of two.
func (x *index) resize(size int) {
	old := x.slots
	x.slots = make([]indexSlot, size)
	x.shift = uint8(64 - bits.TrailingZeros(uint(size)))
	for _, s := range old {
		if s.obj != nil {
			x.insert(s.key, s.obj)
		}
	}
}

// del removes k, if present; the table keeps its size. The pairs after it
// in its probe sequence move back over the hole, so that no look-up stops
// early at it (no tombstones).
func (x *index) del(k uint64) {
	mask := len(x.slots) - 1
	i := x.home(k)
	for x.slots[i].key != k {
		if x.slots[i].obj == nil {
			return
		}
		i = (i + 1) & mask
	}
	if x.slots[i].obj == nil {
		return
	}
	x.n--
	for j := i; ; {
		j = (j + 1) & mask
		s := x.slots[j]
		if s.obj == nil {
			break
		}
		// The pair at j may fill the hole at i unless its home lies
		// cyclically in (i, j]: then it would be found before the hole.
		if h := x.home(s.key); (h-i-1)&mask < (j-i)&mask {
			continue
		}
		x.slots[i] = s
		i = j
	}
	x.slots[i] = indexSlot{}
}
