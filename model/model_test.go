package model

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// writeFile writes content to path and returns path.
func writeFile(t testing.TB, path, content string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// overlapping is a model with nested and overlapping traffic groups in two
// partitions, interface names and two overlapping blacklists.
func overlapping(t *testing.T) *Model {
	t.Helper()
	dir := t.TempDir()
	cfg := Config{
		Partitions: []PartitionConfig{
			{CID: 0, Name: "default", Internal: []string{"10.0.0.0/8", "fc00::/7"}},
			{CID: 7, Name: "tenant", Internal: []string{"192.168.0.0/16", "10.1.2.200"}},
		},
		TrafficGroups: []TrafficGroupConfig{
			{ID: 1, Name: "all-10", Partition: 0, CIDRs: []string{"10.0.0.0/8"}},
			{ID: 2, Name: "dc", Partition: 0, CIDRs: []string{"10.1.0.0/16", "2001:db8::/32"}},
			{ID: 3, Name: "web", Partition: 0, CIDRs: []string{"10.1.2.0/24", "2001:db8:1::/48"}},
			{ID: 4, Name: "tenant-a", Partition: 7, CIDRs: []string{"10.1.2.128/25", "192.168.0.0/16"}},
			{ID: 5, Name: "host", Partition: 7, CIDRs: []string{"10.1.2.200", "::ffff:10.1.2.201"}},
		},
		Interfaces: []InterfaceConfig{
			{Exporter: "192.0.2.1", IfIndex: 3, Name: "uplink-transit"},
			{Exporter: "2001:db8::1", IfIndex: 3, Name: "v6-uplink"},
		},
		Blacklists: []BlacklistConfig{
			{ID: 10, Name: "drop", File: writeFile(t, filepath.Join(dir, "drop.txt"), "203.0.113.0/24\n2001:db8:bad::/48\n")},
			{ID: 20, Name: "hosts", File: writeFile(t, filepath.Join(dir, "hosts.txt"), "203.0.113.9\n198.51.100.1 # one host\n")},
		},
	}
	m, err := Build(cfg)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	return m
}

func TestGroupsOf(t *testing.T) {
	m := overlapping(t)
	for _, tc := range []struct {
		addr string
		want []uint16
	}{
		{"10.9.9.9", []uint16{0}},
		{"10.1.9.9", []uint16{0, 1}},
		{"10.1.2.3", []uint16{0, 1, 2}},
		{"10.1.2.130", []uint16{0, 1, 2, 3}},
		{"10.1.2.200", []uint16{0, 1, 2, 3, 4}},
		{"10.1.2.201", []uint16{0, 1, 2, 3, 4}},
		{"::ffff:10.1.2.3", []uint16{0, 1, 2}},
		{"192.168.7.7", []uint16{3}},
		{"2001:db8:1::5", []uint16{1, 2}},
		{"2001:db8:2::1", []uint16{1}},
		{"2001:db9::1", nil},
		{"8.8.8.8", nil},
	} {
		t.Run(tc.addr, func(t *testing.T) {
			got := slices.Sorted(slices.Values(m.GroupsOf(netip.MustParseAddr(tc.addr))))
			if diff := cmp.Diff(got, tc.want); diff != "" {
				t.Errorf("GroupsOf(%s) (-got +want):\n%s", tc.addr, diff)
			}
		})
	}
}

func TestInternal(t *testing.T) {
	m := overlapping(t)
	for _, tc := range []struct {
		cid  uint32
		addr string
		want bool
	}{
		{0, "10.1.1.1", true},
		{0, "::ffff:10.1.1.1", true},
		{0, "fc00::1", true},
		{0, "fe80::1", false},
		{0, "192.168.1.1", false},
		{7, "192.168.1.1", true},
		{7, "10.1.2.200", true},
		{7, "10.1.2.199", false},
		{9, "10.1.1.1", false},
	} {
		t.Run(fmt.Sprintf("%d/%s", tc.cid, tc.addr), func(t *testing.T) {
			if got := slices.Contains(m.Internal(netip.MustParseAddr(tc.addr)), tc.cid); got != tc.want {
				t.Errorf("%d in Internal(%s) = %v, want %v", tc.cid, tc.addr, got, tc.want)
			}
		})
	}
}

func TestBlacklisted(t *testing.T) {
	m := overlapping(t)
	for _, tc := range []struct {
		addr string
		want []uint32
	}{
		{"203.0.113.1", []uint32{10}},
		{"203.0.113.9", []uint32{10, 20}},
		{"::ffff:203.0.113.9", []uint32{10, 20}},
		{"198.51.100.1", []uint32{20}},
		{"198.51.100.2", nil},
		{"2001:db8:bad:1::1", []uint32{10}},
		{"2001:db8::1", nil},
	} {
		t.Run(tc.addr, func(t *testing.T) {
			got := slices.Sorted(slices.Values(m.Blacklisted(netip.MustParseAddr(tc.addr))))
			if diff := cmp.Diff(got, tc.want); diff != "" {
				t.Errorf("Blacklisted(%s) (-got +want):\n%s", tc.addr, diff)
			}
		})
	}
}

func TestInterfaceName(t *testing.T) {
	m := overlapping(t)
	for _, tc := range []struct {
		exporter string
		ifIndex  uint32
		want     string
	}{
		{"192.0.2.1", 3, "uplink-transit"},
		{"::ffff:192.0.2.1", 3, ""}, // callers pass exporters unmapped, as decoders do
		{"192.0.2.1", 4, ""},
		{"2001:db8::1", 3, "v6-uplink"},
	} {
		t.Run(fmt.Sprintf("%s/%d", tc.exporter, tc.ifIndex), func(t *testing.T) {
			if got := m.InterfaceName(netip.MustParseAddr(tc.exporter), tc.ifIndex); got != tc.want {
				t.Errorf("InterfaceName = %q, want %q", got, tc.want)
			}
		})
	}
}

// benchModel builds a model of 1,000 traffic groups holding 10 random
// prefixes each, IPv4 (/8 to /28) or IPv6 (/16 to /64) as v6 says, and
// returns it with addresses to look up, half of them in some group.
func benchModel(b *testing.B, v6 bool) (*Model, []netip.Addr) {
	r := rand.New(rand.NewPCG(1, 2))
	randAddr := func() netip.Addr {
		if v6 {
			var a [16]byte
			for i := range a {
				a[i] = byte(r.Uint32())
			}
			a[0] = 0x20 // 2000::/8 keeps addresses and prefixes close
			return netip.AddrFrom16(a)
		}
		var a [4]byte
		for i := range a {
			a[i] = byte(r.Uint32())
		}
		return netip.AddrFrom4(a)
	}
	groups := make([]TrafficGroup, 1000)
	var prefixes []netip.Prefix
	for i := range groups {
		groups[i] = TrafficGroup{ID: uint32(i + 1), Name: fmt.Sprint("g", i)}
		for range 10 {
			bits := 8 + r.IntN(21)
			if v6 {
				bits = 16 + r.IntN(49)
			}
			p, _ := randAddr().Prefix(bits)
			groups[i].CIDRs = append(groups[i].CIDRs, p)
			prefixes = append(prefixes, p)
		}
	}
	m := New([]Partition{{CID: 0, Name: "default"}}, groups, nil)
	addrs := make([]netip.Addr, 1024)
	hits := 0
	for i := range addrs {
		a := randAddr()
		if i%2 == 0 {
			// Inside a prefix: keep its bits, randomise the rest.
			p := prefixes[r.IntN(len(prefixes))]
			b := a.AsSlice()
			pb := p.Addr().AsSlice()
			for bit := range p.Bits() {
				mask := byte(0x80) >> (bit % 8)
				b[bit/8] = b[bit/8]&^mask | pb[bit/8]&mask
			}
			a, _ = netip.AddrFromSlice(b)
		}
		if len(m.GroupsOf(a)) > 0 {
			hits++
		}
		addrs[i] = a
	}
	if hits < len(addrs)/2 {
		b.Fatalf("only %d of %d addresses hit a group", hits, len(addrs))
	}
	return m, addrs
}

// BenchmarkGroupsOf looks up addresses in a table of 10,000 prefixes.
//
//	go test ./model -run '^$' -bench GroupsOf -benchmem -count=6 -cpu 1,2 > new.txt
//	benchstat old.txt new.txt
func BenchmarkGroupsOf(b *testing.B) {
	for _, v6 := range []bool{false, true} {
		name := "v4"
		if v6 {
			name = "v6"
		}
		b.Run(name, func(b *testing.B) {
			m, addrs := benchModel(b, v6)
			n := 0
			i := 0
			for b.Loop() {
				n += len(m.GroupsOf(addrs[i&1023]))
				i++
			}
			if n == 0 {
				b.Fatal("no address hit a group")
			}
		})
	}
}

// TestNames looks partitions, traffic groups and blacklists up by ID.
func TestNames(t *testing.T) {
	m := overlapping(t)
	got := []string{m.PartitionName(0), m.PartitionName(7), m.PartitionName(9),
		m.GroupName(3), m.GroupName(5), m.GroupName(99),
		m.BlacklistName(10), m.BlacklistName(20), m.BlacklistName(30)}
	want := []string{"default", "tenant", "", "web", "host", "", "drop", "hosts", ""}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("names (-got +want):\n%s", diff)
	}
	var none *Model
	if none.PartitionName(0)+none.GroupName(1)+none.BlacklistName(1) != "" {
		t.Error("a nil model has names")
	}
}
