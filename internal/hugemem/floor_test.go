package hugemem

import (
	"math/bits"
	"testing"
	"unsafe"

	"github.com/flowsentry/flowsentry/internal/prefetch"
)

// bucket is a cache line of four 16-byte slots, the shape of the
// detectors' session tables.
type bucket [4]struct{ key, n uint64 }

// BenchmarkRandomUpdate measures the floor of one detector table
// operation on this machine: adding to the slot of a random key in a
// table of 32 MiB (exfil's at a million sessions), keys hashed ahead in
// batches of 512 as the pipeline hands them, the bucket asked for ahead
// records before it is read (two buckets, as exfil's two choices, in
// huge/two-lines). Every family that keeps one entry per session pays at
// least this per record under a load of new sessions:
//
//	go test -run '^$' -bench RandomUpdate -cpu 1 ./internal/hugemem
func BenchmarkRandomUpdate(b *testing.B) {
	for _, c := range []struct {
		name  string
		table func() []bucket
		ahead int
		lines int // buckets read per key: exfil's two choices read two
	}{
		{"huge", hugeBuckets, 8, 1},
		{"huge/no-prefetch", hugeBuckets, 0, 1},
		{"huge/two-lines", hugeBuckets, 8, 2},
		{"heap", func() []bucket { return make([]bucket, tableBytes/64) }, 8, 1},
	} {
		b.Run(c.name, func(b *testing.B) {
			t := c.table()
			for i := range t { // touch every page before timing
				t[i][0].key = uint64(i)
			}
			keys := make([]uint64, 512)
			x := uint64(0x9e3779b97f4a7c15)
			b.ResetTimer()
			for done := 0; done < b.N; done += len(keys) {
				for i := range keys { // xorshift: new random keys
					x ^= x << 13
					x ^= x >> 7
					x ^= x << 17
					keys[i] = x
				}
				for i, k := range keys {
					if c.ahead > 0 && i+c.ahead < len(keys) {
						a := keys[i+c.ahead]
						p, q := unsafe.Pointer(&t[slot(a, len(t))]), unsafe.Pointer(&t[slot(a>>32|a<<32, len(t))])
						if c.lines == 1 {
							q = p
						}
						prefetch.Lines(p, q)
					}
					bk := &t[slot(k, len(t))]
					if c.lines == 2 && bk[0].key != k {
						bk = &t[slot(k>>32|k<<32, len(t))]
					}
					j := int(k & 3)
					if bk[j].key != k {
						bk[j].key = k
					}
					bk[j].n++
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/update")
		})
	}
}

// slot maps key k onto n buckets.
func slot(k uint64, n int) int {
	hi, _ := bits.Mul64(k, uint64(n))
	return int(hi)
}

// tableBytes is the size of the table: exfil's at a million sessions.
const tableBytes = 32 << 20

// hugeBuckets returns tableBytes of buckets on huge pages.
func hugeBuckets() []bucket {
	return Make[bucket](tableBytes / 64).S
}
