package model

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"
)

// maxLineBytes bounds a blacklist line; real entries are under 50 bytes.
const maxLineBytes = 4096

// racyWindow is how close to the moment a file is examined its mtime may be
// for a later write to leave the same mtime (coarse file system clocks; FAT
// keeps 2 s): such a file's size and mtime are not trusted, its content is
// hashed again.
const racyWindow = 2 * time.Second

// parsePrefix parses a canonical CIDR, or an address taken as /32 or /128.
// IPv4-mapped IPv6 forms become IPv4, as lookups unmap addresses.
func parsePrefix(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("%q is not an IP address or CIDR", s)
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not an IP address or CIDR", s)
	}
	if p.Addr().Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	if m := p.Masked(); m != p {
		return netip.Prefix{}, fmt.Errorf("%q has host bits set; write %q", s, m)
	}
	return p, nil
}

// parseIPv4 parses a dotted-quad IPv4 address exactly as netip.ParseAddr
// does (decimal fields without leading zeros) but without allocating. It
// reports false for anything else, which parsePrefix then parses or
// rejects: a large list is almost only such addresses.
func parseIPv4(b []byte) (uint32, bool) {
	var v, field uint32
	dots, digits := 0, 0
	for _, c := range b {
		switch {
		case '0' <= c && c <= '9':
			if digits == 1 && field == 0 {
				return 0, false
			}
			field = field*10 + uint32(c-'0')
			if field > 255 {
				return 0, false
			}
			digits++
		case c == '.' && digits > 0 && dots < 3:
			v = v<<8 | field
			field, digits = 0, 0
			dots++
		default:
			return 0, false
		}
	}
	if dots != 3 || digits == 0 {
		return 0, false
	}
	return v<<8 | field, true
}

// entries are the entries of one blacklist file, stored compactly: IPv4
// addresses, the bulk of large lists, take 4 bytes each instead of the 32
// of a netip.Prefix. They are never modified once read, so that snapshots
// share them.
type entries struct {
	hosts  []uint32       // IPv4 addresses (/32), sorted, unique
	others []netip.Prefix // every other entry, sorted, unique
	source fileState      // the file they were read from
}

// len returns how many distinct entries e holds; e may be nil.
func (e *entries) len() int {
	if e == nil {
		return 0
	}
	return len(e.hosts) + len(e.others)
}

// all yields e's entries, IPv4 addresses first; e may be nil.
func (e *entries) all() iter.Seq[netip.Prefix] {
	return func(yield func(netip.Prefix) bool) {
		if e == nil {
			return
		}
		for _, h := range e.hosts {
			if !yield(netip.PrefixFrom(addr4(h), 32)) {
				return
			}
		}
		for _, p := range e.others {
			if !yield(p) {
				return
			}
		}
	}
}

