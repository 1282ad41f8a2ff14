// Package detect is the detector registry. A detector family lives in its
// own package under detect/ and registers itself, in an init function,
// with Register: its name, its object types, the decoding and validation
// of its parameters (through policy.RegisterFamily) and the constructor of
// its pipeline stage. The configuration file, the API, serve and replay
// all reach families through this registry only; package detect/all
// imports every family, one line each.
//
// A family's stage reads the rate objects and the policies of its family
// at each tick and reports the conditions that hold to the alert engine.
package detect

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/flowsentry/flowsentry/alert"
	"github.com/flowsentry/flowsentry/pipeline"
	"github.com/flowsentry/flowsentry/policy"
	"github.com/flowsentry/flowsentry/rates"
)

// Observer receives the conditions that hold at a tick (the alert engine).
type Observer interface {
	Observe(now time.Time, c alert.Condition)
}

// Objects iterates the live rate objects of a kind (the rate engine).
type Objects interface {
	Each(k rates.Kind, fn func(o *rates.Object))
}

// Deps are what a family's stage may use.
type Deps struct {
	// Family is the name the stage was registered under.
	Family policy.Family
	// Policies returns the policies in force; a stage evaluates those of
	// its family.
	Policies func() *policy.Set
	// Objects are the rate objects.
	Objects Objects
	// Observer receives the conditions.
	Observer Observer
	// Baselines configures the families that learn a normal level.
	Baselines BaselineConfig
	// BaselineStore persists learned baselines; nil keeps them in memory.
	BaselineStore BaselineStore
	// Log is the logger.
	Log *slog.Logger
}

// Stage is a family's stage of the whole pipeline: it runs at each tick,
// after the shards ticked and their rates merged, and reads the rate
// objects through Deps.Objects. Start loads its saved state before the
// pipeline runs; Stop saves it after the pipeline stopped. (Families that
// keep state per target host will add a stage per shard, fed records with
// their model.Class.)
type Stage interface {
	pipeline.Ticker
	Start(ctx context.Context) error
	Stop()
}

// Family is a detector family's registration.
type Family struct {
	// Policy is what the policies need: name, object types, parameters
	// and default templates.
	Policy policy.Spec
	// New builds the family's stage.
	New func(d Deps) (Stage, error)
}

var (
	mu       sync.Mutex
	registry []Family
)

// Register adds a family; call it from the family package's init. It
// panics on a duplicate name.
func Register(f Family) {
	mu.Lock()
	defer mu.Unlock()
	policy.RegisterFamily(f.Policy)
	registry = append(registry, f)
	slices.SortFunc(registry, func(a, b Family) int { return strings.Compare(string(a.Policy.Name), string(b.Policy.Name)) })
}

// Families returns the registered families by name.
func Families() []Family {
	mu.Lock()
	defer mu.Unlock()
	return slices.Clone(registry)
}

// NewStages builds the stage of every registered family over d (whose
// Family field each gets set to its own name).
func NewStages(d Deps) ([]Stage, error) {
	var out []Stage
	for _, f := range Families() {
		fd := d
		fd.Family = f.Policy.Name
		s, err := f.New(fd)
		if err != nil {
			return nil, fmt.Errorf("detector %s: %w", f.Policy.Name, err)
		}
		out = append(out, s)
	}
	return out, nil
}
