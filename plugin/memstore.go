package plugin

import (
	"context"
	"sync"
)

// MemInstances is an in-memory InstanceStore, for replays and checks
// (which persist nothing) and tests; it assigns IDs from 1.
type MemInstances struct {
	mu   sync.Mutex
	next uint64
	m    map[uint64]Instance
}

// SaveInstance stores in, assigning an ID when it has none.
func (s *MemInstances) SaveInstance(_ context.Context, in *Instance) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[uint64]Instance{}
	}
	if in.ID == 0 {
		s.next++
		in.ID = s.next
	}
	s.next = max(s.next, in.ID)
	s.m[in.ID] = *in
	return nil
}

// DeleteInstance forgets an instance.
func (s *MemInstances) DeleteInstance(_ context.Context, id uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, id)
	return nil
}

// Instances returns the stored instances.
func (s *MemInstances) Instances(context.Context) ([]Instance, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Instance, 0, len(s.m))
	for _, in := range s.m {
		out = append(out, in)
	}
	return out, nil
}
