package exfil

import (
	"encoding/binary"
	"math/rand/v2"
	"unsafe"

	"github.com/flowsentry/flowsentry/internal/hashmix"
	"github.com/flowsentry/flowsentry/internal/hugemem"
	"github.com/flowsentry/flowsentry/internal/prefetch"
)

// The session table (see "State and memory" in the package
// documentation): a flat array of 16-byte slots, in buckets of
// bucketSlots slots (64 bytes, a cache line), each session in one of two
// buckets chosen by its hash.
const (
	bucketSlots = 4
	// minSlots is the size of a new table; it doubles when half full,
	// up to maxSlots.
	minSlots = 4096
	maxSlots = 2 * MaxSessions

	// A slot's val packs the bytes the session sent (saturating at
	// maxBytes) above its last-seen second, modulo 2^lastBits.
	lastBits = 20
	lastMask = 1<<lastBits - 1
	maxBytes = 1<<(64-lastBits) - 1
	// maxJump is how far the clock may move between two calls of setNow
	// before every session is taken as ended: beyond it, a last-seen
	// second modulo 2^lastBits could no longer be told from a recent one.
	maxJump = 1 << (lastBits - 2)
)

// slot is one session: key is its 5-tuple's hash (never 0; 0 marks a
// free slot), val its bytes and last-seen second.
type slot struct {
	key, val uint64
}

// bucket is the slots of a bucket: a cache line, as the table's array is
// 64-byte aligned (a large allocation starts on a page).
type bucket [bucketSlots]slot

func (v slot) bytes() uint64 { return v.val >> lastBits }

// idleFor returns the seconds since the slot's last record, at now (a
// second modulo 2^lastBits); 0 when its last record is later than now
// (the clock went back).
func (v slot) idleFor(now uint32) uint32 {
	d := (now - uint32(v.val)) & lastMask
	if d >= 1<<(lastBits-1) {
		return 0
	}
	return d
}

func pack(bytes uint64, now uint32) uint64 { return bytes<<lastBits | uint64(now&lastMask) }

// table holds the sessions of a shard.
type table struct {
	slots []slot
	mask  uint64 // buckets - 1
	n     int    // slots in use, ended sessions not yet swept included
	seed  [4]uint64
	// mem holds slots, on huge pages (see hugemem): a look-up in a
	// big table misses the cache, and would miss the TLB too. Freed
	// when the table grows, or once it is garbage.
	mem *hugemem.Table[slot]
}

func newTable() table {
	t := table{seed: [4]uint64{rand.Uint64(), rand.Uint64(), rand.Uint64(), rand.Uint64()}}
	t.alloc(minSlots)
	return t
}

func (t *table) alloc(n int) {
	t.mem.Free()
	t.mem = hugemem.Make[slot](n)
	t.slots = t.mem.S
	t.mask = uint64(n/bucketSlots - 1)
	t.n = 0
}

// offHeap returns the bytes of the slots mapped outside the Go heap.
func (t *table) offHeap() int { return t.mem.OffHeap() }

func nonzero(h uint64) uint64 {
	if h == 0 {
		return 1
	}
	return h
}

// hash4 and hash6 hash the 5-tuple of an IPv4 or IPv6 session with the
// table's random seed.
func (t *table) hash4(src, dst [4]byte, sport, dport uint16, proto uint8) uint64 {
	a := uint64(binary.BigEndian.Uint32(src[:]))<<32 | uint64(binary.BigEndian.Uint32(dst[:]))
	b := uint64(sport)<<24 | uint64(dport)<<8 | uint64(proto)
	return nonzero(hashmix.Mum(hashmix.Mum(a^t.seed[0], b^t.seed[1])^t.seed[2], t.seed[3]|1))
}

func (t *table) hash6(src, dst [16]byte, sport, dport uint16, proto uint8) uint64 {
	be := binary.BigEndian
	b := 1<<40 | uint64(sport)<<24 | uint64(dport)<<8 | uint64(proto)
	h := hashmix.Mum(be.Uint64(src[:8])^t.seed[0], be.Uint64(src[8:])^t.seed[1])
	h = hashmix.Mum(h^be.Uint64(dst[:8])^t.seed[2], be.Uint64(dst[8:])^t.seed[3])
	return nonzero(hashmix.Mum(h^b^t.seed[0], t.seed[3]|1))
}

// buckets returns the two buckets of key k.
func (t *table) buckets(k uint64) (b1, b2 *bucket) {
	i, j := (k&t.mask)*bucketSlots, (k>>32&t.mask)*bucketSlots
	return (*bucket)(t.slots[i : i+bucketSlots]), (*bucket)(t.slots[j : j+bucketSlots])
}

// other returns the bucket of key k that is not b.
func (t *table) other(k uint64, b *bucket) *bucket {
	b1, b2 := t.buckets(k)
	if b1 == b {
		return b2
	}
	return b1
}

