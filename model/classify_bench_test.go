package model

import (
	"net/netip"
	"testing"

	"github.com/flowsentry/flowsentry/flow"
)

// BenchmarkClassify classifies records as bench/peers.sh sends them
// (cmd/flowgen: 100 hosts of 10.0.0.0/16 to 1,000 addresses of
// 198.18.0.0/15) on the default model: one partition, one traffic group
// of the private blocks, which are also its INT blocks.
//
//	go test ./model -run '^$' -bench Classify -benchmem -count=6 -cpu 1 > new.txt
func BenchmarkClassify(b *testing.B) {
	m, err := Build(DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	recs := make([]flow.Record, 1024)
	for i := range recs {
		recs[i] = flow.Record{
			Src: netip.AddrFrom4([4]byte{10, 0, 0, byte(i % 100)}),
			Dst: netip.AddrFrom4([4]byte{198, 18, byte(i * 7 % 1000 >> 8), byte(i * 7 % 1000)}),
		}
		if i%2 == 1 { // the other direction
			recs[i].Src, recs[i].Dst = recs[i].Dst, recs[i].Src
		}
	}
	var c Class
	n := 0
	for b.Loop() {
		m.Classify(&recs[n&1023], &c)
		n++
	}
	if len(c.Src.Groups)+len(c.Dst.Groups) != 1 {
		b.Fatalf("classified %+v: want one side in the group", c)
	}
}
