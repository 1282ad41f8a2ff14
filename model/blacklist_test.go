package model

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/flowsentry/flowsentry/flow"
)

func TestParseBlacklist(t *testing.T) {
	pfx := netip.MustParsePrefix
	for _, tc := range []struct {
		name    string
		content string
		want    []netip.Prefix
		wantErr string
	}{
		{"empty", "", nil, ""},
		{"comments and blanks only", "# DROP list\n\n   \n; spamhaus style\n", nil, ""},
		{
			"addresses and CIDRs",
			"192.0.2.1\n198.51.100.0/24\n2001:db8::/32\n2001:db8::1\n",
			[]netip.Prefix{pfx("192.0.2.1/32"), pfx("198.51.100.0/24"), pfx("2001:db8::/32"), pfx("2001:db8::1/128")},
			"",
		},
		{
			"trailing comments, blanks and CRLF",
			"\uFEFF# feed\r\n  203.0.113.0/24 ; SBL123\r\n\r\n\t192.0.2.7\t# a host\r\n",
			[]netip.Prefix{pfx("203.0.113.0/24"), pfx("192.0.2.7/32")},
			"",
		},
		{
			"IPv4-mapped forms become IPv4",
			"::ffff:192.0.2.1\n::ffff:198.51.100.0/120\n",
			[]netip.Prefix{pfx("192.0.2.1/32"), pfx("198.51.100.0/24")},
			"",
		},
		{
			"duplicates count once",
			"192.0.2.1\n192.0.2.1/32\n::ffff:192.0.2.1\n10.0.0.0/8\n10.0.0.0/8\n2001:db8::1\n2001:db8::1/128\n",
			[]netip.Prefix{pfx("192.0.2.1/32"), pfx("10.0.0.0/8"), pfx("2001:db8::1/128")},
			"",
		},
		{
			"extreme IPv4 addresses",
			"0.0.0.0\n255.255.255.255\n0.0.0.0/0\n",
			[]netip.Prefix{pfx("0.0.0.0/32"), pfx("255.255.255.255/32"), pfx("0.0.0.0/0")},
			"",
		},
		{"bad line", "192.0.2.1\n# ok\nxyz\n", nil, `list.txt:3: "xyz" is not an IP address or CIDR`},
		{"two entries on a line", "192.0.2.1 192.0.2.2\n", nil, `list.txt:1: "192.0.2.1 192.0.2.2" is not an IP address or CIDR`},
		{"host bits", "\n10.1.2.3/8\n", nil, `list.txt:2: "10.1.2.3/8" has host bits set; write "10.0.0.0/8"`},
		{"zone", "fe80::1%eth0\n", nil, `list.txt:1: "fe80::1%eth0" is not an IP address or CIDR`},
		{"leading zero", "192.0.2.01\n", nil, `list.txt:1: "192.0.2.01" is not an IP address or CIDR`},
		{"octet above 255", "192.0.2.256\n", nil, `list.txt:1: "192.0.2.256" is not an IP address or CIDR`},
		{"three octets", "192.0.2\n", nil, `list.txt:1: "192.0.2" is not an IP address or CIDR`},
		{"trailing dot", "192.0.2.1.\n", nil, `list.txt:1: "192.0.2.1." is not an IP address or CIDR`},
		{
			"line too long", "192.0.2.1\n" + strings.Repeat(" ", maxLineBytes+1) + "\n", nil,
			"list.txt:2: line is longer than 4096 bytes; write one address or CIDR a line",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseBlacklist("list.txt", strings.NewReader(tc.content))
			gotErr := ""
			if err != nil {
				gotErr = err.Error()
			}
			if gotErr != tc.wantErr {
				t.Errorf("error = %q, want %q", gotErr, tc.wantErr)
			}
			if diff := cmp.Diff(sortedPrefixes(got.all()), sortedPrefixes(slices.Values(tc.want)), cmpPrefix); diff != "" {
				t.Errorf("prefixes (-got +want):\n%s", diff)
			}
		})
	}
}

