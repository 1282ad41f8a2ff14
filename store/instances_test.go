package store

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/flowsentry/flowsentry/plugin"
)

func TestInstances(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, "")
	slack := plugin.Instance{CID: 1, Plugin: "slack", Name: "ops channel", Values: map[string]string{"URL": "https://example.com/hook", "VERBOSE": "true"}}
	bare := plugin.Instance{CID: 2, Plugin: "logger", Name: "log"}
	fixed := plugin.Instance{ID: 40, CID: 1, Plugin: "blackhole", Name: "from the config", Values: map[string]string{}}
	for _, in := range []*plugin.Instance{&slack, &bare, &fixed} {
		if err := s.SaveInstance(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	if slack.ID != 1 || bare.ID != 2 || fixed.ID != 40 {
		t.Errorf("assigned IDs %d, %d, %d; want 1, 2, 40", slack.ID, bare.ID, fixed.ID)
	}
	slack.Values["VERBOSE"] = "false"
	if err := s.SaveInstance(ctx, &slack); err != nil {
		t.Fatal(err)
	}
	if slack.ID != 1 {
		t.Errorf("replacing instance 1 changed its ID to %d", slack.ID)
	}
	for _, tc := range []struct {
		name    string
		delete  uint64
		wantErr error
		want    []plugin.Instance
	}{
		{name: "saved", want: []plugin.Instance{slack, bare, fixed}},
		{name: "delete", delete: 2, want: []plugin.Instance{slack, fixed}},
		{name: "delete unknown", delete: 2, wantErr: ErrNotFound, want: []plugin.Instance{slack, fixed}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.delete != 0 {
				if err := s.DeleteInstance(ctx, tc.delete); !errors.Is(err, tc.wantErr) {
					t.Errorf("DeleteInstance error = %v, want %v", err, tc.wantErr)
				}
			}
			got, err := s.Instances(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(got, tc.want); diff != "" {
				t.Errorf("Instances (-got +want):\n%s", diff)
			}
		})
	}
}

func TestPolicies(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, "")
	steps := []struct {
		name    string
		do      func() error
		wantErr string
		want    map[uint64][]byte
	}{
		{
			name: "save two",
			do: func() error {
				return errors.Join(s.SavePolicy(ctx, 3, []byte(`{"name":"Packets In"}`)), s.SavePolicy(ctx, 1, []byte(`{}`)))
			},
			want: map[uint64][]byte{1: []byte(`{}`), 3: []byte(`{"name":"Packets In"}`)},
		},
		{
			name: "replace",
			do:   func() error { return s.SavePolicy(ctx, 1, []byte(`{"name":"Bits In"}`)) },
			want: map[uint64][]byte{1: []byte(`{"name":"Bits In"}`), 3: []byte(`{"name":"Packets In"}`)},
		},
		{
			name:    "not JSON",
			do:      func() error { return s.SavePolicy(ctx, 4, []byte(`{`)) },
			wantErr: "store: save policy 4: the document is not valid JSON",
			want:    map[uint64][]byte{1: []byte(`{"name":"Bits In"}`), 3: []byte(`{"name":"Packets In"}`)},
		},
		{
			name:    "ID 0",
			do:      func() error { return s.SavePolicy(ctx, 0, []byte(`{}`)) },
			wantErr: "store: save policy: ID 0 is not an ID: take one from NextPolicyID first",
			want:    map[uint64][]byte{1: []byte(`{"name":"Bits In"}`), 3: []byte(`{"name":"Packets In"}`)},
		},
		{
			name: "delete",
			do:   func() error { return s.DeletePolicy(ctx, 3) },
			want: map[uint64][]byte{1: []byte(`{"name":"Bits In"}`)},
		},
		{
			name: "delete missing is no error",
			do:   func() error { return s.DeletePolicy(ctx, 3) },
			want: map[uint64][]byte{1: []byte(`{"name":"Bits In"}`)},
		},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			err := st.do()
			if (err != nil || st.wantErr != "") && (err == nil || err.Error() != st.wantErr) {
				t.Errorf("error = %v, want %q", err, st.wantErr)
			}
			got, err := s.Policies(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(got, st.want); diff != "" {
				t.Errorf("Policies (-got +want):\n%s", diff)
			}
		})
	}
}
