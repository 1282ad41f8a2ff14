package alertindex_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/flowsentry/flowsentry/action"
	"github.com/flowsentry/flowsentry/alert"
	"github.com/flowsentry/flowsentry/alertindex"
	"github.com/flowsentry/flowsentry/store"
)

// now is the clock of the tests.
var now = time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)

func all(uint32, uint32) bool { return true }

// ddos is an open ddos_synflood alert on ip in partition cid, started
// ago before now.
func ddos(cid uint32, sev int, ip string, ago time.Duration) alert.Alert {
	return alert.Alert{
		Policy: 7, Key: "ddos_synflood/" + ip, Type: "ddos_synflood", CID: cid, CIDName: fmt.Sprint("p", cid), Severity: sev,
		Earliest: now.Add(-ago), Latest: now.Add(-time.Second),
		Fields: []alert.Field{
			{Name: "TARGET_IP", Value: ip}, {Name: "TARGET_TG_NAME", Value: "servers"},
			{Name: "PORT", Value: "80", Number: true},
			{Name: "SOURCES", List: []string{"192.0.2.1", "192.0.2.2"}, IsList: true},
			{Name: "TOTAL_SOURCES", Value: "9", Number: true},
		},
	}
}

// blacklisted is an ended blacklisted_ip alert of blacklist bl lasting d.
func blacklisted(cid uint32, bl string, start, d time.Duration) alert.Alert {
	return alert.Alert{
		Policy: 8, Key: "bl/" + bl, Type: "blacklisted_ip", CID: cid, Severity: 3,
		Earliest: now.Add(-start), Latest: now.Add(-start + d), Ended: now.Add(-start + d),
		Fields: []alert.Field{
			{Name: "CLIENT_IP", Value: "10.0.0.9"}, {Name: "CLIENT_BLACKLIST", Value: bl, Number: true},
			{Name: "CLIENT_BL_NAME", Value: "bad hosts"},
			{Name: "SERVER_IP", Value: "10.9.9.9"}, {Name: "SERVER_BLACKLIST", Value: "0", Number: true},
			{Name: "SERVER_PORT", Value: "443", Number: true},
		},
	}
}