// FuzzBlacklist checks that any file content either parses into canonical,
// unmapped prefixes, no more than one a line, or fails naming a line of the
// file; and that it parses as the line-by-line parser of netip strings does,
// which the compact entries replaced.
func FuzzBlacklist(f *testing.F) {
	for _, s := range []string{
		"192.0.2.1\n198.51.100.0/24 # x\n",
		"; DROP\n1.10.16.0/20 ; SBL256894\n2001:db8::/32\n",
		"::ffff:10.0.0.0/104\n10.1.2.3/8\n",
		"\uFEFFfe80::1%eth0\r\n",
		"0.0.0.0\n255.255.255.255\n1.2.3.04\n",
		"192.0.2.1\n192.0.2.1/32\n::ffff:192.0.2.1\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, content string) {
		got, err := parseBlacklist("f", strings.NewReader(content))
		want, wantErr := parseBlacklistRef("f", strings.NewReader(content))
		if fmt.Sprint(err) != fmt.Sprint(wantErr) {
			t.Fatalf("error = %v, want %v", err, wantErr)
		}
		if v, ok := parseIPv4([]byte(content)); ok {
			if a, err := netip.ParseAddr(content); err != nil || a != addr4(v) {
				t.Fatalf("parseIPv4(%q) = %s; netip.ParseAddr: %v, %v", content, addr4(v), a, err)
			}
		} else if a, err := netip.ParseAddr(content); err == nil && a.Is4() {
			t.Fatalf("parseIPv4(%q) failed; netip.ParseAddr: %s", content, a)
		}
		lines := strings.Count(content, "\n") + 1
		if err != nil {
			var line int
			if _, serr := fmt.Sscanf(err.Error(), "f:%d:", &line); serr != nil || line < 1 || line > lines {
				t.Fatalf("error %q does not name a line from 1 to %d", err, lines)
			}
			return
		}
		if got.len() > lines {
			t.Fatalf("%d prefixes from %d lines", got.len(), lines)
		}
		for p := range got.all() {
			if !p.IsValid() || p.Masked() != p || p.Addr().Is4In6() || p.Addr().Zone() != "" {
				t.Fatalf("prefix %s is not canonical", p)
			}
		}
		if diff := cmp.Diff(sortedPrefixes(got.all()), sortedPrefixes(slices.Values(want)), cmpPrefix); diff != "" {
			t.Fatalf("prefixes (-got +want):\n%s", diff)
		}
	})
}

// BenchmarkBlacklistMillion builds a model holding a blacklist of a million
// entries and reports the load time and the heap the model retains.
//
//	go test ./model -run '^$' -bench BlacklistMillion -benchmem -count=6 > new.txt
//	benchstat old.txt new.txt
func BenchmarkBlacklistMillion(b *testing.B) {
	const n = 1_000_000
	file := writeBigBlacklist(b, b.TempDir(), n, 1)
	var st loadStats
	cpu0 := cpuSeconds()
	for b.Loop() {
		st = measureLoad(b, file)
	}
	b.ReportMetric((cpuSeconds()-cpu0)/float64(b.N), "cpu-s/op")
	b.ReportMetric(st.load.Seconds(), "load-s")
	b.ReportMetric(float64(st.retained)/(1<<20), "retained-MiB")
	b.ReportMetric(float64(st.retained)/n, "retained-B/entry")
	b.ReportMetric(float64(st.alloc)/(1<<20), "alloc-MiB")
}

// BenchmarkBlacklistRefresh is one due refresh of a million-entry blacklist
// whose content did not change: "unchanged" has the size and mtime it was
// read with, "touched" a new mtime at every refresh (a feed downloaded again).
//
//	go test ./model -run '^$' -bench BlacklistRefresh -benchmem -count=6 > new.txt
//	benchstat old.txt new.txt
func BenchmarkBlacklistRefresh(b *testing.B) {
	file := writeBigBlacklist(b, b.TempDir(), 1_000_000, 1)
	hourAgo := time.Now().Add(-time.Hour)
	if err := os.Chtimes(file, hourAgo, hourAgo); err != nil {
		b.Fatal(err)
	}
	st := measureLoad(b, file)
	for _, touch := range []bool{false, true} {
		name := "unchanged"
		if touch {
			name = "touched"
		}
		b.Run(name, func(b *testing.B) {
			h := NewHolder(st.model)
			r, err := NewRefresher(RefresherDeps{Holder: h})
			if err != nil {
				b.Fatal(err)
			}
			now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			r.refresh(now) // schedules
			i := 0
			for b.Loop() {
				if i++; touch {
					mtime := hourAgo.Add(time.Duration(i) * time.Second)
					if err := os.Chtimes(file, mtime, mtime); err != nil {
						b.Fatal(err)
					}
				}
				now = now.Add(5 * time.Second)
				r.refresh(now)
			}
			if h.Load() != st.model {
				b.Fatal("the model was rebuilt")
			}
		})
	}
}

