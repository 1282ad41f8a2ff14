package ddos

import (
	"slices"

	"github.com/flowsentry/flowsentry/detect/target"
	"github.com/flowsentry/flowsentry/flow"
	"github.com/flowsentry/flowsentry/policy"
)

// kind is what a record's packets look like, for the subtypes.
type kind uint8

const (
	kindOther   kind = iota // UDP, ICMP, other protocols
	kindEst                 // TCP with ACK: established traffic, SYN-ACKs
	kindSyn                 // SYN without ACK
	kindRst                 // RST without SYN and without data (PSH)
	kindXmas                // FIN+PSH+URG
	kindTCPNull             // no flag at all
	kindTCPZero             // TCP port 0
	kindIPNull              // IP protocol 0
	kindFrag                // IP fragments
	kindPoison              // invalid flags without ACK (SYN+FIN, SYN+RST, FIN, PSH or URG alone), LAND
	nKinds
)

// subtypes are the families of the kinds that characterise an attack.
var subtypes = [nKinds]policy.Family{
	kindSyn: SynFlood, kindRst: RstFlood, kindXmas: Xmas, kindTCPNull: TCPNull,
	kindTCPZero: TCPZero, kindIPNull: IPNull, kindFrag: Frag, kindPoison: Poison,
}

// classify returns the kind of record r. The flags are the OR of the
// flow's packets, so a normal connection (SYN, then ACKs, then FIN or
// RST) always has ACK: every rule that calls a flag combination invalid
// requires ACK to be absent.
func classify(r *flow.Record) kind {
	if r.Src == r.Dst {
		return kindPoison // LAND
	}
	if r.Fragment {
		return kindFrag
	}
	switch r.Proto {
	case 0:
		return kindIPNull
	case flow.ProtoTCP:
	default:
		return kindOther
	}
	if r.SrcPort == 0 || r.DstPort == 0 {
		return kindTCPZero
	}
	f := r.TCPFlags
	const fpu = flow.TCPFin | flow.TCPPsh | flow.TCPUrg
	switch {
	case f&^(flow.TCPEce|flow.TCPCwr) == 0:
		return kindTCPNull
	case f&fpu == fpu:
		return kindXmas
	case f&flow.TCPAck == 0:
		switch {
		case f&flow.TCPSyn != 0 && f&(flow.TCPFin|flow.TCPRst) != 0:
			return kindPoison
		case f&flow.TCPSyn != 0:
			return kindSyn
		case f&(flow.TCPFin|flow.TCPPsh|flow.TCPUrg) != 0:
			return kindPoison
		}
		return kindRst
	case f&flow.TCPRst != 0 && f&(flow.TCPSyn|flow.TCPPsh) == 0:
		return kindRst
	}
	return kindEst
}

// reflectorPorts are the ports of target.Reflectors in order; reflIndex
// maps a port to its index + 1 (0: not a reflector).
var (
	reflectorPorts []uint16
	reflIndex      [65536]uint8
)

func init() {
	for p := range target.Reflectors {
		reflectorPorts = append(reflectorPorts, p)
	}
	slices.Sort(reflectorPorts)
	for i, p := range reflectorPorts {
		reflIndex[p] = uint8(i + 1)
	}
}

// maxReflectors bounds the rings a hot target keeps for ddos_amp.
const maxReflectors = 24
