package alertindex

import (
	"cmp"
	"math/bits"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Query is a search. Values within one filter are OR-ed, filters are
// AND-ed; an empty filter keeps everything.
type Query struct {
	// From and To bound the time: an alert matches when it was active in
	// [From, To] (Earliest <= To and ended after From or still open).
	From, To time.Time
	// Severity, Status (Statuses), Type, Blacklist (IDs), Duration
	// (Durations), Note (NoteNone or @tags) and CID are the faceted
	// filters.
	Severity  []int
	Status    []string
	Type      []string
	Blacklist []uint32
	Duration  []string
	Note      []string
	CID       []uint32
	// Q keeps alerts whose object, key, partition, type or field values
	// contain it, ignoring case.
	Q string
	// Sort is one of Sorts ("": latest).
	Sort string
	// Limit and Offset select the page of results.
	Limit, Offset int
	// Slices is the number of histogram slices (at least 1).
	Slices int
	// May says whether the user sees the alerts of a partition and
	// traffic group (0: none, an interface's alert).
	May func(cid, group uint32) bool
}

// Result is the answer to a search.
type Result struct {
	// Total is the number of alerts matching every filter.
	Total int `json:"total"`
	// Alerts is the page of them.
	Alerts []Hit `json:"alerts"`
	// Facets counts, for each facet and value, the alerts that match every
	// other filter and have that value; every value of the alerts in the
	// time range is present, with 0 when none matches.
	Facets map[string]map[string]int `json:"facets"`
	// Histogram counts the matching alerts active in each time slice, per
	// type.
	Histogram Histogram `json:"histogram"`
}

// Histogram is the number of matching alerts active in each slice of the
// time range, per alert type.
type Histogram struct {
	// Step is the slice length in seconds.
	Step int64 `json:"step_seconds"`
	// T are the starts of the slices, Unix seconds.
	T []int64 `json:"t"`
	// Types are the counts per slice of each type.
	Types map[string][]int `json:"types"`
}

// Hit is an alert of a result.
type Hit struct {
	ID              uint64    `json:"id"`
	Type            string    `json:"type"`
	CID             uint32    `json:"cid"`
	CIDName         string    `json:"cid_name"`
	Severity        int       `json:"severity"`
	Earliest        time.Time `json:"earliest"`
	Latest          time.Time `json:"latest"`
	Ended           bool      `json:"ended"`
	DurationSeconds float64   `json:"duration_seconds"`
	// Object is what the alert is about, Reason why it fired, Sources
	// its top sources ("" when it has none).
	Object  string `json:"object"`
	Reason  string `json:"reason"`
	Sources string `json:"sources"`
	// Policy is the policy that raised it; the index sets only the ID.
	Policy       PolicyRef `json:"policy"`
	ActionStatus string    `json:"action_status"`
	Tags         []string  `json:"tags"`
	Notes        int       `json:"notes"`
}

// PolicyRef names a policy.
type PolicyRef struct {
	ID   uint64 `json:"id"`
	Name string `json:"name"`
}

// durationBucket returns the Durations index of a duration in
// milliseconds.
func durationBucket(ms int64) uint32 {
	switch {
	case ms <= 1000:
		return 0
	case ms < 60_000:
		return 1
	case ms < 3_600_000:
		return 2
	case ms < 86_400_000:
		return 3
	}
	return 4
}

// filter is a compiled faceted filter: the dictionary IDs it keeps.
type filter struct {
	on     bool
	keep   []bool   // by dictionary ID
	values []string // as given, shown in the facet even when unknown
}

func (f *filter) has(id uint32) bool { return int(id) < len(f.keep) && f.keep[id] }

// hasAny reports whether f keeps one of ids.
func (f *filter) hasAny(ids []uint32) bool {
	for _, id := range ids {
		if f.has(id) {
			return true
		}
	}
	return false
}

// compile turns the filter values into dictionary IDs; unknown values keep
// nothing. The caller holds x.mu (read).
func (x *Index) compile(q *Query) [numFacets]filter {
	var fs [numFacets]filter
	set := func(f int, values []string) {
		if len(values) == 0 {
			return
		}
		fs[f] = filter{on: true, keep: make([]bool, len(x.dicts[f].names)), values: values}
		for _, v := range values {
			if id, ok := x.dicts[f].ids[v]; ok {
				fs[f].keep[id] = true
			}
		}
	}
	set(facetSeverity, mapStrings(q.Severity, strconv.Itoa))
	set(facetStatus, q.Status)
	set(facetType, q.Type)
	set(facetBlacklist, mapStrings(q.Blacklist, utoa))
	set(facetDuration, q.Duration)
	set(facetNote, q.Note)
	set(facetCID, mapStrings(q.CID, utoa))
	return fs
}

func mapStrings[T any](in []T, f func(T) string) []string {
	out := make([]string, len(in))
	for i, v := range in {
		out[i] = f(v)
	}
	return out
}

// Search runs q. q must be valid: a From before To, Slices >= 1, a known
// Sort, Status and Duration values (the API checks them).
func (x *Index) Search(q Query) Result {
	now := x.clock().UnixMilli()
	from, to := q.From.UnixMilli(), q.To.UnixMilli()
	needle := strings.ToLower(q.Q)
	step := max((to-from+int64(q.Slices)*1000-1)/(int64(q.Slices)*1000), 1) * 1000 // ms, whole seconds
	x.mu.RLock()
	defer x.mu.RUnlock()
	fs := x.compile(&q)
	var counts, present [numFacets][]int32
	for f := range counts {
		counts[f] = make([]int32, len(x.dicts[f].names))
		present[f] = make([]int32, len(x.dicts[f].names))
	}
	hist := map[uint32][]int32{} // type → difference array over slices
	var matched []int32
	noteNone := uint32(0) // NoteNone is the first note value
	for i := range x.entries {
		e := &x.entries[i]
		end := e.ended
		if end == 0 {
			end = now
		}
		if e.earliest > to || end < from || !q.May(e.cid, e.group) {
			continue
		}
		if needle != "" && !strings.Contains(e.search, needle) {
			continue
		}
		dur := durationBucket(end - e.earliest)
		var miss uint8
		for _, f := range [...]int{facetSeverity, facetStatus, facetType, facetCID} {
			if fs[f].on && !fs[f].has(e.val[f]) {
				miss |= 1 << f
			}
		}
		if fs[facetDuration].on && !fs[facetDuration].has(dur) {
			miss |= 1 << facetDuration
		}
		if fs[facetBlacklist].on && !fs[facetBlacklist].hasAny(e.blacklists) {
			miss |= 1 << facetBlacklist
		}
		if fs[facetNote].on && !(e.notes == 0 && fs[facetNote].has(noteNone) || fs[facetNote].hasAny(e.tags)) {
			miss |= 1 << facetNote
		}
		// Count the facets this entry counts in: all when it matches, the
		// one it misses when it misses one; mark its values present.
		only := -1
		switch {
		case miss == 0:
		case miss&(miss-1) == 0:
			only = bits.TrailingZeros8(miss)
		}
		for f := range numFacets {
			c := present[f]
			if miss == 0 || f == only {
				c = counts[f]
			}
			switch f {
			case facetBlacklist:
				for _, id := range e.blacklists {
					c[id]++
				}
			case facetNote:
				if e.notes == 0 {
					c[noteNone]++
				}
				for _, id := range e.tags {
					c[id]++
				}
			case facetDuration:
				c[dur]++
			default:
				c[e.val[f]]++
			}
		}
		if miss != 0 {
			continue
		}
		matched = append(matched, int32(i))
		d := hist[e.val[facetType]]
		if d == nil {
			d = make([]int32, q.Slices+1)
			hist[e.val[facetType]] = d
		}
		first := max((e.earliest-from)/step, 0)
		last := min((end-from)/step, int64(q.Slices-1))
		d[first]++
		d[last+1]--
	}
	res := Result{Total: len(matched), Facets: map[string]map[string]int{}}
	for f := range numFacets {
		m := map[string]int{}
		names := x.dicts[f].names
		for id := range names {
			fixed := f == facetStatus || f == facetDuration || (f == facetNote && uint32(id) == noteNone)
			if counts[f][id] > 0 || present[f][id] > 0 || fixed {
				m[names[id]] = int(counts[f][id])
			}
		}
		for _, v := range fs[f].values {
			m[v] += 0
		}
		res.Facets[facetNames[f]] = m
	}
	res.Histogram = Histogram{Step: step / 1000, T: make([]int64, q.Slices), Types: map[string][]int{}}
	for i := range res.Histogram.T {
		res.Histogram.T[i] = (from + int64(i)*step) / 1000
	}
	for typ, d := range hist {
		out := make([]int, q.Slices)
		run := int32(0)
		for i := range out {
			run += d[i]
			out[i] = int(run)
		}
		res.Histogram.Types[x.dicts[facetType].names[typ]] = out
	}
	x.sort(matched, q.Sort)
	page := matched[min(q.Offset, len(matched)):min(q.Offset+q.Limit, len(matched))]
	res.Alerts = make([]Hit, len(page))
	for i, pos := range page {
		res.Alerts[i] = x.hit(&x.entries[pos], now)
	}
	return res
}

// sort orders the positions of matched as by names; the caller holds
// x.mu (read).
func (x *Index) sort(matched []int32, by string) {
	es := x.entries
	byLatest := func(a, b int32) int {
		return cmp.Or(cmp.Compare(es[b].latest, es[a].latest), cmp.Compare(es[b].id, es[a].id))
	}
	switch by {
	case "earliest":
		slices.SortFunc(matched, func(a, b int32) int {
			return cmp.Or(cmp.Compare(es[b].earliest, es[a].earliest), cmp.Compare(es[b].id, es[a].id))
		})
	case "severity":
		slices.SortFunc(matched, func(a, b int32) int {
			return cmp.Or(cmp.Compare(es[b].severity, es[a].severity), byLatest(a, b))
		})
	default:
		slices.SortFunc(matched, byLatest)
	}
}

// hit is the result row of e; the caller holds x.mu (read).
func (x *Index) hit(e *entry, now int64) Hit {
	end := e.ended
	if end == 0 {
		end = now
	}
	h := Hit{
		ID: e.id, Type: x.dicts[facetType].names[e.val[facetType]], CID: e.cid, CIDName: e.cidName,
		Severity: int(e.severity), Earliest: time.UnixMilli(e.earliest).UTC(), Latest: time.UnixMilli(e.latest).UTC(),
		Ended: e.ended != 0, DurationSeconds: float64(end-e.earliest) / 1000,
		Object: e.object, Reason: e.reason, Sources: e.sources,
		Policy: PolicyRef{ID: e.policy}, ActionStatus: Statuses[e.status],
		Tags: make([]string, len(e.tags)), Notes: int(e.notes),
	}
	for i, id := range e.tags {
		h.Tags[i] = x.dicts[facetNote].names[id]
	}
	return h
}