// randomLists writes nLists blacklist files of about size entries each, in
// dir, drawn partly from a shared pool so that lists hold the same prefixes:
// IPv4 and IPv6 CIDRs nested in one another, and addresses, some inside the
// CIDRs, written in every accepted form. It returns the configuration and
// each list's canonical prefixes, by ID.
func randomLists(t *testing.T, r *rand.Rand, dir string, nLists, size int) ([]BlacklistConfig, map[uint32][]netip.Prefix) {
	t.Helper()
	randPrefix := func(parent netip.Prefix) netip.Prefix {
		var a netip.Addr
		switch {
		case parent.IsValid() && parent.Addr().Is4():
			a = netip.AddrFrom4(randBytes4(r))
		case parent.IsValid() || r.IntN(2) == 0:
			a = netip.AddrFrom16(randBytes16(r))
		default:
			a = netip.AddrFrom4(randBytes4(r))
		}
		lo := 8
		if parent.IsValid() {
			// Keep the parent's bits: a subnet of it, or the same.
			pb := parent.Addr().AsSlice()
			ab := a.AsSlice()
			for bit := range parent.Bits() {
				mask := byte(0x80) >> (bit % 8)
				ab[bit/8] = ab[bit/8]&^mask | pb[bit/8]&mask
			}
			a, _ = netip.AddrFromSlice(ab)
			lo = parent.Bits()
		}
		bits := lo + r.IntN(a.BitLen()-lo+1)
		if r.IntN(3) == 0 {
			bits = a.BitLen() // an address
		}
		p, _ := a.Prefix(bits)
		return p
	}
	var pool []netip.Prefix
	for range size {
		var parent netip.Prefix
		if len(pool) > 0 && r.IntN(2) == 0 {
			parent = pool[r.IntN(len(pool))]
		}
		pool = append(pool, randPrefix(parent))
	}
	ids := []uint32{7, 3, 11, 5, 1, 9}[:nLists]
	lists := make(map[uint32][]netip.Prefix)
	var cfgs []BlacklistConfig
	for _, id := range ids {
		var b strings.Builder
		b.WriteString("# random list\n")
		for range size {
			p := pool[r.IntN(len(pool))]
			if r.IntN(4) == 0 {
				p = randPrefix(netip.Prefix{})
			}
			lists[id] = append(lists[id], p)
			s := p.String()
			switch {
			case p.IsSingleIP() && r.IntN(2) == 0:
				s = p.Addr().String()
			case p.Addr().Is4() && r.IntN(4) == 0:
				s = netip.PrefixFrom(netip.AddrFrom16(p.Addr().As16()), p.Bits()+96).String() // ::ffff:a.b.c.d/n
			}
			fmt.Fprintf(&b, "%s ; %d\n", s, id)
		}
		cfgs = append(cfgs, BlacklistConfig{ID: id, Name: fmt.Sprint("list", id), File: writeFile(t, filepath.Join(dir, fmt.Sprint(id)), b.String())})
	}
	return cfgs, lists
}

// TestBlacklistIndexEquivalence checks lookups against the single folded
// bart table the index replaced, on random lists: the same IDs, in the same
// order, for addresses inside and outside every entry.
func TestBlacklistIndexEquivalence(t *testing.T) {
	for seed := range uint64(40) {
		nLists, size := 1+int(seed%4), 5+int(seed)*20
		if seed == 39 {
			nLists, size = 6, 20_000
		}
		t.Run(fmt.Sprintf("seed=%d/lists=%d/size=%d", seed, nLists, size), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, 2))
			cfgs, lists := randomLists(t, r, t.TempDir(), nLists, size)
			cfg := DefaultConfig()
			cfg.Blacklists = cfgs
			m, err := Build(cfg)
			if err != nil {
				t.Fatal(err)
			}
			var order []uint32
			for _, b := range cfgs {
				order = append(order, b.ID)
			}
			ref := refBlacklists(lists, order)

			for _, b := range m.Blacklists {
				want := sortedPrefixes(slices.Values(lists[b.ID]))
				if diff := cmp.Diff(sortedPrefixes(b.Prefixes()), want, cmpPrefix); diff != "" {
					t.Fatalf("list %d prefixes (-got +want):\n%s", b.ID, diff)
				}
				if b.Len() != len(want) {
					t.Errorf("list %d Len = %d, want %d", b.ID, b.Len(), len(want))
				}
			}

			// Every entry's first and last address and one inside, and
			// random addresses, also in their IPv4-mapped form.
			var addrs []netip.Addr
			for _, ps := range lists {
				for _, p := range ps {
					addrs = append(addrs, p.Addr(), lastAddr(p), randomIn(r, p))
				}
			}
			for range 1000 {
				addrs = append(addrs, netip.AddrFrom4(randBytes4(r)), netip.AddrFrom16(randBytes16(r)))
			}
			for _, a := range addrs {
				if a.Is4() {
					addrs = append(addrs, netip.AddrFrom16(a.As16()))
				}
			}
			var (
				c       Class
				several int // addresses in more than one list
			)
			for _, a := range addrs {
				want, _ := ref.Lookup(a.Unmap())
				if len(want) > 1 {
					several++
				}
				if got := m.Blacklisted(a); !slices.Equal(got, want) || (got == nil) != (want == nil) {
					t.Fatalf("Blacklisted(%s) = %v, want %v", a, got, want)
				}
				m.Classify(&flow.Record{Src: a, Dst: netip.IPv6Unspecified()}, &c)
				if !slices.Equal(c.Src.Blacklists, want) {
					t.Fatalf("Classify: source %s blacklists = %v, want %v", a, c.Src.Blacklists, want)
				}
			}
			if nLists > 1 && size > 50 && several == 0 {
				t.Error("no address is in more than one list: the data tests little")
			}
		})
	}
}

