package alertindex

import (
	"slices"
	"strconv"
)

// The facets: the filters whose values are counted. Severity, type,
// partition, blacklist and note values are interned in the index's
// dictionaries; status and duration have fixed values.
const (
	facetSeverity = iota
	facetStatus
	facetType
	facetBlacklist
	facetDuration
	facetNote
	facetCID
	numFacets
)

// facetNames are the facets' names in the query and the answer.
var facetNames = [numFacets]string{"severity", "status", "type", "blacklist", "duration", "note", "cid"}

// The action statuses of an alert, in the order of Statuses.
const (
	statusWaiting uint8 = iota
	statusRunning
	statusEnded
	statusNone
)

// Statuses are the values of the status filter: an action waits for
// approval, one is in progress, all ended, or the alert has none.
var Statuses = []string{"waiting", "running", "ended", "none"}

// Durations are the values of the duration filter, in the order of their
// buckets: up to 1 s, under a minute, an hour, a day, and longer.
var Durations = []string{"instant", "seconds", "minutes", "hours", "days"}

// NoteNone is the note filter value of alerts without notes.
const NoteNone = "none"

// Sorts are the orders of the results: the latest seen first, the latest
// started first, the highest severity first (then the latest seen).
var Sorts = []string{"latest", "earliest", "severity"}

// entry is an alert as the index holds it.
type entry struct {
	id, policy uint64
	// earliest, latest and ended (0 while open) are Unix milliseconds.
	earliest, latest, ended int64
	cid                     uint32
	group                   uint32 // alert.Alert.Group
	severity                int32
	// val holds the dictionary IDs of the single-valued facets.
	val        [numFacets]uint32
	status     uint8
	notes      int32
	blacklists []uint32 // facetBlacklist dictionary IDs
	tags       []uint32 // facetNote dictionary IDs
	cidName    string
	// object, reason and sources are shown; search is the lower-cased
	// text q is looked for in.
	object, reason, sources, search string
}

// dict interns the values of a facet.
type dict struct {
	ids   map[string]uint32
	names []string
}

func newDict() dict { return dict{ids: map[string]uint32{}} }

// id returns the ID of s, adding it when new.
func (d *dict) id(s string) uint32 {
	if id, ok := d.ids[s]; ok {
		return id
	}
	id := uint32(len(d.names))
	d.ids[s] = id
	d.names = append(d.names, s)
	return id
}

func containsID(list []uint32, id uint32) bool { return slices.Contains(list, id) }

func itoa(n int) string    { return strconv.Itoa(n) }
func utoa(n uint32) string { return strconv.FormatUint(uint64(n), 10) }
