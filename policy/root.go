// Package policy holds the alerting policies: a detector family with its
// parameters, a severity and the actions attached. Templates apply to every
// traffic group or exporter interface of a partition; a policy on one
// object overrides its template there, or mutes it. The Manager validates
// policies the same way whether they come from the configuration file or
// the HTTP API, persists them through a Store and publishes an immutable
// Set that the detectors read without locks.
package policy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/flowsentry/flowsentry/config/check"
)

// Store persists policies as JSON documents and hands out their IDs.
type Store interface {
	// NextPolicyID returns a new policy ID, never returned before and
	// never saved before, even by a policy deleted since.
	NextPolicyID(ctx context.Context) (uint64, error)
	// SavePolicy inserts or replaces the policy with id; an id that
	// NextPolicyID did not hand out (one of the configuration file) is
	// never handed out afterwards.
	SavePolicy(ctx context.Context, id uint64, doc []byte) error
	// DeletePolicy removes it; deleting a missing policy is not an error.
	DeletePolicy(ctx context.Context, id uint64) error
	// Policies returns every stored document by ID.
	Policies(ctx context.Context) (map[uint64][]byte, error)
}

// ErrNotFound is returned for a policy ID that does not exist.
var ErrNotFound = errors.New("policy not found")

// Checker validates references a policy makes outside itself: partitions,
// traffic groups and plugin instances (with their overrides).
type Checker interface {
	// CheckRefs returns an error naming what p refers to that does not
	// exist or is not allowed.
	CheckRefs(p *Policy) error
}

// Manager owns the policies. It is safe for concurrent use.
type Manager struct {
	store   Store
	checker Checker

	mu  sync.Mutex // serialises writers
	set atomic.Pointer[Set]
	// onChange hears every change of the set in force; guarded by mu.
	onChange func(old, cur *Set)
}

// NewManager returns a manager over store; Load fills it.
func NewManager(store Store, checker Checker) *Manager {
	m := &Manager{store: store, checker: checker}
	m.set.Store(newSet(nil))
	return m
}

// Load is Sync without the list of changes: tests and replays, which
// have nothing to report them to.
func (m *Manager) Load(ctx context.Context, fromConfig []Policy, cids []uint32) error {
	_, err := m.Sync(ctx, fromConfig, cids)
	return err
}