// fixture stores alerts in a real SQLite store and returns a loaded
// index over it and their IDs.
func fixture(t *testing.T, alerts ...alert.Alert) (*alertindex.Index, *store.Store, []uint64) {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	list := make([]*alert.Alert, len(alerts))
	for i := range alerts {
		list[i] = &alerts[i]
	}
	if err := st.SaveAlerts(ctx, list); err != nil {
		t.Fatal(err)
	}
	x, err := alertindex.New(alertindex.Config{}, st, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	if err := x.Load(ctx); err != nil {
		t.Fatal(err)
	}
	ids := make([]uint64, len(alerts))
	for i, a := range alerts {
		ids[i] = a.ID
	}
	return x, st, ids
}

func query(mod func(q *alertindex.Query)) alertindex.Query {
	q := alertindex.Query{From: now.Add(-24 * time.Hour), To: now, Limit: 100, Slices: 24, May: all}
	if mod != nil {
		mod(&q)
	}
	return q
}

func ids(r alertindex.Result) []uint64 {
	var out []uint64
	for _, h := range r.Alerts {
		out = append(out, h.ID)
	}
	return out
}

func TestSearch(t *testing.T) {
	x, st, id := fixture(t,
		ddos(1, 5, "10.1.2.3", time.Hour),                      // id[0]: open for 1 h: hours
		ddos(2, 9, "10.1.2.4", 30*time.Second),                 // id[1]: seconds
		blacklisted(1, "3", 2*time.Hour, 500*time.Millisecond), // id[2]: instant
		blacklisted(1, "4", 3*time.Hour, 10*time.Minute),       // id[3]: minutes
		blacklisted(1, "3", 48*time.Hour, time.Minute),         // id[4]: out of range
	)
	ctx := context.Background()
	// Actions: id[0] has a waiting one, id[1] a running one, id[3] an ended one.
	for i, ac := range []action.Action{
		{ID: 1, Alert: id[0], State: action.StateWaiting},
		{ID: 2, Alert: id[1], State: action.StateInProgress},
		{ID: 3, Alert: id[3], State: action.StateEnded},
	} {
		if i == 0 {
			if err := st.SaveAction(ctx, &ac); err != nil { // loaded from the store
				t.Fatal(err)
			}
			continue
		}
		x.Action(ac, 0) // heard from the dispatcher
	}
	if err := x.Load(ctx); err != nil {
		t.Fatal(err)
	}
	x.Action(action.Action{ID: 2, Alert: id[1], State: action.StateInProgress}, 0)
	x.Action(action.Action{ID: 3, Alert: id[3], State: action.StateEnded}, 0)
	if _, err := x.AddNote(ctx, id[0], "ann", "looks like @DDoS from @botnet-7, mail me@example.com", all); err != nil {
		t.Fatal(err)
	}
	if _, err := x.AddNote(ctx, id[2], "bob", "known @ddos", all); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		mod   func(q *alertindex.Query)
		want  []uint64
		facet string
		count map[string]int
	}{
		{"all in range, latest first", nil, []uint64{id[1], id[0], id[2], id[3]}, "type",
			map[string]int{"ddos_synflood": 2, "blacklisted_ip": 2}},
		{"type: its own facet ignores it", func(q *alertindex.Query) { q.Type = []string{"ddos_synflood"} },
			[]uint64{id[1], id[0]}, "type", map[string]int{"ddos_synflood": 2, "blacklisted_ip": 2}},
		{"type: other facets apply it", func(q *alertindex.Query) { q.Type = []string{"ddos_synflood"} },
			[]uint64{id[1], id[0]}, "severity", map[string]int{"5": 1, "9": 1, "3": 0}},
		{"severity OR", func(q *alertindex.Query) { q.Severity = []int{3, 9} }, []uint64{id[1], id[2], id[3]},
			"status", map[string]int{"waiting": 0, "running": 1, "ended": 1, "none": 1}},
		{"status", func(q *alertindex.Query) { q.Status = []string{"waiting", "ended"} }, []uint64{id[0], id[3]},
			"status", map[string]int{"waiting": 1, "running": 1, "ended": 1, "none": 1}},
		{"status none", func(q *alertindex.Query) { q.Status = []string{"none"} }, []uint64{id[2]}, "", nil},
		{"blacklist", func(q *alertindex.Query) { q.Blacklist = []uint32{3} }, []uint64{id[2]},
			"blacklist", map[string]int{"3": 1, "4": 1}},
		{"duration", func(q *alertindex.Query) { q.Duration = []string{"instant", "hours"} }, []uint64{id[0], id[2]},
			"duration", map[string]int{"instant": 1, "seconds": 1, "minutes": 1, "hours": 1, "days": 0}},
		{"note tag", func(q *alertindex.Query) { q.Note = []string{"@ddos"} }, []uint64{id[0], id[2]},
			"note", map[string]int{"none": 2, "@ddos": 2, "@botnet-7": 1}},
		{"note none", func(q *alertindex.Query) { q.Note = []string{"none"} }, []uint64{id[1], id[3]}, "", nil},
		{"cid", func(q *alertindex.Query) { q.CID = []uint32{2} }, []uint64{id[1]}, "cid", map[string]int{"1": 3, "2": 1}},
		{"q on the object", func(q *alertindex.Query) { q.Q = "10.1.2.4 IN" }, []uint64{id[1]}, "", nil},
		{"q on a field", func(q *alertindex.Query) { q.Q = "bad hosts" }, []uint64{id[2], id[3]}, "", nil},
		{"partitions", func(q *alertindex.Query) { q.May = func(cid, _ uint32) bool { return cid == 2 } }, []uint64{id[1]},
			"type", map[string]int{"ddos_synflood": 1}},
		{"filters AND", func(q *alertindex.Query) { q.Type = []string{"blacklisted_ip"}; q.Severity = []int{9} }, nil,
			"severity", map[string]int{"3": 2, "5": 0, "9": 0}},
		{"unknown value", func(q *alertindex.Query) { q.Type = []string{"nope"} }, nil,
			"type", map[string]int{"ddos_synflood": 2, "blacklisted_ip": 2, "nope": 0}},
		{"sort severity", func(q *alertindex.Query) { q.Sort = "severity" }, []uint64{id[1], id[0], id[2], id[3]}, "", nil},
		{"sort earliest", func(q *alertindex.Query) { q.Sort = "earliest" }, []uint64{id[1], id[0], id[2], id[3]}, "", nil},
		{"page", func(q *alertindex.Query) { q.Offset, q.Limit = 1, 2 }, []uint64{id[0], id[2]}, "", nil},
		{"old range", func(q *alertindex.Query) { q.From, q.To = now.Add(-50*time.Hour), now.Add(-47*time.Hour) },
			[]uint64{id[4]}, "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := x.Search(query(tc.mod))
			if diff := cmp.Diff(ids(r), tc.want); diff != "" {
				t.Errorf("alerts (-got +want):\n%s", diff)
			}
			if r.Total != len(tc.want) && tc.name != "page" || tc.name == "page" && r.Total != 4 {
				t.Errorf("total %d, want %d", r.Total, len(tc.want))
			}
			if tc.facet != "" {
				if diff := cmp.Diff(r.Facets[tc.facet], tc.count); diff != "" {
					t.Errorf("facet %s (-got +want):\n%s", tc.facet, diff)
				}
			}
		})
	}
	t.Run("hit", func(t *testing.T) {
		r := x.Search(query(func(q *alertindex.Query) { q.Q = "10.1.2.3" }))
		want := alertindex.Hit{
			ID: id[0], Type: "ddos_synflood", CID: 1, CIDName: "p1", Severity: 5,
			Earliest: now.Add(-time.Hour), Latest: now.Add(-time.Second), DurationSeconds: 3600,
			Object: "10.1.2.3 in servers port 80", Sources: "192.0.2.1, 192.0.2.2 (9 in all)",
			Policy: alertindex.PolicyRef{ID: 7}, ActionStatus: "waiting", Tags: []string{"@ddos", "@botnet-7"}, Notes: 1,
		}
		if diff := cmp.Diff(r.Alerts, []alertindex.Hit{want}); diff != "" {
			t.Errorf("(-got +want):\n%s", diff)
		}
		r = x.Search(query(func(q *alertindex.Query) { q.Blacklist = []uint32{4} }))
		if got := r.Alerts[0]; got.Object != "10.0.0.9 → 10.9.9.9 port 443" || got.Reason != "on bad hosts" || got.ActionStatus != "ended" {
			t.Errorf("blacklisted hit %+v", got)
		}
	})
}

