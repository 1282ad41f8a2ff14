package model

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"iter"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	rtmetrics "runtime/metrics"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gaissmai/bart"
	"github.com/google/go-cmp/cmp"
)

// writeBigBlacklist writes a blacklist file of n entries, in the mix of a
// large real feed: 90% IPv4 addresses, 4% IPv4 CIDRs (/8 to /31, some
// nested), 3% IPv6 addresses and 3% IPv6 CIDRs, with a comment line every
// 50 entries and a trailing comment every 7. It returns the path.
func writeBigBlacklist(tb testing.TB, dir string, n int, seed uint64) string {
	tb.Helper()
	path := filepath.Join(dir, fmt.Sprintf("big-%d-%d.txt", n, seed))
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<16)
	r := rand.New(rand.NewPCG(seed, 1))
	for i := range n {
		if i%50 == 0 {
			fmt.Fprintf(w, "# block %d, generated\n", i/50)
		}
		var p netip.Prefix
		switch k := r.IntN(100); {
		case k < 90:
			p = netip.PrefixFrom(netip.AddrFrom4(randBytes4(r)), 32)
		case k < 94:
			p, _ = netip.AddrFrom4(randBytes4(r)).Prefix(8 + r.IntN(24))
		case k < 97:
			p = netip.PrefixFrom(netip.AddrFrom16(randBytes16(r)), 128)
		default:
			p, _ = netip.AddrFrom16(randBytes16(r)).Prefix(16 + r.IntN(112))
		}
		s := p.String()
		if p.IsSingleIP() {
			s = p.Addr().String()
		}
		if i%7 == 0 {
			s += " ; SBL" + fmt.Sprint(i)
		}
		fmt.Fprintln(w, s)
	}
	if err := w.Flush(); err != nil {
		tb.Fatal(err)
	}
	if err := f.Close(); err != nil {
		tb.Fatal(err)
	}
	return path
}

func randBytes4(r *rand.Rand) [4]byte {
	v := r.Uint32()
	return [4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}
}

// randBytes16 returns an address in 2001:db8::/32 .. 2001:dbf::/32, so that
// IPv6 entries share their first levels as real feeds do.
func randBytes16(r *rand.Rand) [16]byte {
	var a [16]byte
	hi, lo := r.Uint64(), r.Uint64()
	for i := range 8 {
		a[i] = byte(hi >> (56 - 8*i))
		a[8+i] = byte(lo >> (56 - 8*i))
	}
	a[0], a[1], a[2], a[3] = 0x20, 0x01, 0x0d, 0xb8|a[3]&7
	return a
}

// loadStats are what building a model holding one big blacklist cost.
type loadStats struct {
	load     time.Duration // Build, reading and parsing included
	retained uint64        // heap in use after GC, the model minus before
	alloc    uint64        // bytes allocated while building
	model    *Model
}

// measureLoad builds a model holding the blacklist file and measures it.
func measureLoad(tb testing.TB, file string) loadStats {
	tb.Helper()
	cfg := DefaultConfig()
	cfg.Blacklists = []BlacklistConfig{{ID: 1, Name: "big", File: file, Refresh: 5 * time.Second}}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	m, err := Build(cfg)
	load := time.Since(start)
	if err != nil {
		tb.Fatal(err)
	}
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(m)
	return loadStats{
		load:     load,
		retained: after.HeapAlloc - min(after.HeapAlloc, before.HeapAlloc),
		alloc:    after.TotalAlloc - before.TotalAlloc,
		model:    m,
	}
}

// cpuSeconds is the CPU time the process used so far, GC included, as the
// runtime estimates it.
func cpuSeconds() float64 {
	s := []rtmetrics.Sample{{Name: "/cpu/classes/total:cpu-seconds"}, {Name: "/cpu/classes/idle:cpu-seconds"}}
	rtmetrics.Read(s)
	return s[0].Value.Float64() - s[1].Value.Float64()
}

// cmpPrefix compares prefixes in cmp.Diff.
var cmpPrefix = cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })

// sortedPrefixes returns the distinct prefixes of seq in order.
func sortedPrefixes(seq iter.Seq[netip.Prefix]) []netip.Prefix {
	ps := slices.SortedFunc(seq, netip.Prefix.Compare)
	return slices.Compact(ps)
}

// parseBlacklistRef is the parser that compact entries replaced: every
// line through parsePrefix, file order and duplicates kept.
func parseBlacklistRef(name string, r io.Reader) ([]netip.Prefix, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 512), maxLineBytes)
	var (
		out  []netip.Prefix
		line int
	)
	for sc.Scan() {
		line++
		text := sc.Text()
		if line == 1 {
			text = strings.TrimPrefix(text, "\uFEFF")
		}
		if i := strings.IndexAny(text, "#;"); i >= 0 {
			text = text[:i]
		}
		text = strings.TrimSpace(text)
		if text == "" {
			continue
		}
		p, err := parsePrefix(text)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, line, err)
		}
		out = append(out, p)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("%s:%d: line is longer than %d bytes; write one address or CIDR a line", name, line+1, maxLineBytes)
		}
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return out, nil
}

// refBlacklists is the blacklist table that blacklistIndex replaced: every
// prefix of every list in one bart table, folded.
func refBlacklists(lists map[uint32][]netip.Prefix, order []uint32) *bart.Table[[]uint32] {
	s := newPrefixSets[uint32]()
	for _, id := range order {
		for _, p := range lists[id] {
			s.add(p, id)
		}
	}
	s.seal()
	return s.table
}
