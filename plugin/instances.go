package plugin

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/flowsentry/flowsentry/config/check"
)

// ErrNoInstance is returned for a plugin instance ID that does not exist.
var ErrNoInstance = errors.New("plugin instance not found")

// Instances owns the plugin instances: those of the configuration file
// (which keep their IDs) and those created through the API, validated the
// same way against the plugin's gui.json and persisted in a store. It is
// safe for concurrent use.
type Instances struct {
	reg   *Registry
	store InstanceStore

	mu   sync.RWMutex
	byID map[uint64]Instance
}

// NewInstances returns an empty set; Load fills it.
func NewInstances(reg *Registry, store InstanceStore) *Instances {
	return &Instances{reg: reg, store: store, byID: map[uint64]Instance{}}
}

// Load reads the stored instances and upserts those of the configuration
// file. Every instance whose values validate gets the defaults of the
// fields it leaves unset, as Put does, so that calls receive them. Stored
// instances whose plugin is gone or whose values no longer validate are
// kept as stored (calls to them fail and are recorded) and reported.
func (s *Instances) Load(ctx context.Context, fromConfig []Instance) (problems []error, err error) {
	stored, err := s.store.Instances(ctx)
	if err != nil {
		return nil, fmt.Errorf("load plugin instances: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, in := range stored {
		if values, err := s.reg.CheckInstance(&in); err != nil {
			problems = append(problems, err)
		} else {
			in.Values = values
		}
		s.byID[in.ID] = in
	}
	// Check them all before saving any, so that a bad file changes
	// nothing.
	fromConfig = slices.Clone(fromConfig)
	var errs []error
	for i, in := range fromConfig {
		if in.ID == 0 {
			errs = append(errs, check.Errorf(fmt.Sprintf("instances[%d].id", i), "instance %q has no id; give one: instances in the configuration file keep their IDs", in.Name))
			continue
		}
		values, err := s.reg.CheckInstance(&in)
		if err != nil {
			errs = append(errs, check.Prefix(fmt.Sprintf("instances[%d]", i), err))
			continue
		}
		fromConfig[i].Values = values
	}
	if len(errs) > 0 {
		return problems, errors.Join(errs...)
	}
	for _, in := range fromConfig {
		if err := s.store.SaveInstance(ctx, &in); err != nil {
			return problems, fmt.Errorf("save plugin instance %d: %w", in.ID, err)
		}
		s.byID[in.ID] = in
	}
	return problems, nil
}

// Get returns an instance.
func (s *Instances) Get(id uint64) (Instance, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	in, ok := s.byID[id]
	return in, ok
}

// List returns every instance by ID.
func (s *Instances) List() []Instance {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]Instance, 0, len(s.byID))
	for _, in := range s.byID {
		out = append(out, in)
	}
	slices.SortFunc(out, func(a, b Instance) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// Put validates and stores an instance (ID 0 creates one) and returns it
// as stored, with defaults applied.
func (s *Instances) Put(ctx context.Context, in Instance) (Instance, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if in.ID != 0 {
		if _, ok := s.byID[in.ID]; !ok {
			return Instance{}, fmt.Errorf("plugin instance %d: %w; create it with id 0", in.ID, ErrNoInstance)
		}
	}
	values, err := s.reg.CheckInstance(&in)
	if err != nil {
		return Instance{}, err
	}
	in.Values = values
	if err := s.store.SaveInstance(ctx, &in); err != nil {
		return Instance{}, fmt.Errorf("save plugin instance %q: %w", in.Name, err)
	}
	s.byID[in.ID] = in
	return in, nil
}

// Delete removes an instance.
func (s *Instances) Delete(ctx context.Context, id uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.byID[id]; !ok {
		return fmt.Errorf("plugin instance %d: %w", id, ErrNoInstance)
	}
	if err := s.store.DeleteInstance(ctx, id); err != nil {
		return fmt.Errorf("delete plugin instance %d: %w", id, err)
	}
	delete(s.byID, id)
	return nil
}

// CheckOverrides validates a policy's overrides for an instance: only
// fields with allowOverride, with values that pass their fieldspec.
func (s *Instances) CheckOverrides(id uint64, overrides map[string]string) error {
	in, ok := s.Get(id)
	if !ok {
		return fmt.Errorf("plugin instance %d: %w", id, ErrNoInstance)
	}
	p, ok := s.reg.Get(in.Plugin)
	if !ok {
		return fmt.Errorf("plugin instance %d: plugin %q is not installed", id, in.Plugin)
	}
	if _, err := p.ValidateOverrides(overrides); err != nil {
		return keyErrors("overrides", fmt.Sprintf("plugin instance %d", id), err)
	}
	return nil
}
