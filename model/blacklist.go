package model

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
)

// maxLineBytes bounds a blacklist line; real entries are under 50 bytes.
const maxLineBytes = 4096

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

// readBlacklist reads a blacklist file.
func readBlacklist(file string) ([]netip.Prefix, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseBlacklist(file, f)
}

// parseBlacklist reads one address or CIDR a line; "#" and ";" start a
// comment, blank lines are skipped. Errors are "NAME:LINE: what is wrong".
func parseBlacklist(name string, r io.Reader) ([]netip.Prefix, error) {
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
