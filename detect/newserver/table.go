package newserver

import (
	"encoding/binary"
	"math/bits"
	"math/rand/v2"
	"unsafe"

	"github.com/flowsentry/flowsentry/internal/prefetch"
)

// This file holds the two hashed structures of the record path: the
// pending-session table of a shard and the learned sets (see the package
// doc, "Cost per record").

// mum is the folded 128-bit product of wyhash: the mixing step of every
// hash here. Each input word is XORed with a secret before it enters, so
// that a zero operand needs an input equal to a secret.
func mum(x, y uint64) uint64 {
	hi, lo := bits.Mul64(x, y)
	return hi ^ lo
}

// halves reads an address as two words.
func halves(a *[16]byte) (uint64, uint64) {
	return binary.LittleEndian.Uint64(a[:8]), binary.LittleEndian.Uint64(a[8:])
}

// sessionSeed keys the session hash. It is fixed, so that which pending
// sessions share a bucket — and so what an overflowing table forgets — is
// the same from run to run (replays are reproducible). Crafted sessions
// can at most fill their own bucket (probing is bounded), which only
// delays an alert, as any flood of new sessions does.
var sessionSeed = [6]uint64{
	0xa0761d6478bd642f, 0xe7037ed1a0b428db, 0x8ebc6af09c88c6e3,
	0x589965cc75374cc3, 0x1d8e4e27c47d124f, 0x72b7d1c5e35f0a39,
}

// sessionHash is the 64-bit hash of a normalised session (a is the lower
// endpoint).
func sessionHash(a, b *[16]byte, pa, pb uint16, proto uint8) uint64 {
	a0, a1 := halves(a)
	b0, b1 := halves(b)
	k := &sessionSeed
	x := mum(a0^k[0], a1^k[1])
	y := mum(b0^k[2], b1^k[3])
	return mum(x^(uint64(pa)<<24|uint64(pb)<<8|uint64(proto))^k[4], y^k[5])
}

// learnedSeed keys the hashes of the learned sets. It is drawn per
// process: what is learned depends on the traffic of remote clients, and
// a secret seed keeps them from crafting entries that pile up in one run
// of the open-addressing set (probing there is unbounded).
var learnedSeed = func() (k [6]uint64) {
	for i := range k {
		k[i] = rand.Uint64()
	}
	return k
}()

// serverHash hashes a server address: the part of a service hash that
// does not depend on the policy, computed once per record side.
func serverHash(server *[16]byte) uint64 {
	s0, s1 := halves(server)
	return mum(s0^learnedSeed[0], s1^learnedSeed[1])
}

// serviceHash is the hash of service (server hash sh, proto, port) of a
// policy: the key of the learned servers.
func serviceHash(sh, policy uint64, proto uint8, port uint16) uint64 {
	return mum(sh^policy^learnedSeed[2], (uint64(port)<<8|uint64(proto))^learnedSeed[3])
}

// clientHash is the hash of a client of a service of a policy (service
// hash svc): the key of the learned clients.
func clientHash(svc uint64, client *[16]byte) uint64 {
	c0, c1 := halves(client)
	return mum(svc^c0^learnedSeed[4], c1^learnedSeed[5])
}

// hashSet is a set of 64-bit hashes: open addressing with linear probing
// in a power-of-two array, at most 3/4 full. Slot value 0 is empty, so
// hash 0 is stored as 1 (merging two of 2^64 values).
type hashSet struct {
	slots []uint64
	n     int
}

func setKey(h uint64) uint64 {
	if h == 0 {
		return 1
	}
	return h
}

