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
	"net/netip"
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
	// Observe reports that c holds at now.
	Observe(now time.Time, c alert.Condition)
	// Commit hands what was observed since the last tick to the actions
	// now: a stage that finds an attack between ticks (see
	// pipeline.Poller) calls it after Observe.
	Commit()
}

// Watcher is told the addresses under attack whose sampled packet headers
// should be kept (see package samples).
type Watcher interface {
	// Watch marks target as attacked at now.
	Watch(target netip.Addr, now time.Time)
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
	// LearnedStore persists what families learn (new_server's servers
	// and clients); a family asserts the interface it needs. Nil keeps
	// it in memory (replay).
	LearnedStore any
	// Metrics are the families' shared counters; nil counts nowhere.
	Metrics *Metrics
	// Samples keeps the sampled packet headers (sFlow) sent to attacked
	// addresses; a DDoS family calls Watch when it opens an alert. Nil
	// keeps none.
	Samples Watcher
	// Shards are, for a stage of the whole, the family's stages of every
	// shard (built by NewShard), in shard order: the stage of the whole
	// may read them at its Tick, while the shards wait, to merge what
	// several shards saw (a remote scanner probing hosts of every shard).
	Shards []ShardStage
}

// Stage is a family's stage of the whole pipeline: it runs at each tick,
// after the shards ticked and their rates merged, and reads the rate
// objects of every shard through Deps.Objects. Start loads its saved
// state before the pipeline runs; Stop saves it after the pipeline
// stopped.
type Stage interface {
	pipeline.Ticker
	Start(ctx context.Context) error
	Stop()
}

// ShardStage is a family's stage in one shard: it gets the records the
// shard owns, with their model.Class, reads the shard's own rate objects
// through Deps.Objects, and reports its conditions at the shard's tick,
// in parallel with the other shards and without holding them. State kept
// per host (or per session) belongs here: the shard owns every record of
// that host (see package pipeline).
type ShardStage interface {
	pipeline.Stage
}

// Family is a detector family's registration.
type Family struct {
	// Policy is what the policies need: name, object types, parameters
	// and default templates.
	Policy policy.Spec
	// New builds the family's stage of the whole; nil for none.
	New func(d Deps) (Stage, error)
	// NewShard builds the family's stage of one shard, whose rate
	// objects d.Objects are; nil for none.
	NewShard func(d Deps) (ShardStage, error)
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

// NewStages builds the stage of the whole of every registered family that
// has one, over d (whose Family field each gets set to its own name).
func NewStages(d Deps) ([]Stage, error) {
	return build(d, func(f Family) func(Deps) (Stage, error) { return f.New })
}

// NewShardStages builds the stage of one shard of every registered family
// that has one, over d, whose Objects are the shard's.
func NewShardStages(d Deps) ([]ShardStage, error) {
	return build(d, func(f Family) func(Deps) (ShardStage, error) { return f.NewShard })
}

// Build builds the stages of n shards and of the whole for every
// registered family: first the family's stage of each shard i, over
// shard(i), then its stage of the whole over d, with Deps.Shards set to
// the former. shards[i] are the stages of shard i, in family order.
func Build(d Deps, n int, shard func(i int) Deps) (whole []Stage, shards [][]ShardStage, err error) {
	shards = make([][]ShardStage, n)
	for _, f := range Families() {
		var own []ShardStage
		if f.NewShard != nil {
			for i := range n {
				sd := shard(i)
				sd.Family = f.Policy.Name
				s, err := f.NewShard(sd)
				if err != nil {
					return nil, nil, fmt.Errorf("detector %s: %w", f.Policy.Name, err)
				}
				own = append(own, s)
				shards[i] = append(shards[i], s)
			}
		}
		if f.New != nil {
			fd := d
			fd.Family, fd.Shards = f.Policy.Name, own
			s, err := f.New(fd)
			if err != nil {
				return nil, nil, fmt.Errorf("detector %s: %w", f.Policy.Name, err)
			}
			whole = append(whole, s)
		}
	}
	return whole, shards, nil
}

func build[S any](d Deps, ctor func(Family) func(Deps) (S, error)) ([]S, error) {
	var out []S
	for _, f := range Families() {
		newStage := ctor(f)
		if newStage == nil {
			continue
		}
		fd := d
		fd.Family = f.Policy.Name
		s, err := newStage(fd)
		if err != nil {
			return nil, fmt.Errorf("detector %s: %w", f.Policy.Name, err)
		}
		out = append(out, s)
	}
	return out, nil
}
