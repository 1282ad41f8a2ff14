package plugin

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestInstances(t *testing.T) {
	ctx := context.Background()
	reg, errs := Load("../examples")
	if len(errs) != 0 {
		t.Fatalf("examples: %v", errs)
	}
	st := &MemInstances{}
	s := NewInstances(reg, st)
	cfg := []Instance{{ID: 1, Name: "mail ops", Plugin: "email", Values: map[string]string{"EMAIL_USERNAME": "ops"}}}
	if _, err := s.Load(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	in, ok := s.Get(1)
	if !ok || in.Values["EMAIL_USERNAME"] != "ops" {
		t.Fatalf("config instance: %+v", in)
	}
	created, err := s.Put(ctx, Instance{Name: "mail noc", Plugin: "email", CID: 0, Values: map[string]string{"EMAIL_MAILPORT": "25"}})
	if err != nil {
		t.Fatal(err)
	}
	if created.ID == 0 || created.Values["EMAIL_MAILPORT"] != "25" {
		t.Fatalf("created: %+v", created)
	}
	if _, err := s.Put(ctx, Instance{Name: "bad", Plugin: "email", Values: map[string]string{"EMAIL_MAILPORT": "70000"}}); err == nil || !strings.Contains(err.Error(), "EMAIL_MAILPORT") {
		t.Errorf("out of range value: %v", err)
	}
	if _, err := s.Put(ctx, Instance{Name: "nope", Plugin: "nope"}); err == nil || !strings.Contains(err.Error(), `plugin "nope" is not in the plugin folder`) {
		t.Errorf("unknown plugin: %v", err)
	}
	if err := s.CheckOverrides(1, map[string]string{"EMAIL_BODY": "hi"}); err != nil {
		t.Errorf("EMAIL_BODY allows overrides: %v", err)
	}
	if err := s.CheckOverrides(1, map[string]string{"EMAIL_PASSWORD": "x"}); err == nil {
		t.Error("EMAIL_PASSWORD does not allow overrides")
	}
	if err := s.Delete(ctx, created.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, created.ID); !errors.Is(err, ErrNoInstance) {
		t.Errorf("second delete: %v", err)
	}
	// A restart over the same store finds the config instance.
	s2 := NewInstances(reg, st)
	if _, err := s2.Load(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if got := len(s2.List()); got != 1 {
		t.Errorf("after restart %d instances, want 1", got)
	}
}

// TestInstancesDefaults checks that an instance gets the default of a
// field it leaves unset (EMAIL_MAILPORT's "value": "587" in the manual's
// gui.json) wherever it comes from; Get gives the values a call receives.
func TestInstancesDefaults(t *testing.T) {
	reg, errs := Load("../examples")
	if len(errs) != 0 {
		t.Fatalf("examples: %v", errs)
	}
	given := map[string]string{"EMAIL_USERNAME": "ops"}
	want := map[string]string{"EMAIL_USERNAME": "ops", "EMAIL_MAILPORT": "587"}
	cases := []struct {
		name   string
		stored []Instance // in the store before Load
		config []Instance
		put    *Instance
	}{
		{name: "configuration file", config: []Instance{{ID: 1, Name: "mail ops", Plugin: "email", Values: given}}},
		{name: "store", stored: []Instance{{ID: 1, Name: "mail ops", Plugin: "email", Values: given}}},
		{name: "API", put: &Instance{Name: "mail ops", Plugin: "email", Values: given}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			st := &MemInstances{}
			for _, in := range c.stored {
				if err := st.SaveInstance(ctx, &in); err != nil {
					t.Fatal(err)
				}
			}
			s := NewInstances(reg, st)
			if _, err := s.Load(ctx, c.config); err != nil {
				t.Fatal(err)
			}
			if c.put != nil {
				if _, err := s.Put(ctx, *c.put); err != nil {
					t.Fatal(err)
				}
			}
			in, ok := s.Get(1)
			if !ok {
				t.Fatalf("no instance 1 in %+v", s.List())
			}
			if diff := cmp.Diff(in.Values, want); diff != "" {
				t.Errorf("values (-got +want):\n%s", diff)
			}
		})
	}
}
