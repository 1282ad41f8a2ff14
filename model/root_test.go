package model

import (
	"bytes"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// refreshFixture is a holder with a model of one blacklist "drop" (ID 1,
// refreshed every minute) and a Refresher over it.
type refreshFixture struct {
	holder *Holder
	r      *Refresher
	reg    *prometheus.Registry
	file   string
	log    *bytes.Buffer
}

func newRefreshFixture(t *testing.T, tick <-chan time.Time) *refreshFixture {
	t.Helper()
	f := &refreshFixture{reg: prometheus.NewRegistry(), log: new(bytes.Buffer)}
	f.file = writeFile(t, filepath.Join(t.TempDir(), "drop.txt"), "192.0.2.0/24\n")
	cfg := DefaultConfig()
	cfg.Blacklists = []BlacklistConfig{
		{ID: 1, Name: "drop", File: f.file, Refresh: time.Minute},
		{ID: 2, Name: "static", File: f.file}, // never refreshed
	}
	m, err := Build(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.holder = NewHolder(m)
	f.r, err = NewRefresher(RefresherDeps{
		Holder:     f.holder,
		Logger:     slog.New(slog.NewTextHandler(f.log, nil)),
		Registerer: f.reg,
		Tick:       tick,
	})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// lists returns the IDs of the blacklists holding addr in the model in use.
func (f *refreshFixture) lists(addr string) []uint32 {
	return slices.Sorted(slices.Values(f.holder.Load().Blacklisted(netip.MustParseAddr(addr))))
}

func TestRefresher(t *testing.T) {
	f := newRefreshFixture(t, nil)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	initial := f.holder.Load()
	// Real times for mtimes, older than racyWindow: such a size and mtime
	// are trusted.
	hourAgo := time.Now().Add(-time.Hour).Truncate(time.Second)
	write := func(content string) func(*testing.T) {
		return func(t *testing.T) { writeFile(t, f.file, content) }
	}
	setMtime := func(mtime time.Time) func(*testing.T) {
		return func(t *testing.T) {
			if err := os.Chtimes(f.file, mtime, mtime); err != nil {
				t.Fatal(err)
			}
		}
	}
	type counts struct{ unchanged, reloaded, failed, errors float64 }
	for _, step := range []struct {
		name    string
		do      []func(*testing.T) // on the file, before the tick
		at      time.Duration
		swapped bool
		addr    string
		want    []uint32
		counts  counts
		log     string // held by the log; "" wants it empty
	}{
		{"first tick schedules", []func(*testing.T){write("198.51.100.7\n")}, 0, false, "192.0.2.1", []uint32{1, 2}, counts{}, ""},
		{"not due yet", nil, 59 * time.Second, false, "198.51.100.7", nil, counts{}, ""},
		{"changed: reloaded", nil, time.Minute, true, "198.51.100.7", []uint32{1}, counts{reloaded: 1}, ""},
		{"static list kept", nil, time.Minute, false, "192.0.2.1", []uint32{2}, counts{reloaded: 1}, ""},
		{"same content, recent mtime: hashed, not reloaded", nil, 2 * time.Minute, false, "198.51.100.7", []uint32{1}, counts{1, 1, 0, 0}, ""},
		{"touched, same content: not reloaded", []func(*testing.T){setMtime(hourAgo)}, 3 * time.Minute, false, "198.51.100.7", []uint32{1}, counts{2, 1, 0, 0}, ""},
		{
			"same size and old mtime: trusted, not read",
			[]func(*testing.T){write("198.51.100.8\n"), setMtime(hourAgo)},
			4 * time.Minute, false, "198.51.100.8", nil, counts{3, 1, 0, 0}, "",
		},
		{
			"mtime changed: reloaded",
			[]func(*testing.T){setMtime(hourAgo.Add(time.Minute))},
			5 * time.Minute, true, "198.51.100.8", []uint32{1}, counts{3, 2, 0, 0}, "",
		},
		{
			"bad line keeps the old list", []func(*testing.T){write("198.51.100.9\nxyz\n")},
			6 * time.Minute, false, "198.51.100.8", []uint32{1}, counts{3, 2, 1, 1},
			`level=WARN msg="blacklist refresh failed; the previous entries stay in use" blacklist=drop err="FILE:2: \"xyz\" is not an IP address or CIDR"`,
		},
		{
			"still broken: failed again", nil, 7 * time.Minute, false, "198.51.100.9", nil, counts{3, 2, 2, 2},
			`blacklist=drop err="FILE:2: \"xyz\" is not an IP address or CIDR"`,
		},
		{"no retry before the next period", []func(*testing.T){write("2001:db8::/32\n")}, 7*time.Minute + 30*time.Second, false, "2001:db8::1", nil, counts{3, 2, 2, 2}, ""},
		{"fixed file is read a period later", nil, 8 * time.Minute, true, "2001:db8::1", []uint32{1}, counts{3, 3, 2, 2}, ""},
		{
			"removed: the old list stays",
			[]func(*testing.T){func(t *testing.T) {
				if err := os.Remove(f.file); err != nil {
					t.Fatal(err)
				}
			}},
			9 * time.Minute, false, "2001:db8::1", []uint32{1}, counts{3, 3, 3, 3},
			`blacklist=drop err="stat FILE: no such file or directory"`,
		},
		{"restored with the content in use: not reloaded", []func(*testing.T){write("2001:db8::/32\n")}, 10 * time.Minute, false, "2001:db8::1", []uint32{1}, counts{4, 3, 3, 3}, ""},
		{"static list still kept", nil, 10 * time.Minute, false, "192.0.2.1", []uint32{2}, counts{4, 3, 3, 3}, ""},
	} {
		t.Run(step.name, func(t *testing.T) {
			for _, do := range step.do {
				do(t)
			}
			f.log.Reset()
			before := f.holder.Load()
			f.r.refresh(t0.Add(step.at))
			if swapped := f.holder.Load() != before; swapped != step.swapped {
				t.Errorf("model swapped = %v, want %v", swapped, step.swapped)
			}
			if diff := cmp.Diff(f.lists(step.addr), step.want); diff != "" {
				t.Errorf("Blacklisted(%s) (-got +want):\n%s", step.addr, diff)
			}
			got := counts{
				unchanged: testutil.ToFloat64(f.r.metrics.refreshes.WithLabelValues("drop", resultUnchanged)),
				reloaded:  testutil.ToFloat64(f.r.metrics.refreshes.WithLabelValues("drop", resultReloaded)),
				failed:    testutil.ToFloat64(f.r.metrics.refreshes.WithLabelValues("drop", resultFailed)),
				errors:    testutil.ToFloat64(f.r.metrics.errors.WithLabelValues("drop")),
			}
			if diff := cmp.Diff(got, step.counts, cmp.AllowUnexported(counts{})); diff != "" {
				t.Errorf("counts (-got +want):\n%s", diff)
			}
			wantLog := strings.ReplaceAll(step.log, "FILE", f.file)
			if got := f.log.String(); !strings.Contains(got, wantLog) || (wantLog == "" && got != "") {
				t.Errorf("log = %q, want it to hold %q", got, wantLog)
			}
		})
	}
	// Unchanged lists are shared, not copied, by the snapshots.
	if got, want := f.holder.Load().Blacklists[1].entries, initial.Blacklists[1].entries; got != want {
		t.Error("the static list's entries were copied")
	}
	// Snapshots are immutable: the first one still answers as built.
	if got := initial.Blacklisted(netip.MustParseAddr("192.0.2.1")); !slices.Equal(got, []uint32{1, 2}) {
		t.Errorf("initial model changed: Blacklisted(192.0.2.1) = %v", got)
	}
}

func TestRefresherAfterReload(t *testing.T) {
	f := newRefreshFixture(t, nil)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.r.refresh(t0) // schedules "drop" at t0+1m

	// A reload changes the period: the schedule starts over from the next
	// tick instead of following the old period.
	cfg := DefaultConfig()
	cfg.Blacklists = []BlacklistConfig{{ID: 1, Name: "drop", File: f.file, Refresh: time.Hour}}
	m, err := Build(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.holder.Store(m)
	writeFile(t, f.file, "198.51.100.7\n")
	for _, at := range []time.Duration{time.Minute, time.Hour} {
		f.r.refresh(t0.Add(at))
		if f.holder.Load() != m {
			t.Fatalf("refreshed at +%s, before the new period of 1h", at)
		}
	}
	f.r.refresh(t0.Add(time.Minute + time.Hour))
	if got := f.lists("198.51.100.7"); !slices.Equal(got, []uint32{1}) {
		t.Errorf("after the new period: Blacklisted = %v, want [1]", got)
	}

	// A reload keeping the period read the changed file itself: the next
	// refresh compares the file with what that reload read, and finds it
	// unchanged.
	writeFile(t, f.file, "203.0.113.5\n")
	if m, err = Build(cfg); err != nil {
		t.Fatal(err)
	}
	f.holder.Store(m)
	f.r.refresh(t0.Add(time.Minute + 2*time.Hour))
	if f.holder.Load() != m {
		t.Error("the model read by the reload was rebuilt")
	}
	if got := testutil.ToFloat64(f.r.metrics.refreshes.WithLabelValues("drop", resultUnchanged)); got != 1 {
		t.Errorf("unchanged refreshes = %v, want 1", got)
	}
}

func TestRefresherStartStop(t *testing.T) {
	tick := make(chan time.Time)
	f := newRefreshFixture(t, tick)
	f.r.Stop() // before Start: no effect
	if err := f.r.Start(); err != nil {
		t.Fatal(err)
	}
	if err := f.r.Start(); err == nil {
		t.Error("second Start succeeded")
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	writeFile(t, f.file, "198.51.100.7\n")
	tick <- t0
	tick <- t0.Add(time.Minute)
	f.r.Stop() // waits for the refresh in progress
	f.r.Stop()
	if got := f.lists("198.51.100.7"); !slices.Equal(got, []uint32{1}) {
		t.Errorf("after two ticks: Blacklisted = %v, want [1]", got)
	}
	select {
	case tick <- t0.Add(2 * time.Minute):
		t.Error("a tick was received after Stop")
	case <-time.After(10 * time.Millisecond):
	}
}

func TestNewRefresherErrors(t *testing.T) {
	reg := prometheus.NewRegistry()
	h := NewHolder(nil)
	if _, err := NewRefresher(RefresherDeps{Holder: h, Registerer: reg}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		deps RefresherDeps
		want string
	}{
		{"no holder", RefresherDeps{}, "blacklist refresher: no model holder given"},
		{"registered twice", RefresherDeps{Holder: h, Registerer: reg}, "register blacklist metrics: duplicate metrics collector registration attempted"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewRefresher(tc.deps)
			if err == nil || err.Error() != tc.want {
				t.Errorf("error = %v, want %s", err, tc.want)
			}
		})
	}
}

func TestRefresherNoModel(t *testing.T) {
	r, err := NewRefresher(RefresherDeps{Holder: new(Holder)})
	if err != nil {
		t.Fatal(err)
	}
	r.refresh(time.Now()) // must not panic on an empty holder
}
