package detect_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/flowsentry/flowsentry/detect"
	"github.com/flowsentry/flowsentry/flow"
	"github.com/flowsentry/flowsentry/model"
	"github.com/flowsentry/flowsentry/policy"
)

// The families of this test binary; nothing else registers any here.
const (
	famA policy.Family = "test_detect_a"
	famB policy.Family = "test_detect_b"
	// famC has only a stage per shard.
	famC policy.Family = "test_detect_c"
)

// noParams are the parameters of both test families.
type noParams struct{}

func (*noParams) Validate(*policy.Policy) error { return nil }

// stage is a stage that does nothing and remembers its family.
type stage struct{ family policy.Family }

func (*stage) SetModel(*model.Model)               {}
func (*stage) AddClass(*flow.Record, *model.Class) {}
func (*stage) AddCounters(*flow.IfCounters)        {}
func (*stage) Tick(int64)                          {}
func (*stage) Start(ctx context.Context) error     { return nil }
func (*stage) Stop()                               {}

// built records the Deps each New got, and failing makes a family's New
// fail; tests set them and do not run in parallel.
var (
	built   []detect.Deps
	failing = map[policy.Family]error{}
)

func register(name policy.Family) {
	detect.Register(detect.Family{
		Policy: policy.Spec{Name: name, Objects: []string{policy.ObjectGroup}, NewParams: func() policy.Params { return &noParams{} }},
		New: func(d detect.Deps) (detect.Stage, error) {
			built = append(built, d)
			if err := failing[name]; err != nil {
				return nil, err
			}
			return &stage{family: name}, nil
		},
	})
}

func init() {
	// B first: the registry is by name, not by registration.
	register(famB)
	register(famA)
	detect.Register(detect.Family{
		Policy: policy.Spec{Name: famC, Objects: []string{policy.ObjectHost}, NewParams: func() policy.Params { return &noParams{} }},
		NewShard: func(d detect.Deps) (detect.ShardStage, error) {
			built = append(built, d)
			return &stage{family: famC}, nil
		},
	})
}

// TestNewShardStages builds the stages of a shard: only the families that
// have one, each given its name and the caller's Deps (the shard's
// objects); NewStages leaves those families out.
func TestNewShardStages(t *testing.T) {
	built = nil
	t.Cleanup(func() { built = nil })
	in := detect.Deps{Family: "set by the caller", Log: slog.New(slog.DiscardHandler)}
	stages, err := detect.NewShardStages(in)
	if err != nil {
		t.Fatal(err)
	}
	if len(stages) != 1 || stages[0].(*stage).family != famC {
		t.Fatalf("shard stages %v, want famC's only", stages)
	}
	if len(built) != 1 || built[0].Family != famC || built[0].Log != in.Log {
		t.Errorf("famC's NewShard got %+v", built)
	}
}

func TestFamilies(t *testing.T) {
	var got []policy.Family
	for _, f := range detect.Families() {
		got = append(got, f.Policy.Name)
		// Register made the family known to the policies too.
		if s, ok := policy.Lookup(f.Policy.Name); !ok || s.Name != f.Policy.Name {
			t.Errorf("policy.Lookup(%q) = %v, %v", f.Policy.Name, s.Name, ok)
		}
	}
	if diff := cmp.Diff(got, []policy.Family{famA, famB, famC}); diff != "" {
		t.Errorf("Families() (-got +want):\n%s", diff)
	}
}

func TestRegisterTwice(t *testing.T) {
	var got any
	func() {
		defer func() { got = recover() }()
		detect.Register(detect.Family{
			Policy: policy.Spec{Name: famA, NewParams: func() policy.Params { return &noParams{} }},
			New:    func(detect.Deps) (detect.Stage, error) { return &stage{}, nil },
		})
	}()
	if diff := cmp.Diff(got, any(`policy: detector family "test_detect_a" registered twice`)); diff != "" {
		t.Errorf("Register of a registered name panics with (-got +want):\n%s", diff)
	}
	if n := len(detect.Families()); n != 3 {
		t.Errorf("%d families after the second registration, want 3", n)
	}
}

func TestNewStages(t *testing.T) {
	boom := errors.New("boom")
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	in := detect.Deps{
		Family:    "set by the caller", // replaced for each family
		Baselines: detect.BaselineConfig{Warmup: 7 * time.Second, HalfLife: time.Hour},
		Log:       log,
	}
	withFamily := func(f policy.Family) detect.Deps {
		d := in
		d.Family = f
		return d
	}
	for _, tc := range []struct {
		name    string
		failing map[policy.Family]error
		want    []policy.Family // the stages' families
		deps    []detect.Deps   // what each New got
		wantErr string
	}{
		{
			name: "a stage per family, each given its own name",
			want: []policy.Family{famA, famB},
			deps: []detect.Deps{withFamily(famA), withFamily(famB)},
		},
		{
			name:    "an error names its family",
			failing: map[policy.Family]error{famB: boom},
			deps:    []detect.Deps{withFamily(famA), withFamily(famB)},
			wantErr: "detector test_detect_b: boom",
		},
		{
			name:    "the first error stops the building",
			failing: map[policy.Family]error{famA: boom, famB: errors.New("bang")},
			deps:    []detect.Deps{withFamily(famA)},
			wantErr: "detector test_detect_a: boom",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			built, failing = nil, tc.failing
			t.Cleanup(func() { built, failing = nil, nil })
			stages, err := detect.NewStages(in)
			gotErr := ""
			if err != nil {
				gotErr = err.Error()
				if !errors.Is(err, boom) {
					t.Errorf("error %v does not wrap the family's", err)
				}
				if stages != nil {
					t.Errorf("stages %v returned with the error", stages)
				}
			}
			if gotErr != tc.wantErr {
				t.Errorf("NewStages error %q, want %q", gotErr, tc.wantErr)
			}
			var got []policy.Family
			for _, s := range stages {
				got = append(got, s.(*stage).family)
			}
			if diff := cmp.Diff(got, tc.want); diff != "" {
				t.Errorf("stages (-got +want):\n%s", diff)
			}
			samePointer := cmp.Comparer(func(a, b *slog.Logger) bool { return a == b })
			if diff := cmp.Diff(built, tc.deps, samePointer); diff != "" {
				t.Errorf("Deps given to New (-got +want):\n%s", diff)
			}
		})
	}
}
