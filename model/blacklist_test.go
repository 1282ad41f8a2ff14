package model

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
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
		{"bad line", "192.0.2.1\n# ok\nxyz\n", nil, `list.txt:3: "xyz" is not an IP address or CIDR`},
		{"two entries on a line", "192.0.2.1 192.0.2.2\n", nil, `list.txt:1: "192.0.2.1 192.0.2.2" is not an IP address or CIDR`},
		{"host bits", "\n10.1.2.3/8\n", nil, `list.txt:2: "10.1.2.3/8" has host bits set; write "10.0.0.0/8"`},
		{"zone", "fe80::1%eth0\n", nil, `list.txt:1: "fe80::1%eth0" is not an IP address or CIDR`},
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
			if diff := cmp.Diff(got, tc.want, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
				t.Errorf("prefixes (-got +want):\n%s", diff)
			}
		})
	}
}

// FuzzBlacklist checks that any file content either parses into canonical,
// unmapped prefixes, no more than one a line, or fails naming a line of the
// file.
func FuzzBlacklist(f *testing.F) {
	for _, s := range []string{
		"192.0.2.1\n198.51.100.0/24 # x\n",
		"; DROP\n1.10.16.0/20 ; SBL256894\n2001:db8::/32\n",
		"::ffff:10.0.0.0/104\n10.1.2.3/8\n",
		"\uFEFFfe80::1%eth0\r\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, content string) {
		got, err := parseBlacklist("f", strings.NewReader(content))
		lines := strings.Count(content, "\n") + 1
		if err != nil {
			var line int
			if _, serr := fmt.Sscanf(err.Error(), "f:%d:", &line); serr != nil || line < 1 || line > lines {
				t.Fatalf("error %q does not name a line from 1 to %d", err, lines)
			}
			return
		}
		if len(got) > lines {
			t.Fatalf("%d prefixes from %d lines", len(got), lines)
		}
		for _, p := range got {
			if !p.IsValid() || p.Masked() != p || p.Addr().Is4In6() || p.Addr().Zone() != "" {
				t.Fatalf("prefix %s is not canonical", p)
			}
		}
	})
}
