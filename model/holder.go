package model

import "sync/atomic"

// Holder holds the model in use. Readers call Load and keep the snapshot for
// as long as they need a consistent view; a reload or a blacklist refresh
// stores a new one, which later Loads return. The zero Holder holds nil. A
// Holder is safe for concurrent use and must not be copied.
type Holder struct {
	p atomic.Pointer[Model]
}

// NewHolder returns a Holder holding m.
func NewHolder(m *Model) *Holder {
	h := new(Holder)
	h.p.Store(m)
	return h
}

// Load returns the model in use.
func (h *Holder) Load() *Model { return h.p.Load() }

// Store makes m the model in use.
func (h *Holder) Store(m *Model) { h.p.Store(m) }
