package history

import (
	"time"

	"github.com/flowsentry/flowsentry/rates"
)

// NumCounters is the number of counters recorded per series.
const NumCounters = 6

// Counters are the names of the recorded counters, as the API takes them;
// Counters[i] is the rate of rates.Counter(i) (rates.PacketsIn to
// rates.NewConnOut), per second.
var Counters = [NumCounters]string{"packets_in", "packets_out", "bytes_in", "bytes_out", "new_conn", "new_conn_out"}

// Values holds one per-second rate per counter, in the order of Counters.
type Values [NumCounters]float32

// Entry is one series' minute: the average and the peak over the minute's
// ticks of each counter's current rate (rates.Object.Cur).
type Entry struct {
	// Key names the series: its Kind, and the fields of that kind (IP is
	// always the zero address).
	Key rates.Key
	// Avg and Peak are the average and the highest current rate.
	Avg, Peak Values
}

// Batch is one minute of every series seen in it, written at once.
type Batch struct {
	// Time is the start of the minute (UTC, a whole minute).
	Time time.Time
	// Entries are the series' values, each key once.
	Entries []Entry
}

// Point is one step of a series read back: a minute as recorded, or a
// bucket of minutes once downsampled.
type Point struct {
	// Time is the start of the step.
	Time time.Time
	// Avg is the average of the minutes' averages; Peak the highest peak.
	Avg, Peak Values
}

// Steps are the steps Downsample chooses from, shortest first.
var Steps = []time.Duration{time.Minute, 5 * time.Minute, 15 * time.Minute, time.Hour, 6 * time.Hour, 24 * time.Hour}

// StepFor returns the shortest of Steps that covers [from, to) in at most
// maxPoints steps (the longest when none does).
func StepFor(from, to time.Time, maxPoints int) time.Duration {
	span := to.Sub(from)
	for _, s := range Steps {
		if span <= s*time.Duration(maxPoints) {
			return s
		}
	}
	return Steps[len(Steps)-1]
}

// Downsample merges points, sorted by time, into buckets of step aligned
// on multiples of step since the Unix epoch: each bucket's Avg is the mean
// of its points' averages (so minutes without a record do not count as
// zero) and its Peak the highest peak. A step of a minute or less returns
// points unchanged.
func Downsample(points []Point, step time.Duration) []Point {
	if step <= time.Minute || len(points) == 0 {
		return points
	}
	var (
		out []Point
		sum [NumCounters]float64
		n   int
	)
	flush := func() {
		last := &out[len(out)-1]
		for c := range sum {
			last.Avg[c] = float32(sum[c] / float64(n))
		}
		sum, n = [NumCounters]float64{}, 0
	}
	for _, p := range points {
		start := p.Time.Truncate(step)
		if len(out) == 0 || !out[len(out)-1].Time.Equal(start) {
			if n > 0 {
				flush()
			}
			out = append(out, Point{Time: start})
		}
		last := &out[len(out)-1]
		for c := range sum {
			sum[c] += float64(p.Avg[c])
			last.Peak[c] = max(last.Peak[c], p.Peak[c])
		}
		n++
	}
	flush()
	return out
}
