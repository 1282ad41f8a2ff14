package alert

import (
	"strconv"
	"testing"
	"time"
)

// BenchmarkObserveTick measures an evaluation tick of 10,000 persisting
// conditions: 10,000 Observe calls and a Tick, one second apart, so that
// every 60th tick saves and sends 10,000 UPDATEs (to an in-memory store
// and a sink that drops them).
//
//	go test -run '^$' -bench ObserveTick -benchmem -count=6 -cpu 1,2 ./alert/ | benchstat -
func BenchmarkObserveTick(b *testing.B) {
	const n = 10000
	e, err := New(DefaultConfig(), newMemStore(), SinkFunc(func(Event) {}), quietLog())
	if err != nil {
		b.Fatal(err)
	}
	conds := make([]Condition, n)
	for i := range conds {
		conds[i] = tgrpCondition(float64(1000 + i))
		conds[i].Key = "TGRP+PROTO+PORT/1/6/" + strconv.Itoa(i)
	}
	now := t0
	tick := func() {
		for i := range conds {
			e.Observe(now, conds[i])
		}
		e.Tick(now)
		now = now.Add(time.Second)
	}
	tick() // the CREATEs
	for b.Loop() {
		tick()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/condition")
}
