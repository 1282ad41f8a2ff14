// Package ddos is the DDoS detector: the packet-flood family ddos_flood
// with its subtypes, each also a family of its own (ddos_synflood,
// ddos_rstflood, ddos_xmas, ddos_tcpnull, ddos_tcpzero, ddos_ipnull,
// ddos_frag, ddos_poison, ddos_spectrum), and the reflection family
// ddos_amp. Policies target traffic groups (object type TGRP); each address
// of a group is a target of its own, with one alert per target address
// (never one per group), keyed by the family (ddos_flood) or the subtype
// and the address.
//
// # Families and parameters
//
//   - ddos_flood (threshold: packets/s): the inbound packets to one
//     address over the trailing second exceed threshold. The alert is
//     characterised (ALERT_TYPE) by the kind holding at least half of the
//     attack packets: ddos_synflood (SYN without ACK, ECE/CWR allowed),
//     ddos_rstflood (RST without SYN and without PSH), ddos_xmas
//     (FIN+PSH+URG), ddos_tcpnull (no flag), ddos_tcpzero (TCP port 0),
//     ddos_ipnull (IP protocol 0), ddos_frag (IP fragments), ddos_poison
//     (without ACK: SYN+FIN, SYN+RST, FIN, PSH or URG; and LAND, source =
//     destination); else ddos_spectrum when the packets other than
//     established TCP reach 100 or more destination ports in a second;
//     else plain ddos_flood. Flags are the OR over a flow's packets, so a
//     normal connection always shows ACK: invalid combinations are only
//     called so without it. The type is kept for the life of the alert.
//   - ddos_synflood … ddos_poison (threshold): the packets of that kind
//     alone exceed threshold. ddos_spectrum (threshold): the flood's
//     packets exceed threshold while spread over 100+ ports.
//   - ddos_amp (threshold, port): inbound UDP packets from the reflector
//     source port given (one of target.Reflectors; 0 = all reflector
//     ports together) exceed threshold. PORT is the reflector port (the
//     heaviest with port 0), PROTO 17. Non-first fragments of UDP (no
//     ports) reaching a target that gets reflector traffic count with
//     its heaviest reflector port: they are the rest of its large
//     replies. It fires only once 4 or more remote /24 (/64) blocks sent
//     to the target: a reflection comes from many reflectors (the
//     shared captures hold 200 to 5,700 blocks), one busy peer is a
//     session or a plain flood. Give several policies for several
//     per-port thresholds.
//
// # One attack, one alert
//
// On one target, at each evaluation:
//
//   - When a ddos_amp policy fires and reflector traffic is at least
//     half of the target's inbound packets, the ddos_flood and
//     ddos_spectrum policies of a plain or spectrum flood stay silent:
//     the amplification speaks for the flood (and for the random
//     destination ports reflected replies reach).
//   - The flood families (ddos_flood and its subtypes) speak with one
//     type: that of the flood alert the target already holds (its
//     condition held at the last tick), else the characterised type
//     when a policy firing has it, else the firing subtype with the
//     highest rate of its kind. A policy firing with another type does
//     not open an alert: it is another vector of the same attack (a
//     SYN-ACK reflection is RST and ICMP backscatter over 100+ ports:
//     ddos_spectrum, not also ddos_rstflood). An alert already open
//     stays observed while its condition holds; once it ends, the next
//     attack may have another type.
//   - When a subtype's own policy is observed on a target, a ddos_flood
//     policy of the same type stays silent. A subtype policy does not
//     open an alert of the type a ddos_flood alert of the target already
//     holds with a threshold at or above its own (it would say the
//     same); with a higher threshold it escalates with an alert of its
//     own.
//
// Several policies of the chosen family each alert (e.g. a warning and a
// critical threshold). Policies of several groups holding the address are
// merged; a policy (a template applying to both) alerts once.
//
// # Sessions are not floods
//
// Established TCP (ACK set, not a RST or invalid combination) counts
// toward ddos_flood only once 32 or more remote /24 (/64) blocks sent to
// the target: a download or an internal copy over a few long sessions is
// not a flood, an ACK/PSH flood from a botnet or spoofed sources is.
//
// Two-way UDP is a session too: UDP from a remote address and port the
// target sent UDP to within the last 10 s (a QUIC download, an IPsec
// NAT-T tunnel on 4500, a game or VoIP call) counts toward ddos_flood,
// ddos_spectrum and ddos_amp only from the same 32 remote blocks on. A
// spoofed flood or a reflection gets no answers (and comes from many
// blocks anyway). A hot target tracks the 8 heaviest such (address,
// port) pairs with their packets of the last second, so a pair counts as
// a session whether the answer is seen before or after the data it
// answers in the window; a target talking UDP with more peers than that
// counts the rest as one-way. The target's answers are seen from its
// outbound records, so a shard must receive both directions (it does:
// model.OwnSrc of the target reaches the shard of its model.OwnDst).
//
// Remote addresses on the allow-list of any policy in force on the
// target's groups, or of its partition, never count for that target.
//
// # Window and latency
//
// Every target address has a ring of ten 100 ms buckets of inbound
// packets; a record lands in the bucket of the shard's latest Poll or
// Tick (serve polls every 100 ms; replay ticks each capture second) and
// counts Packets × min(1, 1 s/(End-Start)), so a long NetFlow record adds
// its average rate rather than a burst (the packet meter's interim
// reports, Continued, hold at most a second of packets and count whole).
// At each Poll the ten buckets before the current one — the last second
// — are compared with the thresholds, and a new alert is observed and
// committed at once, so the plugins hear of it before the next tick. At
// each Tick every alert whose condition holds is observed again (the
// engine UPDATEs it, and ends it 10 minutes after the attack stopped).
//
// A flood at a constant m × threshold fills the window past the threshold
// after 1/m s: plus up to 100 ms of bucket and 100 ms of poll, the CREATE
// leaves about 0.7-0.9 s after the first packet at 1.5×, 0.25-0.45 s at
// 4× and 0.05-0.25 s at 20× (exporter delay not counted). A burst fires
// only if it holds more than threshold packets within one second: a
// 200 ms burst at 4× threshold is 0.8 × threshold packets and stays
// silent, which is what keeps short spikes (a page load, a backup start)
// from alerting.
//
// # Memory
//
// A target address costs a 72-byte light state plus its map entry, about
// 110-140 bytes (measured by TestMemoryPerTarget), and is forgotten after
// 10 s without a packet. A target reaching 1/8 of its lowest threshold
// becomes hot (at most 4096 per shard, about 4.1 KiB each, Sources
// included): only hot targets are counted by kind, reflector port,
// destination port, remote source (target.Sources) and UDP peer (8 × 72
// bytes), and they go back
// to light after 10 s below 1/16 without an alert. Since the kinds are
// counted from promotion on, a subtype's rate misses at most 1/8 of the
// lowest threshold's packets of its first second. A model reload keeps
// all state (a target's groups are refreshed by its next record).
//
// # Routing
//
// A target's state is kept by the shard owning its address (records with
// model.OwnDst and the destination in a traffic group); a hot target's
// outbound packets and bytes, and the UDP peers it answers, are counted
// from the records it sends (model.OwnSrc), which reach the same shard.
package ddos

