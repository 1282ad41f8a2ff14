package newserver

import (
	"context"
	"sync"
)

// MemStore is a Store in memory, safe for concurrent use: for tests, and
// for running without a database.
type MemStore struct {
	mu      sync.Mutex
	entries map[Entry]struct{}
	list    []Entry
	starts  map[policyGroup]Start
	order   []policyGroup
	// Saves counts the calls of AddLearnedServices.
	Saves int
}

// LearnedServices returns what was added.
func (m *MemStore) LearnedServices(context.Context) (State, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var s State
	s.Entries = append(s.Entries, m.list...)
	for _, k := range m.order {
		s.Starts = append(s.Starts, m.starts[k])
	}
	return s, nil
}

// AddLearnedServices adds s, keeping what is already there.
func (m *MemStore) AddLearnedServices(_ context.Context, s State) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.entries == nil {
		m.entries, m.starts = map[Entry]struct{}{}, map[policyGroup]Start{}
	}
	m.Saves++
	for _, e := range s.Entries {
		id := Entry{Policy: e.Policy, Server: e.Server, Proto: e.Proto, Port: e.Port, Client: e.Client}
		if _, ok := m.entries[id]; ok {
			continue
		}
		m.entries[id] = struct{}{}
		m.list = append(m.list, e)
	}
	for _, st := range s.Starts {
		k := policyGroup{st.Policy, st.Group}
		if _, ok := m.starts[k]; ok {
			continue
		}
		m.starts[k] = st
		m.order = append(m.order, k)
	}
	return nil
}