func TestHistogram(t *testing.T) {
	x, _, _ := fixture(t,
		ddos(1, 5, "10.1.2.3", 90*time.Minute),                      // slices 22, 23 of 24 hours
		ddos(1, 5, "10.1.2.4", 30*time.Minute),                      // slice 23
		blacklisted(1, "3", 10*time.Hour+30*time.Minute, time.Hour), // slices 13, 14
	)
	r := x.Search(query(nil))
	want := alertindex.Histogram{Step: 3600, T: make([]int64, 24), Types: map[string][]int{
		"ddos_synflood": make([]int, 24), "blacklisted_ip": make([]int, 24),
	}}
	for i := range want.T {
		want.T[i] = now.Add(-24*time.Hour).Unix() + int64(i)*3600
	}
	want.Types["ddos_synflood"][22], want.Types["ddos_synflood"][23] = 1, 2
	want.Types["blacklisted_ip"][13], want.Types["blacklisted_ip"][14] = 1, 1
	if diff := cmp.Diff(r.Histogram, want); diff != "" {
		t.Errorf("(-got +want):\n%s", diff)
	}
}

func TestFollowsTransitions(t *testing.T) {
	x, _, id := fixture(t, ddos(1, 5, "10.1.2.3", time.Hour))
	a := ddos(1, 8, "10.1.2.3", time.Hour)
	a.ID, a.Ended = id[0], now.Add(-time.Minute)
	x.Alert(alert.Event{Op: alert.OpDelete, Alert: a})
	b := ddos(2, 2, "10.7.7.7", time.Minute)
	b.ID = id[0] + 1
	x.Alert(alert.Event{Op: alert.OpCreate, Alert: b})
	r := x.Search(query(nil))
	if got := ids(r); !slices.Equal(got, []uint64{b.ID, a.ID}) {
		t.Fatalf("alerts %v", got)
	}
	if h := r.Alerts[1]; h.Severity != 8 || !h.Ended || h.DurationSeconds != 59*60 {
		t.Errorf("updated alert: %+v", h)
	}
	// Neither has an action: created or updated, both count as "none",
	// never as waiting for approval.
	if got := r.Facets["status"]; got["none"] != 2 || got["waiting"] != 0 {
		t.Errorf("status counts of alerts without actions: %v, want none: 2", got)
	}
	if _, err := x.AddNote(context.Background(), b.ID, "ann", "x", all); err == nil {
		t.Error("a note on an alert the store lacks was accepted")
	}
}

