package store

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/flowsentry/flowsentry/detect/newserver"
)

func TestLearnedServices(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openTest(t, dir)
	reopen := func() {
		s.Close()
		s = openTest(t, dir)
	}
	srv := newserver.Entry{Policy: 4, Server: netip.MustParseAddr("10.0.0.1"), Proto: 6, Port: 443, Learned: t0}
	cli := srv
	cli.Client, cli.Learned = netip.MustParseAddr("2001:db8::7"), t0.Add(time.Second)
	v6 := newserver.Entry{Policy: 9, Server: netip.MustParseAddr("fd00::53"), Proto: 17, Port: 53, Learned: t0}
	start := newserver.Start{Policy: 4, Group: 1, Since: t0}
	later := srv
	later.Learned = t0.Add(time.Hour) // already stored: kept as first learned
	for _, tc := range []struct {
		name string
		add  newserver.State
		want newserver.State
	}{
		{"entries and starts", newserver.State{Entries: []newserver.Entry{v6, cli, srv}, Starts: []newserver.Start{start}},
			newserver.State{Entries: []newserver.Entry{srv, cli, v6}, Starts: []newserver.Start{start}}},
		{"duplicates keep the first", newserver.State{Entries: []newserver.Entry{later}, Starts: []newserver.Start{{Policy: 4, Group: 1, Since: t0.Add(time.Hour)}}},
			newserver.State{Entries: []newserver.Entry{srv, cli, v6}, Starts: []newserver.Start{start}}},
		{"nothing", newserver.State{}, newserver.State{Entries: []newserver.Entry{srv, cli, v6}, Starts: []newserver.Start{start}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := s.AddLearnedServices(ctx, tc.add); err != nil {
				t.Fatal(err)
			}
			reopen() // survives a restart
			got, err := s.LearnedServices(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(got, tc.want, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
				t.Errorf("LearnedServices (-got +want):\n%s", diff)
			}
		})
	}
}
