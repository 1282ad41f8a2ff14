package policy

import (
	"context"
	"maps"
	"sync"
)

// MemStore is a Store in memory, for replays (which persist nothing) and
// tests. It is safe for concurrent use.
type MemStore struct {
	mu   sync.Mutex
	docs map[uint64][]byte
	last uint64 // the highest ID handed out or saved
}

// NextPolicyID returns an ID above every ID handed out or saved before,
// deleted ones included.
func (m *MemStore) NextPolicyID(context.Context) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.last++
	return m.last, nil
}

// SavePolicy stores doc.
func (m *MemStore) SavePolicy(_ context.Context, id uint64, doc []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.docs == nil {
		m.docs = map[uint64][]byte{}
	}
	m.docs[id] = doc
	m.last = max(m.last, id)
	return nil
}

// DeletePolicy forgets a policy.
func (m *MemStore) DeletePolicy(_ context.Context, id uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.docs, id)
	return nil
}

// Policies returns a copy of the stored documents.
func (m *MemStore) Policies(context.Context) (map[uint64][]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return maps.Clone(m.docs), nil
}