// lastAddr returns the last address of p.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for bit := p.Bits(); bit < len(b)*8; bit++ {
		b[bit/8] |= 0x80 >> (bit % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// randomIn returns a random address of p.
func randomIn(r *rand.Rand, p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for bit := p.Bits(); bit < len(b)*8; bit++ {
		if r.IntN(2) == 0 {
			b[bit/8] |= 0x80 >> (bit % 8)
		}
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// TestBlacklistMemory checks that a model holding a blacklist of 100,000
// entries, in the mix of a large feed, retains under 64 bytes an entry: the
// bound that keeps a million entries under 64 MB (see
// BenchmarkBlacklistMillion for the million itself).
func TestBlacklistMemory(t *testing.T) {
	const n = 100_000
	st := measureLoad(t, writeBigBlacklist(t, t.TempDir(), n, 1))
	t.Logf("%d entries: loaded in %s, %.1f MB retained (%.1f B/entry), %.1f MB allocated",
		n, st.load, float64(st.retained)/1e6, float64(st.retained)/n, float64(st.alloc)/1e6)
	if got := st.model.Blacklists[0].Len(); got < n*99/100 {
		t.Errorf("%d distinct entries read, want about %d", got, n)
	}
	if st.retained > n*64 {
		t.Errorf("%d entries retain %d bytes, want under %d", n, st.retained, n*64)
	}
}

// BenchmarkBlacklisted looks up addresses, half of them listed, in a
// million-entry blacklist: with the index, and with the single bart table
// it replaced ("bart").
//
//	go test ./model -run '^$' -bench Blacklisted -benchmem -count=6 -cpu 1,2 > new.txt
//	benchstat old.txt new.txt
func BenchmarkBlacklisted(b *testing.B) {
	st := measureLoad(b, writeBigBlacklist(b, b.TempDir(), 1_000_000, 1))
	m := st.model
	r := rand.New(rand.NewPCG(3, 4))
	entries := slices.Collect(m.Blacklists[0].Prefixes())
	addrs := make([]netip.Addr, 4096)
	for i := range addrs {
		if i%2 == 0 {
			addrs[i] = randomIn(r, entries[r.IntN(len(entries))])
		} else if i%4 == 1 {
			addrs[i] = netip.AddrFrom4(randBytes4(r))
		} else {
			addrs[i] = netip.AddrFrom16(randBytes16(r))
		}
	}
	for _, impl := range []struct {
		name   string
		lookup func(netip.Addr) []uint32
	}{
		{"index", m.Blacklisted},
		{"bart", func() func(netip.Addr) []uint32 {
			t := refBlacklists(map[uint32][]netip.Prefix{1: entries}, []uint32{1})
			return func(a netip.Addr) []uint32 { v, _ := t.Lookup(a); return v }
		}()},
	} {
		b.Run(impl.name, func(b *testing.B) {
			n, i := 0, 0
			for b.Loop() {
				n += len(impl.lookup(addrs[i&4095]))
				i++
			}
			if n == 0 {
				b.Fatal("no address is listed")
			}
		})
	}
	// A list of IPv4 addresses only, as most large lists are, and traffic
	// it does not hold (IPv4 and IPv6): the common case of every record.
	dir := b.TempDir()
	var list strings.Builder
	for range 100_000 {
		a := randBytes4(r)
		a[0] = 100
		fmt.Fprintln(&list, netip.AddrFrom4(a))
	}
	file := filepath.Join(dir, "addresses.txt")
	if err := os.WriteFile(file, []byte(list.String()), 0o600); err != nil {
		b.Fatal(err)
	}
	hosts := measureLoad(b, file).model
	for i := range addrs {
		if a := addrs[i]; a.Is4() {
			b4 := a.As4()
			b4[0] = 10
			addrs[i] = netip.AddrFrom4(b4)
		}
	}
	b.Run("index/addresses", func(b *testing.B) {
		n, i := 0, 0
		for b.Loop() {
			n += len(hosts.Blacklisted(addrs[i&4095]))
			i++
		}
		if n != 0 {
			b.Fatal("an unlisted address is listed")
		}
	})
}