func TestNotes(t *testing.T) {
	x, _, id := fixture(t, ddos(1, 5, "10.1.2.3", time.Hour))
	ctx := context.Background()
	only2 := func(cid, _ uint32) bool { return cid == 2 }
	for _, tc := range []struct {
		name, text string
		may        func(uint32, uint32) bool
		ok         bool
	}{
		{"empty", "", all, false},
		{"blank", "  \n", all, false},
		{"too long", string(make([]rune, alertindex.MaxNoteLen+1)), all, false},
		{"longest", string(slices.Repeat([]rune("é"), alertindex.MaxNoteLen)), all, true},
		{"other partition", "hi", only2, false},
		{"tags", "see @Ticket-42 and @ticket-42, @x_y.", all, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := x.AddNote(ctx, id[0], "ann", tc.text, tc.may)
			if (err == nil) != tc.ok {
				t.Errorf("err %v, want ok %v", err, tc.ok)
			}
		})
	}
	notes, err := x.Notes(ctx, id[0], all)
	if err != nil || len(notes) != 2 {
		t.Fatalf("notes %v, %v", notes, err)
	}
	if got := notes[1]; got.User != "ann" || !slices.Equal(got.Tags, []string{"@ticket-42", "@x_y"}) || !got.Time.Equal(now) {
		t.Errorf("note %+v", got)
	}
	if _, err := x.Notes(ctx, id[0], only2); err == nil {
		t.Error("notes of another partition were served")
	}
}

func TestTags(t *testing.T) {
	for _, tc := range []struct {
		text string
		want []string
	}{
		{"", []string{}},
		{"@a", []string{"@a"}},
		{"mail a@b.c", []string{}},
		{"@ alone", []string{}},
		{"(@Ünïcode_1-x!)", []string{"@ünïcode_1-x"}},
		{"@a @A @b", []string{"@a", "@b"}},
	} {
		t.Run(tc.text, func(t *testing.T) {
			if got := alertindex.Tags(tc.text); !slices.Equal(got, tc.want) {
				t.Errorf("Tags(%q) = %q, want %q", tc.text, got, tc.want)
			}
		})
	}
}

// memStore holds notes in memory for the benchmark, whose 10,000 notes
// would take SQLite transactions the benchmark does not measure.
type memStore struct{ next uint64 }

func (*memStore) EachAlert(context.Context, func(alert.Alert) error) error { return nil }
func (*memStore) EachActionState(context.Context, func(uint64, uint64, string) error) error {
	return nil
}
func (*memStore) EachNote(context.Context, func(alertindex.Note) error) error { return nil }
func (s *memStore) AddNote(_ context.Context, n *alertindex.Note) error {
	s.next++
	n.ID = s.next
	return nil
}
func (*memStore) Notes(context.Context, uint64) ([]alertindex.Note, error) { return nil, nil }

