package store

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/flowsentry/flowsentry/action"
	"github.com/flowsentry/flowsentry/alert"
	"github.com/flowsentry/flowsentry/annotate"
)

// benchAlert is an alert as the engine saves it at an UPDATE.
func benchAlert(id uint64) alert.Alert {
	return alert.Alert{
		ID: id, Policy: 3, Key: "TGRP+PROTO+PORT/1/6/80", Type: "threshold_exceeded",
		CID: 1, CIDName: "default", Severity: 5,
		Fields: []alert.Field{
			{Name: "OBJECT_TYPE", Value: "TGRP+PROTO+PORT"},
			{Name: "THRESHOLD_TYPE", Value: "packets_in"},
			{Name: "TGRP", Value: "1", Number: true},
			{Name: "TGRP_NAME", Value: "web servers"},
			{Name: "PROTO", Value: "6", Number: true},
			{Name: "PORT", Value: "80", Number: true},
		},
		Earliest: t0, Latest: t0.Add(time.Minute), LastCall: t0.Add(time.Minute),
		Cur:     alert.Values{PacketsIn: 4361.75, PacketsOut: 12, BytesIn: 5.2e6, BytesOut: 1e4, NewConn: 30},
		Avg:     alert.Values{PacketsIn: 4000.25, PacketsOut: 11, BytesIn: 5e6, BytesOut: 9e3, NewConn: 28},
		Peak:    alert.Values{PacketsIn: 5000, PacketsOut: 20, BytesIn: 6e6, BytesOut: 2e4, NewConn: 40},
		Samples: 60,
	}
}

// BenchmarkSaveAlert measures one durable SaveAlert: a new alert (insert)
// or an existing one (update, the engine's common case).
//
//	go test -run '^$' -bench 'SaveAlert|AddValues' -benchmem -count=6 -cpu 1,2 ./store > new.txt
//	benchstat old.txt new.txt
func BenchmarkSaveAlert(b *testing.B) {
	ctx := context.Background()
	for _, bc := range []struct {
		name string
		next func(i uint64) uint64 // the ID of the i-th save
	}{
		{"insert", func(i uint64) uint64 { return i + 1 }},
		{"update", func(uint64) uint64 { return 1 }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s := openTest(b, "")
			a := benchAlert(1)
			var i uint64
			for b.Loop() {
				a.ID = bc.next(i)
				i++
				if err := s.SaveAlert(ctx, &a); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSaveAlerts measures the alert engine's commit of one tick that
// opens 10,000 alerts: one transaction, IDs from the sequence inside it.
// Report ns/op ÷ 10,000 as the cost per alert.
//
//	go test -run '^$' -bench 'SaveAlerts' -benchmem -count=6 -cpu 1 ./store
func BenchmarkSaveAlerts(b *testing.B) {
	ctx := context.Background()
	s := openTest(b, "")
	list := make([]*alert.Alert, 10000)
	for b.Loop() {
		for i := range list {
			a := benchAlert(0)
			list[i] = &a
		}
		if err := s.SaveAlerts(ctx, list); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAddValues measures storing the annotation values of one
// `ftnbi -val` request of 10 keys (one transaction); see BenchmarkSaveAlert
// for the recipe.
func BenchmarkAddValues(b *testing.B) {
	ctx := context.Background()
	s := openTest(b, "")
	a := benchAlert(1)
	if err := s.SaveAlert(ctx, &a); err != nil {
		b.Fatal(err)
	}
	if err := s.SaveAction(ctx, &action.Action{ID: 1, Alert: 1, State: action.StateInProgress}); err != nil {
		b.Fatal(err)
	}
	vals := make([]annotate.Value, 10)
	for i := range vals {
		vals[i] = annotate.Value{Alert: 1, Action: 1, Key: "key" + strconv.Itoa(i), Value: uint64(i + 1), Time: t0}
	}
	for b.Loop() {
		if err := s.AddValues(ctx, vals); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(vals)), "ns/value")
}
