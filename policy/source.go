package policy

import (
	"fmt"
	"slices"
)

// Source says where a policy is defined, and so who may change it.
type Source string

// The sources of policies.
const (
	// SourceAPI policies were created through the API or are default
	// templates: the database holds them and the API changes them.
	SourceAPI Source = "api"
	// SourceConfig policies are those of the configuration file: the
	// file holds them, a reload (SIGHUP) applies its changes, and the API
	// shows them read-only.
	SourceConfig Source = "config"
)

// ReadOnlyError is the error of a change through the API (Put, Delete) to
// a policy of the configuration file.
type ReadOnlyError struct {
	// ID and Name are the policy's.
	ID   uint64
	Name string
	// Via is the policy the change was asked for when it is not ID itself
	// (a template whose deletion would delete the override ID).
	Via uint64
}

// Error says how to change the policy instead.
func (e *ReadOnlyError) Error() string {
	what := fmt.Sprintf("policy %d %q is defined in the configuration file", e.ID, e.Name)
	if e.Via != 0 {
		what = fmt.Sprintf("policy %d %q, which overrides template %d, is defined in the configuration file", e.ID, e.Name, e.Via)
	}
	return what + "; edit the file and send SIGHUP (systemctl reload flowsentry)"
}

// Changes are the policies of the configuration file that a Sync
// applied, by ID.
type Changes struct {
	Added, Changed, Removed []uint64
}

// Empty reports whether nothing changed.
func (c Changes) Empty() bool {
	return len(c.Added) == 0 && len(c.Changed) == 0 && len(c.Removed) == 0
}

func (c *Changes) sort() {
	for _, ids := range []*[]uint64{&c.Added, &c.Changed, &c.Removed} {
		slices.Sort(*ids)
	}
}