import (
	"github.com/flowsentry/flowsentry/detect"
	"github.com/flowsentry/flowsentry/policy"
)

// The families of this package.
const (
	Flood    policy.Family = "ddos_flood"
	SynFlood policy.Family = "ddos_synflood"
	RstFlood policy.Family = "ddos_rstflood"
	Xmas     policy.Family = "ddos_xmas"
	TCPNull  policy.Family = "ddos_tcpnull"
	TCPZero  policy.Family = "ddos_tcpzero"
	IPNull   policy.Family = "ddos_ipnull"
	Frag     policy.Family = "ddos_frag"
	Poison   policy.Family = "ddos_poison"
	Spectrum policy.Family = "ddos_spectrum"
	Amp      policy.Family = "ddos_amp"
)

// families are every family of the package, in evaluation order.
var families = [...]policy.Family{Flood, SynFlood, RstFlood, Xmas, TCPNull, TCPZero, IPNull, Frag, Poison, Spectrum, Amp}

func familyIndex(f policy.Family) int {
	for i, x := range families {
		if x == f {
			return i
		}
	}
	return 0
}

// kindOf returns the kind of a subtype family.
func kindOf(f policy.Family) kind {
	for k, x := range subtypes {
		if x == f && x != "" {
			return kind(k)
		}
	}
	return kindOther
}

func init() {
	for _, f := range families {
		spec := policy.Spec{Name: f, Objects: []string{policy.ObjectGroup},
			NewParams: func() policy.Params { return &Params{} }}
		if f == Amp {
			spec.NewParams = func() policy.Params { return &AmpParams{} }
		}
		fam := detect.Family{Policy: spec}
		if f == Flood {
			// One stage per shard evaluates the policies of every family
			// of the package over one state per target.
			fam.NewShard = func(d detect.Deps) (detect.ShardStage, error) { return newStage(d), nil }
		}
		detect.Register(fam)
	}
}
