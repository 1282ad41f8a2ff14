package threshold

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/flowsentry/flowsentry/detect/detecttest"
	"github.com/flowsentry/flowsentry/policy"
)

func TestDefaultsOnFirstStart(t *testing.T) {
	st := &policy.MemStore{}
	m := policy.NewManager(st, nil)
	if err := m.Load(context.Background(), nil, []uint32{0, 4}); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range m.List() {
		names = append(names, p.Name)
		if !p.Template() || p.Severity == 0 || p.Family != Family {
			t.Errorf("default %q is not an active threshold template: %+v", p.Name, p)
		}
	}
	want := "Packets In,Bits In,New Connections (total),Packets In,Bits In,New Connections (total)"
	if strings.Join(names, ",") != want {
		t.Fatalf("defaults: %v", names)
	}
	// A second start over the same store creates nothing new, even when
	// the user changed a default.
	p := m.List()[0]
	Of(&p).Threshold = 5
	if _, err := m.Put(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	m2 := policy.NewManager(st, nil)
	if err := m2.Load(context.Background(), nil, []uint32{0, 4}); err != nil {
		t.Fatal(err)
	}
	if len(m2.List()) != 6 || Of(&m2.List()[0]).Threshold != 5 {
		t.Fatalf("restart: %+v", m2.List())
	}
}

func TestValidate(t *testing.T) {
	base := policy.Policy{Name: "p", Family: PortFamily, Target: policy.TargetGroups, Object: policy.ObjectGroupPort,
		Severity: 3, Params: &Params{Counter: "bytes_in", Threshold: 10, Proto: 6, Port: 443}}
	cases := []struct {
		name   string
		change func(p *policy.Policy)
		want   string // "" = valid
	}{
		{"valid", func(*policy.Policy) {}, ""},
		{"bits converted", func(p *policy.Policy) { Of(p).Counter = "bits_in"; Of(p).Threshold = 80 }, ""},
		{"no name", func(p *policy.Policy) { p.Name = " " }, "name: is empty"},
		{"bad family", func(p *policy.Policy) { p.Family = "ddos" }, `family: "ddos" is not a detector family`},
		{"bad object", func(p *policy.Policy) { p.Object = "HOST" }, `object_type: "HOST" is not an object type`},
		{"bad counter", func(p *policy.Policy) { Of(p).Counter = "bps" }, `threshold_type: "bps" is not a threshold type`},
		{"uniq on a port", func(p *policy.Policy) { Of(p).Counter = "uniq_remote_cidr" }, "only available for object type TGRP+IP"},
		{"target mismatch", func(p *policy.Policy) { p.Target = policy.TargetInterfaces }, `target: "interfaces" does not match`},
		{"no threshold", func(p *policy.Policy) { Of(p).Threshold = 0 }, "give a threshold above 0"},
		{"baseline on port family", func(p *policy.Policy) { Of(p).Baseline = 2 }, "baselines apply to the threshold family only"},
		{"negative severity", func(p *policy.Policy) { p.Severity = -1 }, "severity: -1 is negative"},
		{"severity above 10", func(p *policy.Policy) { p.Severity = 12 }, ""},
		{"port on TGRP", func(p *policy.Policy) { p.Object = policy.ObjectGroup; p.Family = Family }, "proto and port apply only"},
		{"threshold family counter", func(p *policy.Policy) {
			p.Family, p.Object = Family, policy.ObjectGroup
			*Of(p) = Params{Counter: "bytes_out", Threshold: 10}
		}, `"bytes_out" is not valid for family threshold`},
		{"override without object", func(p *policy.Policy) { p.Override = 3 }, "override: an override needs"},
		{"half an interface", func(p *policy.Policy) {
			p.Target, p.Object, p.IfIndex = policy.TargetInterfaces, policy.ObjectInterfacePort, 4
		}, "give both exporter_addr and ifindex"},
		{"zero instance", func(p *policy.Policy) { p.Actions = []policy.Attachment{{Instance: 0}} }, "actions[0].instance: is 0"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := base.Clone()
			tc.change(&p)
			p.Normalize()
			detecttest.CheckError(t, p.Validate(), tc.want)
		})
	}
}

