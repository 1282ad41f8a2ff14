package target

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/flowsentry/flowsentry/model"
)

// TestSources counts blocks, not addresses, keeps the heaviest blocks
// first, and estimates many distinct blocks within a few percent.
func TestSources(t *testing.T) {
	s := NewSources()
	if s.Total() != 0 || len(s.Top(nil)) != 0 {
		t.Fatalf("empty: total %d, top %v", s.Total(), s.Top(nil))
	}
	s.Add(netip.MustParseAddr("198.51.100.7"), 10)
	s.Add(netip.MustParseAddr("198.51.100.200"), 5) // same /24
	s.Add(netip.MustParseAddr("203.0.113.1"), 30)
	s.Add(netip.MustParseAddr("2001:db8:1:2::5"), 1)
	s.Add(netip.MustParseAddr("2001:db8:1:2:ffff::1"), 1) // same /64
	if got := s.Total(); got != 3 {
		t.Errorf("Total = %d, want 3 blocks", got)
	}
	want := []string{"203.0.113.0/24", "198.51.100.0/24", "2001:db8:1:2::/64"}
	if diff := cmp.Diff(s.Top(nil), want); diff != "" {
		t.Errorf("Top (-got +want):\n%s", diff)
	}

	s.Reset()
	const n = 20000
	for i := range n {
		s.Add(netip.AddrFrom4([4]byte{byte(i >> 8), byte(i), 7, 1}), 1)
	}
	if got := float64(s.Total()); got < 0.9*n || got > 1.1*n {
		t.Errorf("Total of %d distinct blocks = %.0f, want within 10 %%", n, got)
	}
	if top := s.Top(nil); len(top) != TopSources {
		t.Errorf("Top lists %d blocks, want %d", len(top), TopSources)
	}
}

// TestSourcesHeavyHitter keeps a block that sends most packets on top
// while many light blocks come and go (Space-Saving).
func TestSourcesHeavyHitter(t *testing.T) {
	s := NewSources()
	heavy := netip.MustParseAddr("192.0.2.9")
	for i := range 10000 {
		s.Add(netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 1}), 1)
		if i%10 == 0 {
			s.Add(heavy, 5)
		}
	}
	if top := s.Top(nil); len(top) == 0 || top[0] != "192.0.2.0/24" {
		t.Errorf("Top = %v, want 192.0.2.0/24 first", top)
	}
}

// TestFields writes the manual's fields in the order and under the JSON
// names of its ddos_slow example.
func TestFields(t *testing.T) {
	g := &model.TrafficGroup{ID: 4, Name: "web", CIDRs: []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("10.2.0.0/16")}}
	s := NewSources()
	s.Add(netip.MustParseAddr("203.0.113.5"), 3)
	a := Attack{IP: netip.MustParseAddr("::ffff:10.2.0.25"), Group: g, Proto: 6, Port: 80, Threshold: 100, Sources: s}
	type field struct{ Name, JSON, Value string }
	var got []field
	for _, f := range a.Fields(nil) {
		v := f.Value
		if f.IsList {
			v = ""
			for _, x := range f.List {
				v += x + " "
			}
		}
		got = append(got, field{f.Name, f.JSON, v})
	}
	want := []field{
		{"TARGET_IP", "", "10.2.0.25"}, {"TARGET_MASK", "", "16"}, {"TARGET_TG", "", "4"},
		{"TARGET_TG_NAME", "-", "web"}, {"PROTO", "", "6"}, {"PORT", "server_port", "80"},
		{"SOURCES", "", "203.0.113.0/24 "}, {"TOTAL_SOURCES", "", "1"}, {"THRESHOLD_VALUE", "", "100.00"},
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("Fields (-got +want):\n%s", diff)
	}
	if m := Mask(nil, a.IP); m != 0 {
		t.Errorf("Mask without a group = %d, want 0", m)
	}
}

func TestIsReflector(t *testing.T) {
	for p := range Reflectors {
		if !IsReflector(p) {
			t.Errorf("IsReflector(%d) = false", p)
		}
	}
	for _, p := range []uint16{0, 80, 443, 1024, 65535} {
		if IsReflector(p) {
			t.Errorf("IsReflector(%d) = true", p)
		}
	}
}