// Sync reads the stored policies and makes those of the configuration
// file (SourceConfig, which keep their IDs) what fromConfig says: new ones
// are added, changed ones replaced, and those the file no longer has are
// removed, from the database too. Then it creates the default templates
// of each family (the manual's three threshold templates) for every
// partition of cids that has no template of that family yet (first
// start, a new partition). It runs at start and on every reload.
//
// A file policy whose ID is that of a policy created through the API is
// refused (the file wins nothing: neither policy is lost), as is a file
// change that leaves an override without its template; on any error
// nothing changes.
//
// The database of a release without sources holds the file's policies
// without one: a stored policy without a source is the file's when the
// file has its ID, an API policy otherwise.
func (m *Manager) Sync(ctx context.Context, fromConfig []Policy, cids []uint32) (Changes, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	docs, err := m.store.Policies(ctx)
	if err != nil {
		return Changes{}, fmt.Errorf("load policies: %w", err)
	}
	stored := make(map[uint64]Policy, len(docs))
	for id, doc := range docs {
		p, err := Decode(doc)
		if err != nil {
			return Changes{}, fmt.Errorf("stored policy %d: %w", id, err)
		}
		p.ID = id
		stored[id] = p
	}
	var errs []error
	file := make(map[uint64]Policy, len(fromConfig))
	for i, p := range fromConfig {
		p = p.Clone()
		p.Normalize()
		p.Source = SourceConfig
		key := fmt.Sprintf("policies[%d].id", i)
		switch old, ok := stored[p.ID]; {
		case p.ID == 0:
			errs = append(errs, check.Errorf(key, "policy %q has no id; give one: policies in the configuration file keep their IDs", p.Name))
		case file[p.ID].ID != 0:
			errs = append(errs, check.Errorf(key, "%d is the ID of another policy of the file; give each policy its own ID", p.ID))
		case ok && old.Source == SourceAPI:
			errs = append(errs, check.Errorf(key, "%d is the ID of policy %q, created through the API; give the file's policy %q another ID, or delete the API's (DELETE /api/v1/policies/%d)", p.ID, old.Name, p.Name, p.ID))
		default:
			file[p.ID] = p
		}
	}
	if len(errs) > 0 {
		return Changes{}, errors.Join(errs...)
	}
	var ch Changes
	all := make(map[uint64]Policy, len(stored)+len(file))
	for id, p := range stored {
		switch _, inFile := file[id]; {
		case p.Source == SourceConfig && !inFile:
			ch.Removed = append(ch.Removed, id)
		case p.Source == "" && !inFile:
			p.Source = SourceAPI
			all[id] = p
		case !inFile:
			all[id] = p
		}
	}
	var changed []Policy
	for id, p := range file {
		old, ok := stored[id]
		switch {
		case !ok:
			ch.Added = append(ch.Added, id)
		case !samePolicy(old, p):
			ch.Changed = append(ch.Changed, id)
		default:
			all[id] = p
			continue
		}
		all[id] = p
		changed = append(changed, p)
	}
	// Check every file policy against the whole set (overrides in the
	// file may name templates of the file) before saving any, so that a
	// bad file changes nothing.
	prev := m.set.Load()
	m.set.Store(newSet(values(all)))
	for i, p := range fromConfig {
		p := all[p.ID]
		if err := m.valid(&p); err != nil {
			errs = append(errs, check.Prefix(fmt.Sprintf("policies[%d]", i), err))
		}
	}
	for _, id := range ch.Removed {
		for _, q := range all {
			if q.Override == id {
				errs = append(errs, fmt.Errorf("policy %d %q overrides template %d %q, which the configuration file no longer has; keep the template in the file, or delete the override first (DELETE /api/v1/policies/%d)",
					q.ID, q.Name, id, stored[id].Name, q.ID))
			}
		}
	}
	if len(errs) > 0 {
		m.set.Store(prev)
		return Changes{}, errors.Join(errs...)
	}
	for _, p := range changed {
		if err := m.save(ctx, &p); err != nil {
			m.set.Store(prev)
			return Changes{}, err
		}
	}
	for _, id := range ch.Removed {
		if err := m.store.DeletePolicy(ctx, id); err != nil {
			m.set.Store(prev)
			return Changes{}, fmt.Errorf("delete policy %d: %w", id, err)
		}
	}
	for _, cid := range cids {
		for _, fam := range Families() {
			if fam.Defaults == nil || hasTemplate(all, cid, fam.Name) {
				continue
			}
			for _, p := range fam.Defaults(cid) {
				p.Normalize()
				p.Source = SourceAPI
				if p.ID, err = m.newID(ctx); err != nil {
					return Changes{}, err
				}
				if err := m.save(ctx, &p); err != nil {
					return Changes{}, err
				}
				all[p.ID] = p
			}
		}
	}
	m.publish(prev, newSet(values(all)))
	ch.sort()
	return ch, nil
}

// samePolicy reports whether a and b encode the same.
func samePolicy(a, b Policy) bool {
	da, errA := Encode(a)
	db, errB := Encode(b)
	return errA == nil && errB == nil && bytes.Equal(da, db)
}

func values(m map[uint64]Policy) []Policy {
	list := make([]Policy, 0, len(m))
	for _, p := range m {
		list = append(list, p)
	}
	return list
}

// hasTemplate reports whether partition cid has a template of family f.
func hasTemplate(all map[uint64]Policy, cid uint32, f Family) bool {
	for _, p := range all {
		if p.CID == cid && p.Family == f && p.Template() {
			return true
		}
	}
	return false
}

// Set returns the policies in force.
func (m *Manager) Set() *Set { return m.set.Load() }

// OnChange sets f to hear every change of the policies in force (Put,
// Delete, Sync: the API or a reload) with the sets before and after, in
// the order of the changes. f runs under the manager's lock: it must be
// quick, must not block and must not call the manager's writers.
func (m *Manager) OnChange(f func(old, cur *Set)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.onChange = f
}

// publish puts next in force and tells the OnChange hook; the caller
// holds m.mu.
func (m *Manager) publish(prev, next *Set) {
	m.set.Store(next)
	if m.onChange != nil {
		m.onChange(prev, next)
	}
}

