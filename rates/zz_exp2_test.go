package rates

import "testing"

func BenchmarkAddSmall(b *testing.B) {
	e, _ := newTestEngine(b, DefaultConfig())
	e.Tick(at(100))
	recs := benchRecords(1 << 16)[:1<<9]
	for i := range recs {
		e.Add(&recs[i])
	}
	i := 0
	for b.Loop() {
		e.Add(&recs[i&(len(recs)-1)])
		i++
	}
}
