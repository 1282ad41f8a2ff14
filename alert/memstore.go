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

// SaveAlerts gives the alerts whose ID is 0 the next IDs and stores a copy
// of each.
func (s *MemStore) SaveAlerts(_ context.Context, list []*Alert) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range list {
		if a.ID == 0 {
			s.next++
			a.ID = s.next
		}
		s.alerts[a.ID] = *a
	}
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