// benchIndex builds an index of n alerts: 30 types, severities 1-10, 20 %
// with actions, 10 % with notes, spread over 7 days.
func benchIndex(b *testing.B, n int) *alertindex.Index {
	x, err := alertindex.New(alertindex.Config{}, &memStore{}, func() time.Time { return now })
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	week := int64(7 * 24 * time.Hour)
	states := []action.State{action.StateWaiting, action.StateInProgress, action.StateEnded}
	for i := range n {
		a := ddos(uint32(rng.IntN(4)), 1+rng.IntN(10), fmt.Sprintf("10.%d.%d.%d", i>>16, i>>8&255, i&255),
			time.Duration(rng.Int64N(week)))
		a.ID, a.Type = uint64(i+1), fmt.Sprintf("type_%02d", rng.IntN(30))
		if rng.IntN(10) > 0 {
			a.Ended = a.Earliest.Add(time.Duration(rng.Int64N(int64(4 * time.Hour))))
		}
		x.Alert(alert.Event{Op: alert.OpCreate, Alert: a})
		if rng.IntN(5) == 0 {
			x.Action(action.Action{ID: uint64(i), Alert: a.ID, State: states[rng.IntN(3)]}, a.CID)
		}
		if rng.IntN(10) == 0 {
			if _, err := x.AddNote(context.Background(), a.ID, "ann", fmt.Sprintf("@tag%d seen", rng.IntN(5)), all); err != nil {
				b.Fatal(err)
			}
		}
	}
	return x
}

func BenchmarkSearch(b *testing.B) {
	const n = 100_000
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	x := benchIndex(b, n)
	runtime.GC()
	runtime.ReadMemStats(&after)
	b.Logf("%d alerts: %.0f bytes per alert in the index", x.Len(), float64(after.HeapAlloc-before.HeapAlloc)/n)
	week := func(q *alertindex.Query) { q.From, q.Slices = now.Add(-7*24*time.Hour), 120 }
	for _, bc := range []struct {
		name string
		mod  func(q *alertindex.Query)
	}{
		{"no filter", func(q *alertindex.Query) { week(q) }},
		{"one type", func(q *alertindex.Query) { week(q); q.Type = []string{"type_07"} }},
		{"severity+status", func(q *alertindex.Query) {
			week(q)
			q.Severity = []int{8, 9, 10}
			q.Status = []string{"waiting", "running"}
		}},
		{"tag", func(q *alertindex.Query) { week(q); q.Note = []string{"@tag3"} }},
		{"day q", func(q *alertindex.Query) { q.Q = "10.1." }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			q := query(bc.mod)
			b.ReportAllocs()
			var total int
			for b.Loop() {
				total = x.Search(q).Total
			}
			b.ReportMetric(float64(total), "matches")
		})
	}
}

// TestSearchGroups checks that a user restricted to some traffic groups
// finds only the alerts about those, facets and notes included.
func TestSearchGroups(t *testing.T) {
	inGroup := func(a alert.Alert, g string) alert.Alert {
		a.Fields = append(slices.Clone(a.Fields), alert.Field{Name: "TARGET_TG", Value: g, Number: true})
		return a
	}
	x, _, id := fixture(t, inGroup(ddos(1, 5, "10.1.2.3", time.Hour), "1"), inGroup(ddos(1, 6, "10.2.2.3", time.Hour), "2"), ddos(1, 7, "10.3.3.3", time.Hour))
	only2 := func(_, group uint32) bool { return group == 2 }
	q := query(nil)
	q.May = only2
	r := x.Search(q)
	if got := ids(r); !slices.Equal(got, []uint64{id[1]}) {
		t.Errorf("alerts of group 2: %v, want [%d]", got, id[1])
	}
	if got := r.Facets["severity"]; got["6"] != 1 || got["5"] != 0 || got["7"] != 0 {
		t.Errorf("severity counts %v, want only the alert of group 2", got)
	}
	if _, err := x.AddNote(context.Background(), id[0], "g2", "not mine", only2); err == nil {
		t.Error("a note on an alert of another group was accepted")
	}
}