func TestOverridesAndCRUD(t *testing.T) {
	ctx := context.Background()
	m := policy.NewManager(&policy.MemStore{}, nil)
	if err := m.Load(ctx, nil, []uint32{0}); err != nil {
		t.Fatal(err)
	}
	tmpl := m.List()[0] // Packets In
	mute := policy.Policy{Name: "mute lab", Family: Family, Target: policy.TargetGroups, Object: policy.ObjectGroup,
		Params: &Params{Counter: "packets_in", Threshold: 1}, Override: tmpl.ID, Group: 7, Severity: 0}
	mute, err := m.Put(ctx, mute)
	if err != nil {
		t.Fatal(err)
	}
	tighter := mute
	tighter.ID, tighter.Name, tighter.Group, tighter.Severity = 0, "tight dmz", 8, 9
	Of(&tighter).Threshold = 10
	tighter, err = m.Put(ctx, tighter)
	if err != nil {
		t.Fatal(err)
	}
	set := m.Set()
	if p := set.ForGroup(set.ByID(tmpl.ID), 7); p != nil {
		t.Errorf("group 7 is muted, got %+v", p)
	}
	if p := set.ForGroup(set.ByID(tmpl.ID), 8); p == nil || p.ID != tighter.ID {
		t.Errorf("group 8 uses its override, got %+v", p)
	}
	if p := set.ForGroup(set.ByID(tmpl.ID), 1); p == nil || p.ID != tmpl.ID {
		t.Errorf("group 1 uses the template, got %+v", p)
	}
	bad := mute
	bad.ID, bad.Override = 0, 999
	if _, err := m.Put(ctx, bad); err == nil || !strings.Contains(err.Error(), "policy 999 is not a template") {
		t.Errorf("override of a missing template: %v", err)
	}
	if _, err := m.Put(ctx, policy.Policy{ID: 12345, Name: "x"}); !errors.Is(err, policy.ErrNotFound) {
		t.Errorf("put of an unknown ID: %v", err)
	}
	if err := m.Delete(ctx, tmpl.ID); err != nil {
		t.Fatal(err)
	}
	for _, p := range m.List() {
		if p.ID == tmpl.ID || p.Override == tmpl.ID {
			t.Errorf("deleting a template must delete its overrides, %+v is left", p)
		}
	}
	if err := m.Delete(ctx, tmpl.ID); !errors.Is(err, policy.ErrNotFound) {
		t.Errorf("second delete: %v", err)
	}
}

// TestIDsNeverReused deletes the newest policies, restarts (a new Manager
// over the same store) and creates one: it must get a new ID, or the
// deleted policies' alerts and actions would point at it.
func TestIDsNeverReused(t *testing.T) {
	ctx := context.Background()
	user := policy.Policy{Name: "dmz", Family: Family, Target: policy.TargetGroups, Object: policy.ObjectGroup,
		Params: &Params{Counter: "packets_in", Threshold: 10}, Group: 8, Severity: 3}
	fromFile := user
	fromFile.ID, fromFile.Name = 50, "from the file"
	for _, tc := range []struct {
		name     string
		fromFile []policy.Policy // the configuration's policies at the first start
		want     uint64          // the ID of the policy created after the restart
	}{
		// Defaults 1 to 3, the user's 4, deleted.
		{name: "created by the API", want: 5},
		// The file's 50, deleted from the file, defaults 51 to 53, the
		// user's 54, deleted.
		{name: "from the configuration file", fromFile: []policy.Policy{fromFile}, want: 55},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := &policy.MemStore{}
			m := policy.NewManager(st, nil)
			if err := m.Load(ctx, tc.fromFile, []uint32{0}); err != nil {
				t.Fatal(err)
			}
			p, err := m.Put(ctx, user)
			if err != nil {
				t.Fatal(err)
			}
			// The file's policies are not the API's to delete: the
			// restart without them removes them.
			deleted := []uint64{p.ID}
			for _, id := range deleted {
				if err := m.Delete(ctx, id); err != nil {
					t.Fatal(err)
				}
			}
			m = policy.NewManager(st, nil)
			if err := m.Load(ctx, nil, []uint32{0}); err != nil {
				t.Fatal(err)
			}
			if p, err = m.Put(ctx, user); err != nil {
				t.Fatal(err)
			}
			if p.ID != tc.want {
				t.Errorf("ID after deleting %v and restarting = %d, want %d", deleted, p.ID, tc.want)
			}
		})
	}
}

func TestDecodeStrict(t *testing.T) {
	if _, err := policy.Decode([]byte(`{"name":"x","colour":"red"}`)); err == nil || !strings.Contains(err.Error(), "colour") {
		t.Fatalf("unknown field: %v", err)
	}
}
