// Package target holds what every DDoS family reports about one attacked
// address: the remote blocks sending to it (their number, estimated in
// bounded memory, and the top ones by packets) and the alert fields of
// the plugin contract (TARGET_IP, TARGET_MASK, TARGET_TG, TARGET_TG_NAME,
// PROTO, PORT, THRESHOLD_VALUE, TOTAL_SOURCES, SOURCES), in the order and
// with the JSON names of the manual's ddos_slow example.
package target

import (
	"net/netip"
	"strconv"

	"github.com/axiomhq/hyperloglog"

	"github.com/flowsentry/flowsentry/alert"
	"github.com/flowsentry/flowsentry/model"
)

// TopSources is how many remote blocks SOURCES lists at most.
const TopSources = 10

// slots is how many blocks the top-sources summary keeps: more than it
// lists, so that the listed ones are exact in all but adversarial cases.
const slots = 32

// hllPrecision gives 2^10 one-byte registers (1 KiB) and a relative
// standard error of 1.04/sqrt(1024) = 3.3 %, whatever the number of
// sources (millions of spoofed ones included).
const hllPrecision = 10

// Sources counts the remote blocks (/24 for IPv4, /64 for IPv6) that send
// to one target: an estimate of how many distinct blocks (HyperLogLog),
// and the heaviest blocks by packets (the Space-Saving summary of Metwally
// et al.: a block not held replaces the lightest one and inherits its
// count as an overestimate). Its memory is fixed, about 2 KiB; Add never
// allocates. A Sources is used by one goroutine.
type Sources struct {
	hll  *hyperloglog.Sketch
	top  [slots]entry
	n    int
	buf  [16]byte
	seen uint64 // packets added
}

type entry struct {
	block netip.Prefix
	pkts  uint64
}

// NewSources returns an empty counter.
func NewSources() *Sources {
	sk, _ := hyperloglog.NewSketch(hllPrecision, false) // a valid precision never fails
	return &Sources{hll: sk}
}

// Block returns the remote block of addr: its /24, or /64 for IPv6.
func Block(addr netip.Addr) netip.Prefix {
	addr = addr.Unmap()
	bits := 64
	if addr.Is4() {
		bits = 24
	}
	p, _ := addr.Prefix(bits)
	return p
}

// Add counts pkts packets from remote address src.
func (s *Sources) Add(src netip.Addr, pkts uint64) {
	b := Block(src)
	a := b.Addr().As16()
	copy(s.buf[:], a[:])
	s.hll.Insert(s.buf[:])
	s.seen += pkts
	low := 0
	for i := range s.n {
		e := &s.top[i]
		if e.block == b {
			e.pkts += pkts
			return
		}
		if e.pkts < s.top[low].pkts {
			low = i
		}
	}
	if s.n < slots {
		s.top[s.n] = entry{b, pkts}
		s.n++
		return
	}
	s.top[low] = entry{b, s.top[low].pkts + pkts}
}

// Total estimates the number of distinct remote blocks added.
func (s *Sources) Total() uint64 {
	if s.seen == 0 {
		return 0
	}
	return max(1, s.hll.Estimate())
}

// Top appends the heaviest blocks, at most TopSources, heaviest first, as
// CIDR strings.
func (s *Sources) Top(dst []string) []string {
	var idx [slots]int
	k := s.n
	for i := range k {
		idx[i] = i
	}
	// Selection of the TopSources heaviest; ties by block for a stable
	// order.
	for i := 0; i < k && i < TopSources; i++ {
		best := i
		for j := i + 1; j < k; j++ {
			a, b := &s.top[idx[j]], &s.top[idx[best]]
			if a.pkts > b.pkts || (a.pkts == b.pkts && a.block.Addr().Less(b.block.Addr())) {
				best = j
			}
		}
		idx[i], idx[best] = idx[best], idx[i]
		dst = append(dst, s.top[idx[i]].block.String())
	}
	return dst
}

// Reset empties the counter for reuse.
func (s *Sources) Reset() {
	s.hll.Reset()
	s.n, s.seen = 0, 0
}

// Attack describes one attacked address for its alert fields.
type Attack struct {
	// IP is the target address.
	IP netip.Addr
	// Group is the traffic group holding it.
	Group *model.TrafficGroup
	// Proto and Port are the attack traffic's protocol and the port
	// attacked (for ddos_amp, the reflectors' source port); 0 when mixed.
	Proto uint8
	Port  uint16
	// Threshold is the trigger point crossed (THRESHOLD_VALUE).
	Threshold float64
	// Sources are the remote blocks seen; nil reports none.
	Sources *Sources
}

// Fields appends the fields every DDoS alert carries, in the order and
// under the JSON names of the manual's ddos_slow example: target_ip,
// target_mask, target_tg, proto, server_port (PORT in the environment),
// sources, total_sources, threshold_value; TARGET_TG_NAME is in the
// environment only.
func (a *Attack) Fields(dst []alert.Field) []alert.Field {
	num := func(name string, v uint64) alert.Field {
		return alert.Field{Name: name, Value: strconv.FormatUint(v, 10), Number: true}
	}
	ip := a.IP.Unmap()
	var tg uint64
	name := ""
	if a.Group != nil {
		tg, name = uint64(a.Group.ID), a.Group.Name
	}
	dst = append(dst,
		alert.Field{Name: "TARGET_IP", Value: ip.String()},
		num("TARGET_MASK", uint64(Mask(a.Group, ip))),
		num("TARGET_TG", tg),
		alert.Field{Name: "TARGET_TG_NAME", Value: name, JSON: "-"},
		num("PROTO", uint64(a.Proto)),
		alert.Field{Name: "PORT", JSON: "server_port", Value: strconv.FormatUint(uint64(a.Port), 10), Number: true},
	)
	var top []string
	var total uint64
	if a.Sources != nil {
		top, total = a.Sources.Top(make([]string, 0, TopSources)), a.Sources.Total()
	}
	return append(dst,
		alert.Field{Name: "SOURCES", List: top, IsList: true},
		num("TOTAL_SOURCES", total),
		alert.Field{Name: "THRESHOLD_VALUE", Value: strconv.FormatFloat(a.Threshold, 'f', 2, 64), Number: true},
	)
}

// Mask returns the prefix length of the most specific CIDR of group g
// holding addr (TARGET_MASK); 0 when none does.
func Mask(g *model.TrafficGroup, addr netip.Addr) int {
	best := 0
	if g == nil {
		return 0
	}
	addr = addr.Unmap()
	for _, p := range g.CIDRs {
		if p.Contains(addr) && p.Bits() > best {
			best = p.Bits()
		}
	}
	return best
}

// Key is the alert key of target addr of a policy's alert type: one alert
// per (alert type, address).
func Key(alertType string, addr netip.Addr) string {
	return alertType + "/" + addr.Unmap().String()
}
