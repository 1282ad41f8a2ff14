package model

import "slices"

// BindingProblem is why a user's partitions and traffic groups do not fit
// the model (CheckBinding).
type BindingProblem int

// The problems CheckBinding finds.
const (
	// BindingOK: every partition and traffic group exists, and every
	// group is in one of the partitions.
	BindingOK BindingProblem = iota
	// UnknownPartition: a partition does not exist.
	UnknownPartition
	// UnknownGroup: a traffic group does not exist.
	UnknownGroup
	// GroupOutsidePartitions: a traffic group is in a partition that is
	// not among the user's.
	GroupOutsidePartitions
)

// CheckBinding checks that the partitions cids exist, and the traffic
// groups groups too, each in one of cids unless anyPartition (an admin
// sees every partition). It returns the first problem found, the ID at
// fault (a partition's or a group's) and, for GroupOutsidePartitions, the
// group's partition.
func (m *Model) CheckBinding(cids, groups []uint32, anyPartition bool) (p BindingProblem, id, groupCID uint32) {
	for _, cid := range cids {
		if !slices.ContainsFunc(m.Partitions, func(p Partition) bool { return p.CID == cid }) {
			return UnknownPartition, cid, 0
		}
	}
	for _, id := range groups {
		i := slices.IndexFunc(m.Groups, func(g TrafficGroup) bool { return g.ID == id })
		if i < 0 {
			return UnknownGroup, id, 0
		}
		if !anyPartition && !slices.Contains(cids, m.Groups[i].CID) {
			return GroupOutsidePartitions, id, m.Groups[i].CID
		}
	}
	return BindingOK, 0, 0
}
