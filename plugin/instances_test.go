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
	// A restart over the same store and file finds the config instance.
	s2 := NewInstances(reg, st)
	if _, err := s2.Load(ctx, cfg); err != nil {
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

// TestInstanceSources checks the ownership of instances: the file's are
// read-only through Put and Delete, follow the file on every Load (added,
// changed, removed), an API instance survives loads, an ID clash between
// the two refuses the load and changes nothing, and an instance stored
// before sources were kept is assigned one.
func TestInstanceSources(t *testing.T) {
	ctx := context.Background()
	reg, errs := Load("../examples")
	if len(errs) != 0 {
		t.Fatalf("examples: %v", errs)
	}
	st := &MemInstances{}
	s := NewInstances(reg, st)
	file := []Instance{{ID: 100, Name: "mail ops", Plugin: "email", Values: map[string]string{"EMAIL_USERNAME": "ops"}}}
	if _, err := s.Load(ctx, file); err != nil {
		t.Fatal(err)
	}
	if in, _ := s.Get(100); in.Source != SourceConfig {
		t.Errorf("file instance source %q, want config", in.Source)
	}
	if _, err := s.Put(ctx, Instance{ID: 100, Name: "renamed", Plugin: "email"}); !errors.Is(err, ErrFromConfig) {
		t.Errorf("Put of a file instance: %v, want ErrFromConfig", err)
	}
	if err := s.Delete(ctx, 100); !errors.Is(err, ErrFromConfig) {
		t.Errorf("Delete of a file instance: %v, want ErrFromConfig", err)
	}
	api, err := s.Put(ctx, Instance{Name: "mail noc", Plugin: "email", Values: map[string]string{"EMAIL_MAILPORT": "25"}, Source: SourceConfig})
	if err != nil {
		t.Fatal(err)
	}
	if api.Source != SourceAPI {
		t.Errorf("API instance source %q, want api (a source in the request is ignored)", api.Source)
	}

	// The file changes instance 100's values and adds 50.
	file = []Instance{
		{ID: 100, Name: "mail ops", Plugin: "email", Values: map[string]string{"EMAIL_USERNAME": "ops2"}},
		{ID: 50, Name: "mail sec", Plugin: "email"},
	}
	if _, err := s.Load(ctx, file); err != nil {
		t.Fatal(err)
	}
	if in, _ := s.Get(100); in.Values["EMAIL_USERNAME"] != "ops2" {
		t.Errorf("changed file instance: %+v", in)
	}
	if _, ok := s.Get(50); !ok {
		t.Error("instance added to the file is missing")
	}
	// An ID clash with the API's instance refuses the load, changing
	// nothing.
	clash := append(file, Instance{ID: api.ID, Name: "clash", Plugin: "email"})
	if _, err := s.Load(ctx, clash); err == nil || !strings.Contains(err.Error(), "created through the API") {
		t.Errorf("ID clash: %v", err)
	}
	if in, _ := s.Get(api.ID); in.Name != "mail noc" {
		t.Errorf("a refused load changed instance %d: %+v", api.ID, in)
	}
	// The file drops 100: it goes, from the store too; the API's stays.
	if _, err := s.Load(ctx, file[1:]); err != nil {
		t.Fatal(err)
	}
	restarted := NewInstances(reg, st)
	if _, err := restarted.Load(ctx, file[1:]); err != nil {
		t.Fatal(err)
	}
	for _, x := range []*Instances{s, restarted} {
		var ids []uint64
		for _, in := range x.List() {
			ids = append(ids, in.ID)
		}
		if diff := cmp.Diff([]uint64{50, api.ID}, ids); diff != "" {
			t.Errorf("instances after the file dropped 100 (-want +got):\n%s", diff)
		}
	}

	// Stored before sources: the file's ID makes it the file's, else the
	// API's.
	old := &MemInstances{}
	for _, in := range []Instance{{ID: 1, Name: "a", Plugin: "email"}, {ID: 2, Name: "b", Plugin: "email"}} {
		_ = old.SaveInstance(ctx, &in)
	}
	s3 := NewInstances(reg, old)
	if _, err := s3.Load(ctx, []Instance{{ID: 1, Name: "a", Plugin: "email"}}); err != nil {
		t.Fatal(err)
	}
	a, _ := s3.Get(1)
	b, _ := s3.Get(2)
	if a.Source != SourceConfig || b.Source != SourceAPI {
		t.Errorf("sources of old instances: %q, %q; want config, api", a.Source, b.Source)
	}
}