// addr4 turns an IPv4 address held as an integer back into an address.
func addr4(v uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// fileState is what a file was when its content was read or hashed.
type fileState struct {
	size  int64
	mtime time.Time
	sum   [sha256.Size]byte // of the content
	// racy is set when mtime was within racyWindow of the examination:
	// a write right after it may have kept size and mtime.
	racy bool
}

// stateOf returns the size and mtime of st, examined at start.
func stateOf(st fs.FileInfo, start time.Time, sum [sha256.Size]byte) fileState {
	return fileState{
		size:  st.Size(),
		mtime: st.ModTime(),
		sum:   sum,
		racy:  !st.ModTime().Before(start.Add(-racyWindow)),
	}
}

// unchanged reports whether st has the size and mtime of s, and these are
// to be trusted: the content is then taken as unchanged without reading it,
// as make and rsync do.
func (s fileState) unchanged(st fs.FileInfo) bool {
	return !s.racy && s.size == st.Size() && s.mtime.Equal(st.ModTime())
}

// readBlacklist reads a blacklist file. The wall clock is read to tell
// whether the file's mtime can be trusted later (see fileState.racy).
func readBlacklist(file string) (*entries, error) {
	start := time.Now()
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	// The state is taken before reading: a write during the read
	// changes the mtime, so the next refresh looks again.
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	e, err := parseBlacklist(file, io.TeeReader(bufio.NewReaderSize(f, 64<<10), h))
	if err != nil {
		return nil, err
	}
	e.source = stateOf(st, start, [sha256.Size]byte(h.Sum(nil)))
	return e, nil
}

// hashFile returns the SHA-256 of file's content.
func hashFile(file string) ([sha256.Size]byte, error) {
	f, err := os.Open(file)
	if err != nil {
		return [sha256.Size]byte{}, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return [sha256.Size]byte{}, err
	}
	return [sha256.Size]byte(h.Sum(nil)), nil
}

// parseBlacklist reads one address or CIDR a line; "#" and ";" start a
// comment, blank lines are skipped. Errors are "NAME:LINE: what is wrong".
// Lines are parsed in the scanner's buffer: an IPv4 address costs no
// allocation.
func parseBlacklist(name string, r io.Reader) (*entries, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 512), maxLineBytes)
	var (
		e    entries
		line int
	)
	for sc.Scan() {
		line++
		text := sc.Bytes()
		if line == 1 {
			text = bytes.TrimPrefix(text, []byte("\uFEFF"))
		}
		if i := bytes.IndexAny(text, "#;"); i >= 0 {
			text = text[:i]
		}
		text = bytes.TrimSpace(text)
		if len(text) == 0 {
			continue
		}
		if v, ok := parseIPv4(text); ok {
			e.hosts = append(e.hosts, v)
			continue
		}
		p, err := parsePrefix(string(text))
		if err != nil {
			return nil, &lineError{fmt.Errorf("%s:%d: %w", name, line, err)}
		}
		if p.Addr().Is4() && p.Bits() == 32 {
			a := p.Addr().As4()
			e.hosts = append(e.hosts, uint32(a[0])<<24|uint32(a[1])<<16|uint32(a[2])<<8|uint32(a[3]))
			continue
		}
		e.others = append(e.others, p)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, &lineError{fmt.Errorf("%s:%d: line is longer than %d bytes; write one address or CIDR a line", name, line+1, maxLineBytes)}
		}
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	slices.Sort(e.hosts)
	e.hosts = slices.Clip(slices.Compact(e.hosts))
	slices.SortFunc(e.others, netip.Prefix.Compare)
	e.others = slices.Clip(slices.CompactFunc(e.others, func(a, b netip.Prefix) bool { return a == b }))
	return &e, nil
}

// lineError is a line of a blacklist file that is not one address or CIDR:
// the content is wrong, not the reading of it.
type lineError struct{ err error }

func (e *lineError) Error() string { return e.err.Error() }
func (e *lineError) Unwrap() error { return e.err }

// fileWatch is what a Refresher knows of one blacklist file, so that a
// refresh reads and parses the file only when its content changed.
type fileWatch struct {
	inUse *entries  // the entries of the model in use
	seen  fileState // the file as last examined
	err   error     // what is wrong with the content seen; nil when it is inUse's
}

// newFileWatch watches the file e was read from.
func newFileWatch(e *entries) fileWatch {
	w := fileWatch{inUse: e}
	if e != nil {
		w.seen = e.source
	}
	return w
}

// reread returns the entries of file when its content is no longer that of
// the entries in use, or the error that content has; nil and nil when it
// is unchanged. A file whose size and mtime are as last seen is not opened;
// one whose content hashes as last seen is not parsed, and a bad line is
// reported again, without parsing, until the content changes.
func (w *fileWatch) reread(file string) (*entries, error) {
	start := time.Now()
	st, err := os.Stat(file)
	if err != nil {
		return nil, err
	}
	if w.seen.unchanged(st) {
		return nil, w.err
	}
	sum, err := hashFile(file)
	if err != nil {
		return nil, err
	}
	seen := stateOf(st, start, sum)
	switch {
	case w.inUse != nil && sum == w.inUse.source.sum:
		w.seen, w.err = seen, nil
		return nil, nil
	case w.err != nil && sum == w.seen.sum:
		w.seen = seen
		return nil, w.err
	}
	e, err := readBlacklist(file)
	if err != nil {
		if _, bad := err.(*lineError); bad {
			// Until the file changes, report it without parsing it.
			w.seen, w.err = seen, err
		}
		return nil, err
	}
	w.inUse, w.seen, w.err = e, e.source, nil
	return e, nil
}
