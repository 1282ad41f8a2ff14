package store

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/flowsentry/flowsentry/detect"
	"github.com/flowsentry/flowsentry/rates"
)

func TestBaselines(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openTest(t, dir)
	reopen := func() {
		s.Close()
		s = openTest(t, dir)
	}
	group := detect.Baseline{Policy: 1, Key: rates.Key{Kind: rates.KindGroup, Group: 0}, Value: 12.5, Samples: 3, Updated: t0}
	iface := detect.Baseline{
		Policy: 2,
		Key: rates.Key{
			Kind: rates.KindInterfacePort, Exporter: netip.MustParseAddr("2001:db8::1%eth0"),
			IfIndex: 7, Proto: 6, Port: 443,
		},
		Value: 4361.75, Samples: 1 << 33, Updated: t0.Add(time.Hour),
	}
	host := detect.Baseline{
		Policy: 2,
		Key:    rates.Key{Kind: rates.KindHost, Group: 4, IP: netip.MustParseAddr("192.0.2.1")},
		Value:  0.5, Updated: t0,
	}
	// Same key as group under another policy.
	other := detect.Baseline{Policy: 3, Key: group.Key, Value: 1}
	for _, tc := range []struct {
		name string
		save []detect.Baseline
		want []detect.Baseline
	}{
		{"every key shape", []detect.Baseline{iface, group, host, other}, []detect.Baseline{group, host, iface, other}},
		{"replaces the whole set", []detect.Baseline{host}, []detect.Baseline{host}},
		{"nothing", nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := s.SaveBaselines(ctx, tc.save); err != nil {
				t.Fatal(err)
			}
			// Baselines survive a restart.
			reopen()
			got, err := s.Baselines(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(got, tc.want, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
				t.Errorf("Baselines (-got +want):\n%s", diff)
			}
		})
	}
}