// add adds n bytes to session k at second now (with sessions idle longer
// than idle ended) and returns its bytes before and after. evicted
// reports that a live session was lost to make room (see evict).
func (t *table) add(k, n uint64, now, idle uint32) (before, after uint64, evicted bool) {
	b1, b2 := t.buckets(k)
	for i := range b1 {
		if b1[i].key == k {
			return t.update(&b1[i], n, now, idle)
		}
	}
	for i := range b2 {
		if b2[i].key == k {
			return t.update(&b2[i], n, now, idle)
		}
	}
	if t.n >= len(t.slots)/2 && len(t.slots) < maxSlots {
		t.grow(now, idle)
		b1, b2 = t.buckets(k)
	}
	n = min(n, maxBytes)
	return 0, n, !t.insert(b1, b2, slot{k, pack(n, now)}, now, idle)
}

func (t *table) update(s *slot, n uint64, now, idle uint32) (before, after uint64, evicted bool) {
	if s.idleFor(now) <= idle {
		before = s.bytes()
	} // else the session ended; this is a new one
	after = before + min(n, maxBytes-before)
	s.val = pack(after, now)
	return before, after, false
}

// insert puts v, a new session, in one of its buckets b1 and b2; false
// when a live session was lost to make room.
func (t *table) insert(b1, b2 *bucket, v slot, now, idle uint32) bool {
	// One pass over both buckets finds their free slots (empty, or of
	// an ended session) and the session evict would replace.
	f1, i1, low1, r1 := b1.scan(now, idle)
	f2, i2, low2, r2 := b2.scan(now, idle)
	if f1 > 0 || f2 > 0 {
		// The first free slot of the bucket with more of them, b1 on a tie.
		b, i := b1, i1
		if f2 > f1 {
			b, i = b2, i2
		}
		if b[i].key == 0 {
			t.n++
		}
		b[i] = v
		return true
	}
	if t.n < len(t.slots)/4*3 && (t.displace(b1, v, now, idle) || t.displace(b2, v, now, idle)) {
		return true
	}
	// evict: the session with the fewest bytes (the oldest of equals, b1's
	// first on a tie) gives way to v, unless v has fewer: the sessions
	// that matter are the ones that sent much, and a flood of new small
	// sessions then replaces its own.
	victim := &b1[low1]
	if r2 < r1 {
		victim = &b2[low2]
	}
	if v.bytes() >= victim.bytes() {
		*victim = v
	}
	return false
}

// scan returns how many slots of b are free, the first of them, and the
// slot to evict first and its rank: sessions rank by bytes, then by how
// long they have been idle (longer first).
func (b *bucket) scan(now, idle uint32) (free, first, low int, rank uint64) {
	first, rank = -1, ^uint64(0)
	for i := range b {
		d := b[i].idleFor(now)
		if b[i].key == 0 || d > idle {
			if free == 0 {
				first = i
			}
			free++
		}
		if r := b[i].val&^lastMask | uint64(lastMask-d); r < rank {
			low, rank = i, r
		}
	}
	return free, first, low, rank
}

// free returns how many slots of b are free, and the first of them.
func (b *bucket) free(now, idle uint32) (n, first int) {
	n, first, _, _ = b.scan(now, idle)
	return n, first
}

// displace moves a session of the full bucket b to its other bucket if
// that has a free slot, and puts v in its place; false when none can
// move. A table below three quarters full tries it before evicting: two
// choices of four slots and one such move keep every session up to half
// full (MaxSessions), as a uniform hash places them.
func (t *table) displace(b *bucket, v slot, now, idle uint32) bool {
	for i := range b {
		o := t.other(b[i].key, b)
		if f, j := o.free(now, idle); f > 0 {
			if o[j].key == 0 {
				t.n++
			}
			o[j], b[i] = b[i], v
			return true
		}
	}
	return false
}

// growAhead is how many old slots ahead grow fetches the buckets of:
// about 8 sessions, as old is half full.
const growAhead = 16

// grow doubles the table, leaving ended sessions behind. Moving each
// session reads its two new buckets, lines anywhere in the new table:
// grow fetches them growAhead slots in advance, so that the moves of a
// million sessions wait on memory together, not one after the other.
func (t *table) grow(now, idle uint32) {
	old, mem := t.slots, t.mem
	defer mem.Free()
	t.mem = nil // freed once old is copied
	t.alloc(min(2*len(old), maxSlots))
	for i, v := range old {
		if j := i + growAhead; j < len(old) && old[j].key != 0 {
			t.prefetch(old[j].key)
		}
		if v.key != 0 && v.idleFor(now) <= idle {
			b1, b2 := t.buckets(v.key)
			t.insert(b1, b2, v, now, idle) // never full: the new table is at most a quarter full
		}
	}
}

// sweep frees the slots of ended sessions.
func (t *table) sweep(now, idle uint32) {
	for i := range t.slots {
		if t.slots[i].key != 0 && t.slots[i].idleFor(now) > idle {
			t.slots[i] = slot{}
			t.n--
		}
	}
}

// reset forgets every session.
func (t *table) reset() {
	clear(t.slots)
	t.n = 0
}

// prefetch asks the processor for the buckets of key k, without waiting.
func (t *table) prefetch(k uint64) {
	b1, b2 := t.buckets(k)
	prefetch.Lines(unsafe.Pointer(b1), unsafe.Pointer(b2))
}
