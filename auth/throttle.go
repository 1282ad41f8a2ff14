package auth

import (
	"container/list"
	"sync"
	"time"
)

// Throttle counts consecutive failures per key (a user name, a client
// address) and refuses a key for a while once it failed too often. It
// remembers a bounded number of keys, forgetting the least recently
// failed first. It is safe for concurrent use.
type Throttle struct {
	after    int
	min, max time.Duration
	capacity int

	mu   sync.Mutex
	lru  *list.List // of *throttled, most recently failed first
	keys map[string]*list.Element
}

type throttled struct {
	key   string
	fails int
	last  time.Time
	until time.Time
}

// NewThrottle locks a key after `after` consecutive failures for min,
// doubling with each further failure up to max, and tracks at most
// capacity keys.
func NewThrottle(after int, min, max time.Duration, capacity int) *Throttle {
	return &Throttle{after: after, min: min, max: max, capacity: capacity, lru: list.New(), keys: make(map[string]*list.Element)}
}

// Locked returns until when the most locked of keys is refused; the zero
// time when none is.
func (t *Throttle) Locked(now time.Time, keys ...string) time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	var until time.Time
	for _, k := range keys {
		if el, ok := t.keys[k]; ok {
			if u := el.Value.(*throttled).until; u.After(now) && u.After(until) {
				until = u
			}
		}
	}
	return until
}

// Fail counts a failure of every key and returns the highest count and
// the latest lock it set (zero when none). A key's count starts again
// after LockMax twice over without a failure.
func (t *Throttle) Fail(now time.Time, keys ...string) (fails int, until time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, k := range keys {
		el, ok := t.keys[k]
		if !ok {
			if t.lru.Len() >= t.capacity {
				old := t.lru.Back()
				t.lru.Remove(old)
				delete(t.keys, old.Value.(*throttled).key)
			}
			el = t.lru.PushFront(&throttled{key: k})
			t.keys[k] = el
		}
		t.lru.MoveToFront(el)
		e := el.Value.(*throttled)
		if now.Sub(e.last) > 2*t.max {
			e.fails = 0
		}
		e.fails++
		e.last = now
		if e.fails >= t.after {
			d := t.max
			if shift := e.fails - t.after; shift < 32 && t.min<<shift < t.max {
				d = t.min << shift
			}
			e.until = now.Add(d)
		}
		fails = max(fails, e.fails)
		if e.until.After(until) {
			until = e.until
		}
	}
	return fails, until
}

// Reset forgets the failures of keys.
func (t *Throttle) Reset(keys ...string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, k := range keys {
		if el, ok := t.keys[k]; ok {
			t.lru.Remove(el)
			delete(t.keys, k)
		}
	}
}

// Len returns the number of keys tracked.
func (t *Throttle) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.lru.Len()
}

// userKey and addrKey are the throttle keys of a user name and a client
// address, apart so that a user named like an address is another key.
func userKey(name string) string { return "user\x00" + name }
func addrKey(addr string) string { return "addr\x00" + addr }