// Attachments returns the actions attached to a policy in force; the
// action dispatcher calls it for every new alert.
func (m *Manager) Attachments(id uint64) []Attachment { return m.set.Load().Attachments(id) }

// List returns every policy, by ID.
func (m *Manager) List() []Policy {
	all := m.set.Load().all
	out := make([]Policy, len(all))
	for i := range all {
		out[i] = all[i].Clone()
	}
	return out
}

// Get returns one policy.
func (m *Manager) Get(id uint64) (Policy, error) {
	for _, p := range m.set.Load().all {
		if p.ID == id {
			return p.Clone(), nil
		}
	}
	return Policy{}, fmt.Errorf("policy %d: %w", id, ErrNotFound)
}

// Put creates (ID 0) or replaces a policy after validating it, and
// returns it as stored.
func (m *Manager) Put(ctx context.Context, p Policy) (Policy, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p = p.Clone()
	p.Normalize()
	prev := m.set.Load()
	cur := prev.all
	if p.ID != 0 {
		i := slices.IndexFunc(cur, func(q Policy) bool { return q.ID == p.ID })
		if i < 0 {
			return Policy{}, fmt.Errorf("policy %d: %w; create it with id 0", p.ID, ErrNotFound)
		}
		if cur[i].Source == SourceConfig {
			return Policy{}, &ReadOnlyError{ID: p.ID, Name: cur[i].Name}
		}
	}
	p.Source = SourceAPI
	if err := m.valid(&p); err != nil {
		return Policy{}, err
	}
	if p.ID == 0 {
		id, err := m.newID(ctx)
		if err != nil {
			return Policy{}, err
		}
		p.ID = id
	}
	if err := m.save(ctx, &p); err != nil {
		return Policy{}, err
	}
	next := slices.DeleteFunc(slices.Clone(cur), func(q Policy) bool { return q.ID == p.ID })
	m.publish(prev, newSet(append(next, p)))
	return p, nil
}

// Delete removes a policy; overrides of a deleted template go with it.
func (m *Manager) Delete(ctx context.Context, id uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	prev := m.set.Load()
	cur := prev.all
	if !slices.ContainsFunc(cur, func(q Policy) bool { return q.ID == id }) {
		return fmt.Errorf("policy %d: %w", id, ErrNotFound)
	}
	for _, q := range cur {
		switch {
		case q.Source != SourceConfig:
		case q.ID == id:
			return &ReadOnlyError{ID: id, Name: q.Name}
		case q.Override == id:
			return &ReadOnlyError{ID: q.ID, Name: q.Name, Via: id}
		}
	}
	var keep []Policy
	for _, q := range cur {
		if q.ID == id || q.Override == id {
			if err := m.store.DeletePolicy(ctx, q.ID); err != nil {
				return fmt.Errorf("delete policy %d: %w", q.ID, err)
			}
			continue
		}
		keep = append(keep, q)
	}
	m.publish(prev, newSet(keep))
	return nil
}

func (m *Manager) valid(p *Policy) error {
	if err := p.Validate(); err != nil {
		return err
	}
	if p.Override != 0 {
		var tmpl *Policy
		for _, q := range m.set.Load().all {
			if q.ID == p.Override {
				tmpl = &q
			}
		}
		if tmpl == nil || !tmpl.Template() {
			return check.Errorf("override", "policy %d is not a template; override a template policy (one without tgrp or interface)", p.Override)
		}
		if tmpl.CID != p.CID || tmpl.Target != p.Target {
			return check.Errorf("override", "template %d is for partition %d %s; an override must use the same", tmpl.ID, tmpl.CID, tmpl.Target)
		}
	}
	if m.checker != nil {
		return m.checker.CheckRefs(p)
	}
	return nil
}

// newID takes a policy ID from the store, which never hands one out
// twice: an alert's actions must never point at a later policy.
func (m *Manager) newID(ctx context.Context) (uint64, error) {
	id, err := m.store.NextPolicyID(ctx)
	if err != nil {
		return 0, fmt.Errorf("new policy ID: %w", err)
	}
	return id, nil
}

func (m *Manager) save(ctx context.Context, p *Policy) error {
	doc, err := Encode(*p)
	if err != nil {
		return err
	}
	if err := m.store.SavePolicy(ctx, p.ID, doc); err != nil {
		return fmt.Errorf("save policy %d: %w", p.ID, err)
	}
	return nil
}
