package plugin

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/flowsentry/flowsentry/config/check"
)

// Registry holds the plugins of the plugin folder: one per subfolder that
// holds a gui.json, valid or not. It is safe for concurrent use; Rescan
// replaces the set while calls in flight keep the Plugin they got.
type Registry struct {
	dir     string
	mu      sync.RWMutex
	plugins map[string]*Plugin
}

// Load scans the plugin folder dir. The errors are the folder's problem,
// if it cannot be read, and each invalid plugin's Err; invalid plugins are
// listed all the same.
func Load(dir string) (*Registry, []error) {
	r := &Registry{dir: dir, plugins: map[string]*Plugin{}}
	return r, r.Rescan()
}

// Rescan reads the plugin folder again and replaces the plugins. If the
// folder cannot be read the plugins stay as they were.
func (r *Registry) Rescan() []error {
	entries, err := os.ReadDir(r.dir)
	if err != nil {
		return []error{fmt.Errorf("plugin folder %s: %w; create it or set plugin_dir to the folder holding one subfolder per plugin", r.dir, unwrapPath(err))}
	}
	plugins := make(map[string]*Plugin, len(entries))
	var errs []error
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		dir := filepath.Join(r.dir, e.Name())
		// Stat follows links: a plugin folder may be a symbolic link.
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, SpecFile)); errors.Is(err, os.ErrNotExist) {
			continue
		}
		p := LoadDir(dir)
		p.Name = e.Name()
		if p.Err != nil {
			errs = append(errs, p.Err)
		}
		plugins[p.Name] = p
	}
	r.mu.Lock()
	r.plugins = plugins
	r.mu.Unlock()
	return errs
}

// Dir returns the plugin folder.
func (r *Registry) Dir() string { return r.dir }

// Get returns the plugin in the subfolder name, valid or not.
func (r *Registry) Get(name string) (*Plugin, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	p, ok := r.plugins[name]
	return p, ok
}

// List returns every plugin, valid or not, by name.
func (r *Registry) List() []*Plugin {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]*Plugin, 0, len(r.plugins))
	for _, name := range slices.Sorted(maps.Keys(r.plugins)) {
		out = append(out, r.plugins[name])
	}
	return out
}

// CheckInstance checks that an instance has a name, names a valid plugin
// of the folder and has valid values; it returns the values with the
// defaults applied. The problems are *check.Error values at the key path
// of the instance's field ("name", "plugin", "values.EMAIL_MAILPORT").
func (r *Registry) CheckInstance(in *Instance) (map[string]string, error) {
	if strings.TrimSpace(in.Name) == "" {
		return nil, check.Errorf("name", "plugin instance %d: name is empty; give the instance a name", in.ID)
	}
	p, ok := r.Get(in.Plugin)
	if !ok {
		names := make([]string, 0)
		for _, p := range r.List() {
			names = append(names, p.Name)
		}
		return nil, check.Errorf("plugin", "plugin instance %q: plugin %q is not in the plugin folder %s; installed: %s",
			in.Name, in.Plugin, r.dir, strings.Join(names, ", "))
	}
	values, err := p.ValidateValues(in.Values)
	if err != nil {
		return nil, keyErrors("values", fmt.Sprintf("plugin instance %q", in.Name), err)
	}
	return values, nil
}

// keyErrors turns the problems of ValidateValues or ValidateOverrides
// into *check.Error values at field.KEY (at field for the problems of the
// whole plugin), each message starting with what.
func keyErrors(field, what string, err error) error {
	var out []error
	for _, e := range check.Flatten(err) {
		path := field
		var pe *Error
		if errors.As(e, &pe) && pe.Key != "" {
			path += "." + pe.Key
		}
		out = append(out, check.Errorf(path, "%s: %v", what, e))
	}
	return errors.Join(out...)
}
