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

// ErrFromConfig is wrapped by the error of a change, through the API, to
// an instance of the configuration file.
var ErrFromConfig = errors.New("the instance is defined in the configuration file")

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

// Load reads the stored instances and applies those of the configuration
// file (at start and on SIGHUP): the file's instances are saved with
// source "config", and a stored "config" instance the file no longer holds
// is deleted. A stored instance of the API with an ID the file also
// defines refuses the load, naming both; one stored before sources were
// kept belongs to the file when the file has its ID, else to the API.
// Every instance whose values validate gets the defaults of the fields it
// leaves unset, as Put does, so that calls receive them. Stored instances
// whose plugin is gone or whose values no longer validate are kept as
// stored (calls to them fail and are recorded) and reported. A bad file
// changes nothing.
func (s *Instances) Load(ctx context.Context, fromConfig []Instance) (problems []error, err error) {
	stored, err := s.store.Instances(ctx)
	if err != nil {
		return nil, fmt.Errorf("load plugin instances: %w", err)
	}
	inFile := map[uint64]int{}
	for i, in := range fromConfig {
		inFile[in.ID] = i
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
		fromConfig[i].Values, fromConfig[i].Source = values, SourceConfig
	}
	var gone []uint64
	for i, in := range stored {
		j, ok := inFile[in.ID]
		switch {
		case in.Source == SourceAPI && ok:
			errs = append(errs, check.Errorf(fmt.Sprintf("instances[%d].id", j),
				"plugin instance %d %q of the file has the ID of instance %q created through the API: give the file's instance another id, or delete the API's (DELETE /api/v1/instances/%d)",
				in.ID, fromConfig[j].Name, in.Name, in.ID))
		case in.Source == SourceConfig && !ok:
			gone = append(gone, in.ID)
		case in.Source == "" && !ok:
			stored[i].Source = SourceAPI
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.byID)
	for _, in := range stored {
		if values, err := s.reg.CheckInstance(&in); err != nil {
			problems = append(problems, err)
		} else {
			in.Values = values
		}
		s.byID[in.ID] = in
	}
	for _, id := range gone {
		if err := s.store.DeleteInstance(ctx, id); err != nil {
			return problems, fmt.Errorf("delete plugin instance %d, no longer in the configuration file: %w", id, err)
		}
		delete(s.byID, id)
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
		old, ok := s.byID[in.ID]
		if !ok {
			return Instance{}, fmt.Errorf("plugin instance %d: %w; create it with id 0", in.ID, ErrNoInstance)
		}
		if old.Source == SourceConfig {
			return Instance{}, fmt.Errorf("plugin instance %d %q: %w: change it there and reload (SIGHUP)", in.ID, old.Name, ErrFromConfig)
		}
	}
	values, err := s.reg.CheckInstance(&in)
	if err != nil {
		return Instance{}, err
	}
	in.Values, in.Source = values, SourceAPI
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
	in, ok := s.byID[id]
	if !ok {
		return fmt.Errorf("plugin instance %d: %w", id, ErrNoInstance)
	}
	if in.Source == SourceConfig {
		return fmt.Errorf("plugin instance %d %q: %w: remove it there and reload (SIGHUP)", id, in.Name, ErrFromConfig)
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
