package alert

import (
	"cmp"
	"context"
	"slices"
	"sync"
)

// MemStore is a Store in memory, for replays (which persist nothing) and
// tests. It is safe for concurrent use.
type MemStore struct {
	mu     sync.Mutex
	next   uint64
	alerts map[uint64]Alert
}

// NewMemStore returns an empty store whose first ID is first+1.
func NewMemStore(first uint64) *MemStore {
	return &MemStore{next: first, alerts: map[uint64]Alert{}}
}

// NextAlertID returns the next ID.
func (s *MemStore) NextAlertID(context.Context) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.next++
	return s.next, nil
}

// SaveAlert stores a copy of a.
func (s *MemStore) SaveAlert(_ context.Context, a *Alert) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.alerts[a.ID] = *a
	return nil
}

// OpenAlerts returns the alerts not deleted.
func (s *MemStore) OpenAlerts(context.Context) ([]Alert, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Alert
	for _, a := range s.alerts {
		if a.Open() {
			out = append(out, a)
		}
	}
	return out, nil
}

// Alerts returns the alerts matching q, highest ID first.
func (s *MemStore) Alerts(_ context.Context, q Query) ([]Alert, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Alert
	for _, a := range s.alerts {
		switch {
		case q.IDs != nil && !slices.Contains(q.IDs, a.ID):
		case q.CIDs != nil && !slices.Contains(q.CIDs, a.CID):
		case !q.CreatedSince.IsZero() && a.Earliest.Before(q.CreatedSince):
		case !q.ActiveSince.IsZero() && !a.Open() && a.Latest.Before(q.ActiveSince):
		default:
			out = append(out, a)
		}
	}
	slices.SortFunc(out, func(a, b Alert) int { return cmp.Compare(b.ID, a.ID) })
	if q.Limit > 0 && len(out) > q.Limit {
		out = out[:q.Limit]
	}
	return out, nil
}

// stored returns the stored copy of alert id.
func (s *MemStore) stored(id uint64) (Alert, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.alerts[id]
	return a, ok
}
