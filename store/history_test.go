package store

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/flowsentry/flowsentry/history"
	"github.com/flowsentry/flowsentry/rates"
)

var (
	histGroup = rates.Key{Kind: rates.KindGroup, Group: 7}
	histIface = rates.Key{Kind: rates.KindInterface, Exporter: netip.MustParseAddr("192.0.2.1"), IfIndex: 3}
	histPort  = rates.Key{Kind: rates.KindGroupPort, Group: 7, Proto: 6, Port: 443}
)

// addrEq compares addresses by value.
var addrEq = cmpopts.EquateComparable(netip.Addr{})

// histEntry returns an entry of k whose averages are base+c and peaks
// 10×base+c.
func histEntry(k rates.Key, base float32) history.Entry {
	e := history.Entry{Key: k}
	for c := range history.NumCounters {
		e.Avg[c], e.Peak[c] = base+float32(c), 10*base+float32(c)
	}
	return e
}

func TestHistoryRoundTrip(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openTest(t, dir)
	start := time.Date(2026, 3, 14, 10, 58, 0, 0, time.UTC)
	for i := range 4 { // 10:58 to 11:01, across an hour
		b := history.Batch{Time: start.Add(time.Duration(i) * time.Minute), Entries: []history.Entry{
			histEntry(histGroup, float32(i+1)), histEntry(histIface, 100),
		}}
		if err := s.WriteHistory(ctx, b); err != nil {
			t.Fatalf("WriteHistory: %v", err)
		}
	}
	// A partial minute written again after a restart merges with it.
	if err := s.WriteHistory(ctx, history.Batch{Time: start, Entries: []history.Entry{histEntry(histGroup, 3)}}); err != nil {
		t.Fatalf("WriteHistory: %v", err)
	}
	s.Close()
	s = openTest(t, dir) // the history outlives a restart

	merged := histEntry(histGroup, 2) // mean of 1 and 3
	for c := range history.NumCounters {
		merged.Peak[c] = 30 + float32(c)
	}
	want := []history.Point{
		{Time: start, Avg: merged.Avg, Peak: merged.Peak},
		{Time: start.Add(time.Minute), Avg: histEntry(histGroup, 2).Avg, Peak: histEntry(histGroup, 2).Peak},
		{Time: start.Add(2 * time.Minute), Avg: histEntry(histGroup, 3).Avg, Peak: histEntry(histGroup, 3).Peak},
	}
	tests := []struct {
		name     string
		key      rates.Key
		from, to time.Time
		want     []history.Point
	}{
		{"range across an hour, to excluded", histGroup, start, start.Add(3 * time.Minute), want},
		{"from inside", histGroup, start.Add(90 * time.Second), start.Add(3 * time.Minute), want[2:]},
		{"interface", histIface, start.Add(3 * time.Minute), start.Add(time.Hour), []history.Point{
			{Time: start.Add(3 * time.Minute), Avg: histEntry(histIface, 100).Avg, Peak: histEntry(histIface, 100).Peak}}},
		{"unknown series", histPort, start, start.Add(time.Hour), nil},
		{"before any", histGroup, start.Add(-time.Hour), start, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.ReadHistory(ctx, tc.key, tc.from, tc.to)
			if err != nil {
				t.Fatalf("ReadHistory: %v", err)
			}
			if diff := cmp.Diff(got, tc.want); diff != "" {
				t.Errorf("ReadHistory (-got, +want):\n%s", diff)
			}
		})
	}
	keys, err := s.HistorySeries(ctx)
	if err != nil {
		t.Fatalf("HistorySeries: %v", err)
	}
	if diff := cmp.Diff(keys, []rates.Key{histGroup, histIface}, addrEq); diff != "" {
		t.Errorf("HistorySeries (-got, +want):\n%s", diff)
	}
}

func TestHistoryPrune(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, "")
	day0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	// The group records on days 0 and 8, the interface on day 0 only.
	for _, b := range []history.Batch{
		{Time: day0, Entries: []history.Entry{histEntry(histGroup, 1), histEntry(histIface, 1)}},
		{Time: day0.Add(8 * 24 * time.Hour), Entries: []history.Entry{histEntry(histGroup, 2)}},
	} {
		if err := s.WriteHistory(ctx, b); err != nil {
			t.Fatalf("WriteHistory: %v", err)
		}
	}
	gone, err := s.PruneHistory(ctx, day0.Add(24*time.Hour))
	if err != nil {
		t.Fatalf("PruneHistory: %v", err)
	}
	if diff := cmp.Diff(gone, []rates.Key{histIface}, addrEq); diff != "" {
		t.Errorf("pruned series (-got, +want):\n%s", diff)
	}
	got, err := s.ReadHistory(ctx, histGroup, day0, day0.Add(9*24*time.Hour))
	if err != nil {
		t.Fatalf("ReadHistory: %v", err)
	}
	if len(got) != 1 || !got[0].Time.Equal(day0.Add(8*24*time.Hour)) {
		t.Errorf("after pruning, group minutes = %+v; want only day 8's", got)
	}
	var rows int
	if err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM history_hours`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != 1 {
		t.Errorf("history_hours holds %d rows after pruning; want 1", rows)
	}
}

// TestHistorySize measures the bytes a series takes per day fully busy
// (a record every minute), from the database's pages after a checkpoint.
func TestHistorySize(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a day of minutes")
	}
	ctx := context.Background()
	s := openTest(t, "")
	const series = 20
	size := func() int64 {
		if _, err := s.w.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
			t.Fatal(err)
		}
		var pages, pageSize int64
		if err := s.w.QueryRowContext(ctx, `PRAGMA page_count`).Scan(&pages); err != nil {
			t.Fatal(err)
		}
		if err := s.w.QueryRowContext(ctx, `PRAGMA page_size`).Scan(&pageSize); err != nil {
			t.Fatal(err)
		}
		return pages * pageSize
	}
	before := size()
	day := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	for m := range 24 * 60 {
		b := history.Batch{Time: day.Add(time.Duration(m) * time.Minute)}
		for i := range series {
			b.Entries = append(b.Entries, histEntry(rates.Key{Kind: rates.KindGroup, Group: uint32(i)}, float32(m*i)+0.37))
		}
		if err := s.WriteHistory(ctx, b); err != nil {
			t.Fatalf("WriteHistory: %v", err)
		}
	}
	perSeriesDay := float64(size()-before) / series
	t.Logf("%.0f bytes per series per day; 500 series × 7 days: %.0f MB", perSeriesDay, perSeriesDay*500*7/1e6)
	// A minute's record is 49 bytes (70 KB a day); an hour's row of 2940
	// bytes fills a 4 KiB page (98 KB a day).
	if perSeriesDay < 70_000 || perSeriesDay > 110_000 {
		t.Errorf("%.0f bytes per series per day; want 70 to 110 KB", perSeriesDay)
	}
}