// has reports whether h is in the set.
func (s *hashSet) has(h uint64) bool {
	if s.n == 0 {
		return false
	}
	h = setKey(h)
	mask := uint64(len(s.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		switch s.slots[i] {
		case h:
			return true
		case 0:
			return false
		}
	}
}

// add inserts h and reports whether it was new.
func (s *hashSet) add(h uint64) bool {
	if (s.n+1)*4 > len(s.slots)*3 {
		s.grow()
	}
	h = setKey(h)
	mask := uint64(len(s.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		switch s.slots[i] {
		case h:
			return false
		case 0:
			s.slots[i] = h
			s.n++
			return true
		}
	}
}

func (s *hashSet) grow() {
	old := s.slots
	s.slots = make([]uint64, max(64, 2*len(old)))
	s.n = 0
	for _, h := range old {
		if h != 0 {
			s.add(h)
		}
	}
}

// The pending-session table.
const (
	// ways is the number of slots of a bucket: one cache line holds
	// their hashes, idle times, states and flags.
	ways = 4
	// pendingSlots is the size of a shard's session table (a power of
	// two, the most sessions a shard waits on): 80 bytes a slot, 5 MiB,
	// allocated at the first tracked session.
	pendingSlots = 1 << 16
	// Slot states.
	slotEmpty   = 0
	slotPending = 1
	slotDone    = 2 // qualified: later records are ignored until the tick
)

// bucket is the index of ways slots, one cache line: a lookup reads one
// bucket and, on a hit or an insertion, one session.
type bucket struct {
	tag   [ways]uint64   // sessionHash
	seen  [ways]uint32   // stamp of the tick of the last record; 0 unknown
	state [ways]uint8    // slotEmpty, slotPending, slotDone
	flags [ways][2]uint8 // TCP flags per direction (OR)
	_     [4]byte
}

// session is what the directions of a pending session carried, one cache
// line: per direction the packets (as sampled), the bytes (scaled) and
// the first packet of a first record (not Continued; 0 unknown), and for
// both the first packet of any record (from) and the last (end), which is
// all the rates need.
type session struct {
	packets [2]uint64
	bytes   [2]uint64
	start   [2]int64
	from    int64
	end     int64
}

// pendingTable is a shard's table of pending sessions: a fixed array of
// buckets, the bucket of a session chosen by its hash. A new session
// takes a free slot of its bucket, else the slot idle the longest (an
// overwrite, counted as a drop).
type pendingTable struct {
	buckets []bucket
	sess    []session
	n       int // slots in use
}

func (t *pendingTable) init() {
	t.buckets = make([]bucket, pendingSlots/ways)
	t.sess = make([]session, pendingSlots)
}

// stamp is a tick time (Unix ns) in milliseconds, modulo 2^32: ages are
// differences modulo 2^32, exact while a slot is idle less than 49 days,
// which the eviction at every tick guarantees. 0 is kept for "before the
// first tick".
func stamp(now int64) uint32 {
	if now == 0 {
		return 0
	}
	if v := uint32(now / 1e6); v != 0 {
		return v
	}
	return 1
}

// pendingTimeoutMs is pendingTimeout in stamp units.
const pendingTimeoutMs = uint32(pendingTimeout / 1e6)

// place returns the bucket, way and session of hash h, inserting it when
// absent. When its bucket is full, the new session replaces the slot idle
// the longest if that was last seen before the current tick, else it is
// not tracked (nil session); dropped reports either. fresh reports a
// session inserted, which the caller zeroes before use: place reads and
// writes only the bucket, not the session's line, which a new session
// would otherwise wait for. The slot found or made is marked seen at now,
// so that no place in the same tick takes it for another session while
// its use is still to come.
func (t *pendingTable) place(h uint64, now uint32) (b *bucket, way int, e *session, fresh, dropped bool) {
	if t.buckets == nil {
		t.init()
	}
	bi := int(h & uint64(len(t.buckets)-1))
	b = &t.buckets[bi]
	for i := range ways {
		if b.tag[i] == h && b.state[i] != slotEmpty {
			b.seen[i] = now
			return b, i, &t.sess[bi*ways+i], false, false
		}
	}
	way, oldest := 0, uint32(0)
	for i := range ways {
		if b.state[i] == slotEmpty {
			way = i
			break
		}
		if age := now - b.seen[i]; age > oldest {
			way, oldest = i, age
		}
	}
	if b.state[way] == slotEmpty {
		t.n++
	} else if oldest == 0 {
		// Every slot was used since the tick: keep them (a flood of new
		// sessions does not flush the table within a second).
		return nil, 0, nil, false, true
	} else {
		dropped = true
	}
	b.tag[way], b.state[way], b.flags[way], b.seen[way] = h, slotPending, [2]uint8{}, now
	return b, way, &t.sess[bi*ways+way], true, dropped
}

// prefetchSession asks the processor for the line of session e, without
// waiting.
func prefetchSession(e *session) {
	prefetch.Lines(unsafe.Pointer(e), unsafe.Pointer(e))
}

// prefetch asks the processor for the bucket of hash h, without waiting.
func (t *pendingTable) prefetch(h uint64) {
	if t.buckets == nil {
		t.init()
	}
	b := unsafe.Pointer(&t.buckets[h&uint64(len(t.buckets)-1)])
	prefetch.Lines(b, b)
}

// evict frees the slots resolved at this tick or idle past pendingTimeout,
// and dates the slots filled before the first tick.
func (t *pendingTable) evict(now uint32) {
	if t.n == 0 {
		return
	}
	for bi := range t.buckets {
		b := &t.buckets[bi]
		if b.state == [ways]uint8{} {
			continue
		}
		for i := range ways {
			switch {
			case b.state[i] == slotEmpty:
			case b.seen[i] == 0:
				b.seen[i] = now
				if b.state[i] == slotDone {
					b.state[i] = slotEmpty
					t.n--
				}
			case b.state[i] == slotDone || now-b.seen[i] > pendingTimeoutMs:
				b.state[i] = slotEmpty
				t.n--
			}
		}
	}
}
