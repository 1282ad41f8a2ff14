package model

import (
	"errors"
	"net/netip"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/flowsentry/flowsentry/config/check"
)

func TestDefaultConfig(t *testing.T) {
	private := []string{"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"}
	want := Config{
		Partitions:    []PartitionConfig{{CID: 0, Name: "default", Internal: private}},
		TrafficGroups: []TrafficGroupConfig{{ID: 1, Name: "internal", Partition: 0, CIDRs: private}},
	}
	got := DefaultConfig()
	if diff := cmp.Diff(got, want); diff != "" {
		t.Fatalf("DefaultConfig() (-got +want):\n%s", diff)
	}
	got.Partitions[0].Internal[0] = "changed"
	if DefaultConfig().Partitions[0].Internal[0] != "10.0.0.0/8" || DefaultConfig().TrafficGroups[0].CIDRs[0] != "10.0.0.0/8" {
		t.Error("changing a DefaultConfig() result changed the next one")
	}

	m, err := Build(DefaultConfig())
	if err != nil {
		t.Fatalf("Build(DefaultConfig()): %v", err)
	}
	for _, a := range []string{"10.1.2.3", "172.31.0.1", "192.168.1.1", "fd00::1"} {
		addr := netip.MustParseAddr(a)
		if !slices.Contains(m.Internal(addr), 0) || len(m.GroupsOf(addr)) != 1 {
			t.Errorf("%s: want internal to partition 0 and in group \"internal\"", a)
		}
	}
	if addr := netip.MustParseAddr("8.8.8.8"); slices.Contains(m.Internal(addr), 0) || m.GroupsOf(addr) != nil {
		t.Error("8.8.8.8 is internal or in a group")
	}
}

