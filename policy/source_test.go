package policy_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/flowsentry/flowsentry/policy"
)

// TestSources follows the policies of a configuration file and of the API
// through restarts and reloads over one store.
func TestSources(t *testing.T) {
	ctx := context.Background()
	st := &policy.MemStore{}
	filePolicy := func(id uint64, name string, severity int) policy.Policy {
		return policy.Policy{ID: id, Name: name, Family: fakeFamily, Target: policy.TargetGroups,
			Object: policy.ObjectGroup, Severity: severity, Params: &fakeParams{Limit: 3}}
	}
	var apiID uint64
	for _, tc := range []struct {
		name string
		file []policy.Policy
		// then runs after the Sync, on a manager of the store.
		then    func(t *testing.T, m *policy.Manager)
		want    policy.Changes
		wantErr string
		sources map[string]policy.Source
	}{
		{name: "first start", file: []policy.Policy{filePolicy(100, "web", 2), filePolicy(101, "dns", 2)},
			want:    policy.Changes{Added: []uint64{100, 101}},
			sources: map[string]policy.Source{"web": policy.SourceConfig, "dns": policy.SourceConfig},
			then: func(t *testing.T, m *policy.Manager) {
				p, err := m.Get(100)
				if err != nil {
					t.Fatal(err)
				}
				p.Severity = 7
				var ro *policy.ReadOnlyError
				if _, err := m.Put(ctx, p); !errors.As(err, &ro) || ro.ID != 100 {
					t.Errorf("Put of a file policy: %v, want a ReadOnlyError", err)
				}
				if err := m.Delete(ctx, 100); !errors.As(err, &ro) || !strings.Contains(err.Error(), "send SIGHUP") {
					t.Errorf("Delete of a file policy: %v, want a ReadOnlyError", err)
				}
				p.ID, p.Name, p.Source = 0, "mine", policy.SourceConfig // a request's source is ignored
				saved, err := m.Put(ctx, p)
				if err != nil {
					t.Fatal(err)
				}
				apiID = saved.ID
				if saved.Source != policy.SourceAPI {
					t.Errorf("API policy source = %q, want api", saved.Source)
				}
			}},
		{name: "restart, file unchanged", file: []policy.Policy{filePolicy(100, "web", 2), filePolicy(101, "dns", 2)},
			sources: map[string]policy.Source{"web": policy.SourceConfig, "dns": policy.SourceConfig, "mine": policy.SourceAPI}},
		{name: "reload: one changed, one removed, one added", file: []policy.Policy{filePolicy(100, "web", 5), filePolicy(150, "ntp", 1)},
			want:    policy.Changes{Added: []uint64{150}, Changed: []uint64{100}, Removed: []uint64{101}},
			sources: map[string]policy.Source{"web": policy.SourceConfig, "ntp": policy.SourceConfig, "mine": policy.SourceAPI},
			then: func(t *testing.T, m *policy.Manager) {
				if p, _ := m.Get(100); p.Severity != 5 {
					t.Errorf("changed policy severity = %d, want 5", p.Severity)
				}
			}},
		{name: "a file ID of an API policy is refused", file: []policy.Policy{filePolicy(100, "web", 5), {}},
			wantErr: "is the ID of policy \"mine\", created through the API"},
		{name: "a bad file is refused", file: []policy.Policy{filePolicy(100, "web", -1)},
			wantErr: "policies[0].severity: -1 is negative"},
		{name: "restart after the refusals: they changed nothing", file: []policy.Policy{filePolicy(100, "web", 5), filePolicy(150, "ntp", 1)},
			sources: map[string]policy.Source{"web": policy.SourceConfig, "ntp": policy.SourceConfig, "mine": policy.SourceAPI}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.wantErr != "" && len(tc.file) == 2 && tc.file[1].Name == "" {
				tc.file[1] = filePolicy(apiID, "clash", 1)
			}
			m := policy.NewManager(st, nil)
			ch, err := m.Sync(ctx, tc.file, nil)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Sync error = %v, want %q", err, tc.wantErr)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(ch, tc.want); diff != "" {
				t.Errorf("changes (-got +want):\n%s", diff)
			}
			if tc.sources != nil {
				got := map[string]policy.Source{}
				for _, p := range m.List() {
					got[p.Name] = p.Source
				}
				if diff := cmp.Diff(got, tc.sources); diff != "" {
					t.Errorf("sources (-got +want):\n%s", diff)
				}
			}
			if tc.then != nil {
				tc.then(t, m)
			}
		})
	}
}
