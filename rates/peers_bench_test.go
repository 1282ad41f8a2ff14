package rates

import (
	"testing"

	"github.com/flowsentry/flowsentry/flow"
	"github.com/flowsentry/flowsentry/gen"
	"github.com/flowsentry/flowsentry/model"
)

// BenchmarkAddPeers measures AddClass under the load of bench/peers.sh:
// flowgen's NetFlow v9 records (100 internal hosts to 1,000 remote
// addresses, ports 80, 443, 53, 123 and 22, 4 interfaces, flows of up to
// 30 s, so nearly every record is spread over several seconds) on the
// default model, with a tick every 65,536 records (a second of virtual
// time).
//
//	go test -run '^$' -bench AddPeers -benchmem -count=6 -cpu 1 ./rates | benchstat -
func BenchmarkAddPeers(b *testing.B) {
	g, err := gen.New(gen.Config{Protocol: gen.NetFlowV9, SrcAddrs: 100, DstAddrs: 1000, Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	m, err := model.Build(model.DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	now := at(100)
	const n = 1 << 16
	recs := make([]flow.Record, 0, n)
	for len(recs) < n {
		g.Append(nil, now)
		recs = append(recs, g.Records()...)
	}
	recs = recs[:n]
	classes := make([]model.Class, n)
	for i := range recs {
		m.Classify(&recs[i], &classes[i])
	}
	e, _ := newTestEngine(b, DefaultConfig())
	e.SetModel(m)
	e.Tick(now)
	for i := range recs {
		e.AddClass(&recs[i], &classes[i])
	}
	var r flow.Record
	shift := int64(0)
	i := 0
	for b.Loop() {
		j := i & (n - 1)
		if j == 0 && i > 0 {
			shift += nsPerSec
			e.Tick(now + shift)
		}
		r = recs[j]
		r.Start += shift
		r.End += shift
		e.AddClass(&r, &classes[j])
		i++
	}
	b.ReportMetric(float64(liveObjects(e)), "objects")
}