func TestValidate(t *testing.T) {
	dir := t.TempDir()
	list := writeFile(t, filepath.Join(dir, "list.txt"), "192.0.2.1\n")
	missing := filepath.Join(dir, "missing.txt")
	base := func() Config {
		c := DefaultConfig()
		c.Interfaces = []InterfaceConfig{{Exporter: "192.0.2.1", IfIndex: 3, Name: "uplink"}}
		c.Blacklists = []BlacklistConfig{{ID: 1, Name: "drop", File: list, Refresh: time.Hour}}
		return c
	}
	for _, tc := range []struct {
		name   string
		change func(c *Config)
		want   []string
	}{
		{"valid", func(*Config) {}, nil},
		{"no partitions", func(c *Config) { c.Partitions = nil; c.TrafficGroups = nil }, []string{
			"partitions: no partition is configured; add one, e.g. {cid: 0, name: default, internal: [10.0.0.0/8]}",
		}},
		{"partition cid and name repeated", func(c *Config) {
			c.Partitions = append(c.Partitions, PartitionConfig{CID: 0, Name: "default"}, PartitionConfig{CID: 3, Name: " "})
		}, []string{
			"partitions[1].cid: 0 is already the cid of partitions[0]; give each partition its own cid",
			`partitions[1].name: "default" is already the name of partitions[0]; give each partition its own name`,
			"partitions[2].name: is empty; give the partition a name",
		}},
		{"bad INT blocks", func(c *Config) {
			c.Partitions[0].Internal = []string{"10.1.2.3/8", "10.0.0.1", "fe80::1%eth0", "10.0.0.0/33", "", "::ffff:10.1.0.0/104"}
		}, []string{
			`partitions[0].internal[0]: "10.1.2.3/8" has host bits set; write "10.0.0.0/8"`,
			`partitions[0].internal[2]: "fe80::1%eth0" is not an IP address or CIDR`,
			`partitions[0].internal[3]: "10.0.0.0/33" is not an IP address or CIDR`,
			`partitions[0].internal[4]: "" is not an IP address or CIDR`,
			`partitions[0].internal[5]: "::ffff:10.1.0.0/104" has host bits set; write "10.0.0.0/8"`,
		}},
		{"traffic group errors", func(c *Config) {
			c.TrafficGroups = append(c.TrafficGroups,
				TrafficGroupConfig{ID: 0, Name: "zero", CIDRs: []string{"10.0.0.0/8"}},
				TrafficGroupConfig{ID: 1, Name: "internal", CIDRs: []string{"10.0.0.0/8"}},
				TrafficGroupConfig{ID: 2, Name: "internal", Partition: 5},
				TrafficGroupConfig{ID: 3, Name: "", CIDRs: []string{"2001:db8::/32", "nope"}},
			)
		}, []string{
			"traffic_groups[1].id: 0 is not valid; use an integer from 1 to 4294967295",
			"traffic_groups[2].id: 1 is already the id of traffic_groups[0]; give each traffic group its own id",
			`traffic_groups[2].name: "internal" is already the name of traffic_groups[0] in partition 0; names must be unique within a partition`,
			"traffic_groups[3].partition: partition 5 is not configured; use a cid listed under partitions: 0",
			"traffic_groups[3].cidrs: is empty; list the CIDRs the traffic group holds",
			"traffic_groups[4].name: is empty; give the traffic group a name",
			`traffic_groups[4].cidrs[1]: "nope" is not an IP address or CIDR`,
		}},
		{"same group name in another partition", func(c *Config) {
			c.Partitions = append(c.Partitions, PartitionConfig{CID: 2, Name: "other"})
			c.TrafficGroups = append(c.TrafficGroups, TrafficGroupConfig{ID: 2, Name: "internal", Partition: 2, CIDRs: []string{"10.0.0.0/8"}})
		}, nil},
		{"interface errors", func(c *Config) {
			c.Interfaces = append(c.Interfaces,
				InterfaceConfig{Exporter: "router1", IfIndex: 0, Name: ""},
				InterfaceConfig{Exporter: "::ffff:192.0.2.1", IfIndex: 3, Name: "again"},
				InterfaceConfig{Exporter: "192.0.2.1", IfIndex: 4, Name: "other"},
			)
		}, []string{
			`interfaces[1].exporter: "router1" is not an IP address; write the exporter's address, e.g. 192.0.2.1`,
			"interfaces[1].ifindex: 0 is not valid; use the interface's SNMP ifIndex, from 1 to 4294967295",
			"interfaces[1].name: is empty; give the interface a name",
			"interfaces[2]: exporter 192.0.2.1 ifindex 3 is already named by interfaces[0]; keep one",
		}},
		{"blacklist errors", func(c *Config) {
			c.Blacklists = append(c.Blacklists,
				BlacklistConfig{ID: 0, Name: "drop", File: missing, Refresh: -time.Second},
				BlacklistConfig{ID: 1, Name: "", File: "", Refresh: 500 * time.Millisecond},
				BlacklistConfig{ID: 2, Name: "folder", File: dir, Refresh: 0},
			)
		}, []string{
			"blacklists[1].id: 0 is not valid; use an integer from 1 to 4294967295",
			`blacklists[1].name: "drop" is already the name of blacklists[0]; give each blacklist its own name`,
			"blacklists[1].file: open " + missing + ": no such file or directory; give a readable file of addresses and CIDRs",
			"blacklists[1].refresh: -1s is negative; use at least 1s, or 0 to never refresh",
			"blacklists[2].id: 1 is already the id of blacklists[0]; give each blacklist its own id",
			"blacklists[2].name: is empty; give the blacklist a name",
			"blacklists[2].file: is empty; give the path of a file of addresses and CIDRs",
			"blacklists[2].refresh: 500ms is too short; use at least 1s, or 0 to never refresh",
			"blacklists[3].file: " + dir + " is a folder; give a file of addresses and CIDRs",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := base()
			tc.change(&c)
			err := c.Validate()
			var got []string
			for _, e := range check.Flatten(err) {
				var ce *check.Error
				if !errors.As(e, &ce) {
					t.Errorf("%v is a %T, want a *check.Error", e, e)
				}
				got = append(got, e.Error())
			}
			if diff := cmp.Diff(got, tc.want); diff != "" {
				t.Errorf("Validate() (-got +want):\n%s", diff)
			}
		})
	}
}

func TestBuildErrors(t *testing.T) {
	dir := t.TempDir()
	bad := writeFile(t, filepath.Join(dir, "bad.txt"), "# header\n192.0.2.1\n\nxyz # oops\n")
	for _, tc := range []struct {
		name string
		cfg  func() Config
		want string
	}{
		{"invalid config", func() Config {
			c := DefaultConfig()
			c.TrafficGroups[0].Partition = 9
			return c
		}, "traffic_groups[0].partition: partition 9 is not configured; use a cid listed under partitions: 0"},
		{"bad blacklist line", func() Config {
			c := DefaultConfig()
			c.Blacklists = []BlacklistConfig{{ID: 1, Name: "drop", File: bad}}
			return c
		}, "blacklist drop: " + bad + `:4: "xyz" is not an IP address or CIDR`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Build(tc.cfg())
			if m != nil {
				t.Error("Build returned a model with an error")
			}
			if err == nil || err.Error() != tc.want {
				t.Errorf("Build error = %v, want %s", err, tc.want)
			}
		})
	}
}
