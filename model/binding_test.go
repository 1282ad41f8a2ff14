package model

import (
	"net/netip"
	"testing"
)

func TestCheckBinding(t *testing.T) {
	m := New([]Partition{{CID: 0, Name: "default"}, {CID: 5, Name: "lab"}}, []TrafficGroup{
		{ID: 1, Name: "office", CID: 0, CIDRs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/16")}},
		{ID: 7, Name: "racks", CID: 5, CIDRs: []netip.Prefix{netip.MustParsePrefix("10.5.0.0/16")}},
	}, nil)
	for _, tc := range []struct {
		name         string
		cids, groups []uint32
		any          bool
		want         BindingProblem
		id, cid      uint32
	}{
		{name: "nothing", want: BindingOK},
		{name: "partitions and their groups", cids: []uint32{0, 5}, groups: []uint32{1, 7}, want: BindingOK},
		{name: "unknown partition", cids: []uint32{0, 9}, want: UnknownPartition, id: 9},
		{name: "unknown group", cids: []uint32{0}, groups: []uint32{1, 3}, want: UnknownGroup, id: 3},
		{name: "group of another partition", cids: []uint32{0}, groups: []uint32{7}, want: GroupOutsidePartitions, id: 7, cid: 5},
		{name: "an admin's group of any partition", groups: []uint32{7}, any: true, want: BindingOK},
		{name: "an admin's unknown group", groups: []uint32{8}, any: true, want: UnknownGroup, id: 8},
	} {
		p, id, cid := m.CheckBinding(tc.cids, tc.groups, tc.any)
		if p != tc.want || id != tc.id || cid != tc.cid {
			t.Errorf("%s: got (%d, %d, %d), want (%d, %d, %d)", tc.name, p, id, cid, tc.want, tc.id, tc.cid)
		}
	}
}
