package ddos

import (
	"github.com/prometheus/client_golang/prometheus"

	"encoding/binary"
	"math"
	"math/bits"
	"net/netip"
	"time"

	"github.com/flowsentry/flowsentry/alert"
	"github.com/flowsentry/flowsentry/detect"
	"github.com/flowsentry/flowsentry/detect/target"
	"github.com/flowsentry/flowsentry/flow"
	"github.com/flowsentry/flowsentry/model"
	"github.com/flowsentry/flowsentry/policy"
)

const (
	// bucketNS is the width of a rate bucket; buckets of them make the
	// one-second window.
	bucketNS = int64(100 * time.Millisecond)
	buckets  = 10
	// promoteFraction of a target's lowest threshold makes it hot: from
	// then on it is counted by kind, port and source.
	promoteFraction = 0.125
	// idleBuckets without a packet evict a target's light state.
	idleBuckets = 100
	// coolTicks below half the promotion level (and no alert holding)
	// release a hot target.
	coolTicks = 10
	// maxHot bounds the hot targets of a shard (about 4.1 KiB each).
	maxHot = 4096
	// maxLights bounds the targets a shard tracks (134 bytes each: 281
	// MB at most), so that a flood spread over a whole /8 (carpet
	// bombing) cannot exhaust memory; its records beyond the bound are
	// counted in flowsentry_detect_dropped_total.
	maxLights = 1 << 21
	// estMinSources is how many remote /24 (/64) blocks must send to a
	// target before its established TCP traffic (ACK set) counts toward
	// ddos_flood: a download or a copy over a few long sessions is not a
	// flood, an ACK flood from a botnet is.
	estMinSources = 32
	// replyBuckets is how long (10 s) a remote UDP address and port the
	// target sent UDP to stays a session peer: its inbound UDP then counts
	// toward ddos_flood and ddos_amp like established TCP, only from
	// estMinSources remote blocks on. A spoofed flood or a reflection
	// gets no replies; a QUIC download, a VPN tunnel or a game does.
	replyBuckets = 100
	// maxPairs bounds the remote UDP (address, port) pairs a hot target
	// tracks for the two-way rule (72 bytes each).
	maxPairs = 8
	// ampMinSources remote /24 (/64) blocks must have sent to a target
	// before ddos_amp fires on it: a reflection comes from many
	// reflectors, one or two busy peers are a session or a flood.
	ampMinSources = 4
	// spectrumPorts distinct destination ports in a second (of traffic
	// other than established TCP) make an attack ddos_spectrum.
	spectrumPorts = 100
	// dominant is the share of a target's attack packets a kind must have
	// to characterise the attack.
	dominant = 0.5
)

// addrKey is an address as a map key without pointers (the map is then
// not scanned by the garbage collector).
type addrKey struct{ hi, lo uint64 }

func keyOf(a netip.Addr) addrKey {
	b := a.Unmap().As16()
	return addrKey{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}
}

// ring is one counter over the last buckets buckets.
type ring [buckets]float32

// light is the state of every target address: its inbound packets over
// the last second, in 100 ms buckets (72 bytes).
type light struct {
	key  addrKey
	last int64 // bucket index of the newest bucket
	ring ring
	sum  float32 // of ring
	hot  int32   // index into Stage.hot, -1 for none
}

// advance moves l to bucket cur, clearing the buckets that left.
func (l *light) advance(cur int64) {
	if cur <= l.last {
		return
	}
	if cur-l.last >= buckets {
		l.ring, l.sum = ring{}, 0
	} else {
		for i := l.last + 1; i <= cur; i++ {
			l.ring[i%buckets] = 0
		}
		var s float32
		for _, v := range l.ring {
			s += v
		}
		l.sum = s
	}
	l.last = cur
}

// window sums the buckets of r, whose newest is last, in [end-9, end].
func window(r *ring, last, end int64) float64 {
	var s float64
	for i := max(end-buckets+1, last-buckets+1); i <= min(end, last); i++ {
		s += float64(r[i%buckets])
	}
	return s
}

// hot is the state of a target near or over a threshold: what its traffic
// is made of, its remote sources and the alerts it holds.
type hot struct {
	addr                                netip.Addr
	light                               int32
	last                                int64
	groups                              [4]uint16
	ngroups                             uint8
	cool                                uint8
	kinds                               [nKinds]ring
	amp                                 [maxReflectors]ring
	ampFrag                             ring // UDP fragments without ports (the rest of amplified replies)
	bytesIn, pktsOut, bytesOut, newConn ring
	// Destination ports of the current second (linear counting) and the
	// estimate of the last one.
	ports     [64]uint64
	portSec   int64
	portsPrev float64
	// Weighted majority (proto, port) of the attack traffic.
	majKey uint32
	majCnt float64
	// Remote UDP (address, port) pairs sending to the target, and whether
	// the target sent UDP back to them (the two-way rule).
	pairs  [maxPairs]udpPair
	src    *target.Sources
	active []active
}

// udpPair is a remote UDP address and port sending to a hot target: its
// inbound packets over the last second, and when the target last sent
// UDP to it. A pair is counted whichever comes first, the inbound or the
// reply, so that the order of the records within a window does not
// matter.
type udpPair struct {
	key     uint64 // pairHash; 0: free
	last    int64  // bucket of the newest bucket of ring
	replied int64  // bucket of the target's latest UDP to the pair; 0: none
	refl    uint8  // reflector index + 1 of the port; 0: not a reflector
	ring    ring   // inbound packets
}

// pairHash returns the key of remote address a and port p (never 0).
func pairHash(a netip.Addr, p uint16) uint64 {
	k := keyOf(a)
	h := (k.hi*0x9e3779b97f4a7c15 ^ k.lo) * 0xff51afd7ed558ccd
	h ^= uint64(p) * 0xc4ceb9fe1a85ec53
	h ^= h >> 29
	if h == 0 {
		h = 1
	}
	return h
}

// pair returns the slot of key, taking a free or the least useful one
// (not replied to lately, oldest inbound) when it is not tracked.
func (h *hot) pair(key uint64, cur int64) *udpPair {
	var victim *udpPair
	var worst int64
	for i := range h.pairs {
		e := &h.pairs[i]
		if e.key == key {
			return e
		}
		rank := int64(math.MinInt64) // free
		if e.key != 0 {
			rank = e.last
			if e.replied != 0 && cur-e.replied < replyBuckets {
				rank += 1 << 50 // a session peer goes last
			}
		}
		if victim == nil || rank < worst {
			victim, worst = e, rank
		}
	}
	*victim = udpPair{key: key, last: cur}
	return victim
}

// inbound counts w packets from pair key (reflector index + 1 refl) in
// bucket cur.
func (e *udpPair) inbound(cur int64, w float32, refl uint8) {
	if cur > e.last {
		if cur-e.last >= buckets {
			e.ring = ring{}
		} else {
			for i := e.last + 1; i <= cur; i++ {
				e.ring[i%buckets] = 0
			}
		}
		e.last = cur
	}
	e.ring[cur%buckets] += w
	e.refl = refl
}

// active is an alert a hot target holds.
type active struct {
	policy uint64
	typ    string
	flood  bool // of ddos_flood or a subtype family (not ddos_amp)
	seen   bool // observed at this evaluation
}

func (h *hot) advance(cur int64) {
	if cur <= h.last {
		return
	}
	from := h.last + 1
	if cur-h.last >= buckets {
		from = cur - buckets + 1
	}
	for i := from; i <= cur; i++ {
		j := i % buckets
		for k := range h.kinds {
			h.kinds[k][j] = 0
		}
		for k := range h.amp {
			h.amp[k][j] = 0
		}
		h.ampFrag[j], h.bytesIn[j], h.pktsOut[j], h.bytesOut[j], h.newConn[j] = 0, 0, 0, 0, 0
	}
	h.last = cur
	if sec := cur / buckets; sec != h.portSec {
		h.portsPrev = 0
		if sec == h.portSec+1 {
			h.portsPrev = h.spread()
		}
		h.ports, h.portSec = [64]uint64{}, sec
	}
}

// spread estimates the distinct destination ports in the ports bitmap.
func (h *hot) spread() float64 {
	set := 0
	for _, w := range h.ports {
		set += bits.OnesCount64(w)
	}
	const m = 64 * 64
	if set >= m {
		return m * 4
	}
	return -m * math.Log(float64(m-set)/m)
}

// Stage is the shard stage of every family of the package: it counts the
// inbound packets of the addresses of traffic groups this shard owns
// (model.OwnDst) and reports the targets over a threshold. Its methods
// are called from the shard's goroutine only.
type Stage struct {
	policies func() *policy.Set
	observer detect.Observer
	samples  detect.Watcher // nil: no headers kept
	model    *model.Model
	set      *policy.Set
	fam      [len(families)]*detect.GroupPolicies
	level    []float32 // promotion level by group index; 0: no policy
	allow    []bool    // by group index: some allow-list may apply

	now    int64
	cur    int64 // bucket of now
	index  map[addrKey]int32
	lights []light
	free   []int32
	hot    []*hot
	hotN   int
	spare  []*hot

	fields []alert.Field
	seen   []uint64
	drops  [2]prometheus.Counter // flowsentry_detect_dropped_total: max_targets, max_hot_targets
}

// newStage returns the stage of one shard.
func newStage(d detect.Deps) *Stage {
	s := &Stage{policies: d.Policies, observer: d.Observer, samples: d.Samples, index: map[addrKey]int32{},
		drops: [2]prometheus.Counter{d.Metrics.Dropped(Flood, "max_targets"), d.Metrics.Dropped(Flood, "max_hot_targets")}}
	for i, f := range families {
		s.fam[i] = detect.NewGroupPolicies(f)
	}
	return s
}

// SetModel takes a new model snapshot. Hot targets keep their state; their
// group indexes are refreshed by their next record.
func (s *Stage) SetModel(m *model.Model) {
	s.model = m
	s.update()
}

func (s *Stage) update() {
	set := s.policies()
	changed := false
	for _, g := range s.fam {
		if g.Update(set, s.model) {
			changed = true
		}
	}
	if !changed && s.set == set {
		return
	}
	s.set = set
	s.level, s.allow = s.level[:0], s.allow[:0]
	if s.model == nil {
		return
	}
	for gi := range s.model.Groups {
		lvl, allow := math.Inf(1), false
		for _, g := range s.fam {
			for _, p := range g.Of(uint16(gi)) {
				if t := threshold(p); t > 0 {
					lvl = math.Min(lvl, t)
				}
				allow = allow || len(p.Allow) > 0
			}
		}
		if math.IsInf(lvl, 1) {
			lvl = 0
		}
		for _, pt := range s.model.Partitions {
			allow = allow || (pt.CID == s.model.Groups[gi].CID && len(pt.Allow) > 0)
		}
		s.level = append(s.level, float32(lvl*promoteFraction))
		s.allow = append(s.allow, allow)
	}
}

// AddCounters does nothing.
func (s *Stage) AddCounters(*flow.IfCounters) {}

// weight is the packets of r that count in the last second: a record
// longer than a second counts its average rate over a second. The packet
// meter's interim reports (Continued) hold the packets since its last
// report, a second ago at most, and count whole.
func weight(r *flow.Record, n uint64) float32 {
	v := float64(n)
	if d := r.End - r.Start; !r.Continued && d > int64(time.Second) {
		v *= float64(time.Second) / float64(d)
	}
	return float32(v)
}

// AddBatch is AddClass for each record of rs (a pipeline.BatchStage): with
// no hot target, a record to no traffic group (outbound traffic, most of
// it) costs no call.
func (s *Stage) AddBatch(rs []flow.Record, cs []model.Class) {
	for i := range cs {
		if s.hotN > 0 || len(cs[i].Dst.Groups) != 0 {
			s.AddClass(&rs[i], &cs[i])
		}
	}
}

// AddClass counts a record toward its destination target (and, for a hot
// target, its outbound traffic toward its source).
func (s *Stage) AddClass(r *flow.Record, c *model.Class) {
	if s.hotN > 0 && c.Own&model.OwnSrc != 0 && len(c.Src.Groups) > 0 {
		if i, ok := s.index[keyOf(r.Src)]; ok {
			if hi := s.lights[i].hot; hi >= 0 {
				h := s.hot[hi]
				h.advance(s.cur)
				j := s.cur % buckets
				h.pktsOut[j] += weight(r, r.Packets)
				h.bytesOut[j] += weight(r, r.Bytes)
				if r.Proto == flow.ProtoUDP && !r.Fragment {
					h.pair(pairHash(r.Dst, r.DstPort), s.cur).replied = s.cur
				}
			}
		}
	}
	if c.Own&model.OwnDst == 0 || len(c.Dst.Groups) == 0 || r.Packets == 0 {
		return
	}
	var level float32
	for _, g := range c.Dst.Groups {
		if int(g) < len(s.level) && s.level[g] > 0 && (level == 0 || s.level[g] < level) {
			level = s.level[g]
		}
	}
	if level == 0 {
		return
	}
	for _, g := range c.Dst.Groups {
		if int(g) < len(s.allow) && s.allow[g] && s.allowed(g, r.Src) {
			return
		}
	}
	w := weight(r, r.Packets)
	k := keyOf(r.Dst)
	i, ok := s.index[k]
	if !ok {
		if len(s.index) >= maxLights {
			s.drops[0].Inc()
			return
		}
		i = s.newLight(k)
	}
	l := &s.lights[i]
	l.advance(s.cur)
	j := s.cur % buckets
	l.ring[j] += w
	l.sum += w
	if l.hot < 0 && l.sum >= level {
		s.promote(i, r.Dst)
	}
	if l.hot < 0 {
		return
	}
	h := s.hot[l.hot]
	h.ngroups = uint8(copy(h.groups[:], c.Dst.Groups))
	h.advance(s.cur)
	kd := classify(r)
	h.kinds[kd][j] += w
	h.bytesIn[j] += weight(r, r.Bytes)
	if !r.Continued && (r.Proto != flow.ProtoTCP || r.TCPFlags&flow.TCPSyn != 0) {
		h.newConn[j] += float32(max(1, r.SamplingRate))
	}
	if r.Proto == flow.ProtoUDP {
		x := reflIndex[r.SrcPort]
		if x != 0 {
			h.amp[x-1][j] += w
		} else if r.Fragment && r.SrcPort == 0 && r.DstPort == 0 {
			h.ampFrag[j] += w
		}
		if !r.Fragment {
			h.pair(pairHash(r.Src, r.SrcPort), s.cur).inbound(s.cur, w, x)
		}
	}
	if kd != kindEst {
		p := r.DstPort
		h.ports[(p>>6)&63] |= 1 << (p & 63)
		mk := uint32(r.Proto)<<16 | uint32(p)
		switch fw := float64(w); {
		case h.majKey == mk:
			h.majCnt += fw
		case h.majCnt < fw:
			h.majKey, h.majCnt = mk, fw-h.majCnt
		default:
			h.majCnt -= fw
		}
	}
	h.src.Add(r.Src, r.Packets)
}

// allowed reports whether remote addr is on the allow-list of any policy
// in force on group g (or of its partition).
func (s *Stage) allowed(g uint16, addr netip.Addr) bool {
	for _, f := range s.fam {
		for _, p := range f.Of(g) {
			if f.Allowed(p, addr) {
				return true
			}
		}
	}
	return false
}

func (s *Stage) newLight(k addrKey) int32 {
	var i int32
	if n := len(s.free); n > 0 {
		i = s.free[n-1]
		s.free = s.free[:n-1]
	} else {
		i = int32(len(s.lights))
		s.lights = append(s.lights, light{})
	}
	s.lights[i] = light{key: k, last: s.cur, hot: -1}
	s.index[k] = i
	return i
}

// promote gives light i a hot state, when the bound allows.
func (s *Stage) promote(i int32, addr netip.Addr) {
	if s.hotN >= maxHot {
		s.drops[1].Inc()
		return
	}
	var h *hot
	if n := len(s.spare); n > 0 {
		h = s.spare[n-1]
		s.spare = s.spare[:n-1]
		src := h.src
		src.Reset()
		*h = hot{src: src, active: h.active[:0]}
	} else {
		h = &hot{src: target.NewSources()}
	}
	h.addr, h.light, h.last, h.portSec = addr.Unmap(), i, s.cur, s.cur/buckets
	hi := -1
	for j, x := range s.hot {
		if x == nil {
			hi = j
			break
		}
	}
	if hi < 0 {
		hi = len(s.hot)
		s.hot = append(s.hot, nil)
	}
	s.hot[hi] = h
	s.hotN++
	s.lights[i].hot = int32(hi)
}

// Poll reports, at once, the targets that crossed a threshold since the
// last poll.
func (s *Stage) Poll(now int64) {
	s.setTime(now)
	s.update()
	if s.evaluate(false) {
		s.observer.Commit()
	}
}

// Tick re-observes every alert whose condition holds, releases cooled hot
// targets and evicts idle ones.
func (s *Stage) Tick(now int64) {
	s.setTime(now)
	s.update()
	s.evaluate(true)
	s.evict()
}

func (s *Stage) setTime(now int64) {
	if now < s.now {
		return
	}
	s.now, s.cur = now, now/bucketNS
}

// rates are a hot target's per-second figures over the closed window.
type rates struct {
	total, flood float64
	kinds        [nKinds]float64
	attack       float64 // packets of the kinds that may characterise
	amp          [maxReflectors]float64
	ampAll       float64
	ampTop       int
	ampFrag      float64
	twoWay       float64 // UDP from session peers (left out of flood)
	sources      uint64  // remote blocks seen
	spread       float64
	values       alert.Values
}

func (s *Stage) measure(h *hot, rt *rates) {
	l := &s.lights[h.light]
	end := s.cur - 1
	*rt = rates{}
	rt.total = window(&l.ring, l.last, end)
	// Not advanced: that would clear the oldest bucket of the window.
	hl := h.last
	for k := range h.kinds {
		rt.kinds[k] = window(&h.kinds[k], hl, end)
	}
	rt.sources = h.src.Total()
	sessions := rt.sources < estMinSources
	if sessions {
		// Two-way UDP is a session, as established TCP is, until many
		// remote blocks send.
		for i := range h.pairs {
			e := &h.pairs[i]
			if e.key == 0 || e.replied == 0 || s.cur-e.replied >= replyBuckets {
				continue
			}
			v := window(&e.ring, e.last, end)
			rt.twoWay += v
			if e.refl != 0 {
				rt.amp[e.refl-1] -= v
			}
		}
		rt.twoWay = math.Min(rt.twoWay, rt.kinds[kindOther])
	}
	rt.flood = rt.total
	if sessions {
		rt.flood = math.Max(0, rt.total-rt.kinds[kindEst]-rt.twoWay)
	}
	for k := kindSyn; k < nKinds; k++ {
		rt.attack += rt.kinds[k]
	}
	rt.attack += rt.kinds[kindOther] - rt.twoWay
	if !sessions {
		rt.attack += rt.kinds[kindEst]
	}
	rt.ampTop = -1
	for k := range reflectorPorts {
		v := math.Max(0, window(&h.amp[k], hl, end)+rt.amp[k])
		rt.amp[k] = v
		rt.ampAll += v
		if v > 0 && (rt.ampTop < 0 || v > rt.amp[rt.ampTop]) {
			rt.ampTop = k
		}
	}
	if rt.ampTop >= 0 {
		rt.ampFrag = window(&h.ampFrag, hl, end)
	}
	rt.spread = math.Max(h.portsPrev, h.spread())
	rt.values = alert.Values{
		PacketsIn: rt.total, BytesIn: window(&h.bytesIn, hl, end),
		PacketsOut: window(&h.pktsOut, hl, end), BytesOut: window(&h.bytesOut, hl, end),
		NewConn: window(&h.newConn, hl, end),
	}
}

// characterise returns the subtype of a hot target's flood: the kind with
// the dominant share of its attack packets, else spectrum when they
// spread over many destination ports, else plain ddos_flood.
func characterise(rt *rates) policy.Family {
	best, bv := kindOther, 0.0
	for k := kindSyn; k < nKinds; k++ {
		if rt.kinds[k] > bv {
			best, bv = k, rt.kinds[k]
		}
	}
	if bv > 0 && bv >= dominant*rt.attack {
		return subtypes[best]
	}
	if rt.spread >= spectrumPorts {
		return Spectrum
	}
	return Flood
}

// firing is a policy whose condition holds on a target.
type firing struct {
	p     *policy.Policy
	group uint16
	typ   policy.Family
	rate  float64
	port  int // reflector index for ddos_amp; -1 otherwise
}

// evaluate checks the policies of every hot target; all re-observes the
// alerts that hold (at a tick), else only new ones are observed. It
// reports whether it observed anything.
func (s *Stage) evaluate(all bool) bool {
	observed := false
	var rt rates
	var fire [16]firing
	for hi, h := range s.hot {
		if h == nil {
			continue
		}
		s.measure(h, &rt)
		list := fire[:0]
		s.seen = s.seen[:0]
		ampFired := false
		char := characterise(&rt)
		for gi := range h.groups[:h.ngroups] {
			g := h.groups[gi]
			if s.model == nil || int(g) >= len(s.model.Groups) {
				continue
			}
			for fi, fp := range s.fam {
				fam := families[fi]
				for _, p := range fp.Of(g) {
					if s.dup(p.ID) {
						continue
					}
					f := firing{p: p, group: g, typ: fam, port: -1}
					switch fam {
					case Flood:
						f.rate = rt.flood
						f.typ = char
						if f.typ == Frag || f.typ == Poison {
							f.rate = rt.total
						}
						if a := h.holding(p.ID); a != nil {
							f.typ = policy.Family(a.typ) // kept for the alert's life
						}
					case Spectrum:
						if rt.spread >= spectrumPorts {
							f.rate = rt.flood
						}
					case Amp:
						if rt.sources >= ampMinSources {
							f.rate, f.port = ampRate(&rt, p.Params.(*AmpParams).Port)
						}
					default:
						f.rate = rt.kinds[kindOf(fam)]
					}
					if f.rate <= threshold(p) {
						continue
					}
					if fam == Amp {
						ampFired = true
					}
					list = append(list, f)
				}
			}
		}
		// One attack, one alert (see the package doc): an amplification
		// speaks for a plain or spectrum flood made of it, and the flood
		// families speak with one type.
		ampWins := ampFired && rt.ampAll+rt.ampFrag >= dominant*rt.total
		keep := list[:0]
		for _, f := range list {
			if f.p.Family != Amp && ampWins && (f.typ == Flood || f.typ == Spectrum) {
				continue
			}
			keep = append(keep, f)
		}
		list = keep
		typ := attackType(h, list, char)
		// The ddos_flood policies holding an alert of that type: a subtype
		// policy with a threshold at or below theirs would say the same.
		floodHeld := 0.0
		for _, f := range list {
			if f.p.Family == Flood && f.typ == typ && h.holding(f.p.ID) != nil {
				floodHeld = math.Max(floodHeld, threshold(f.p))
			}
		}
		subtypeSpeaks := false
		for pass := range 2 {
			for _, f := range list {
				if (f.p.Family == Flood) != (pass == 1) {
					continue // the subtypes and ddos_amp first, then ddos_flood
				}
				holds := h.holding(f.p.ID) != nil
				switch {
				case f.p.Family == Amp:
				case f.typ != typ && !holds:
					continue // another vector of the same attack
				case f.p.Family == Flood:
					if f.typ != Flood && subtypeSpeaks {
						continue // the subtype's own policy speaks for it
					}
				case !holds && floodHeld >= threshold(f.p):
					continue // a ddos_flood alert already says it
				default:
					subtypeSpeaks = subtypeSpeaks || f.typ == typ
				}
				if s.observe(h, &rt, &f, all) {
					observed = true
				}
			}
		}
		if all {
			keep := h.active[:0]
			for _, a := range h.active {
				if a.seen {
					a.seen = false
					keep = append(keep, a)
				}
			}
			h.active = keep
			s.cool(hi, h)
		}
	}
	return observed
}

// holding returns the alert of policy id h holds, or nil.
func (h *hot) holding(id uint64) *active {
	for i := range h.active {
		if h.active[i].policy == id {
			return &h.active[i]
		}
	}
	return nil
}

// attackType returns the one type the flood families (ddos_flood and the
// subtypes) speak with on a target: that of the flood alert it already
// holds, else char when a policy firing says so, else the subtype firing
// with the highest rate of its kind; "" when none fires.
func attackType(h *hot, list []firing, char policy.Family) policy.Family {
	for _, a := range h.active {
		if a.flood {
			return policy.Family(a.typ)
		}
	}
	var best *firing
	for i := range list {
		f := &list[i]
		if f.p.Family == Amp {
			continue
		}
		if f.typ == char {
			return char
		}
		if best == nil || f.rate > best.rate {
			best = f
		}
	}
	if best == nil {
		return ""
	}
	return best.typ
}

func (s *Stage) dup(id uint64) bool {
	for _, x := range s.seen {
		if x == id {
			return true
		}
	}
	s.seen = append(s.seen, id)
	return false
}

// ampRate returns the rate toward a ddos_amp policy of port (0: any) and
// the reflector index reported as PORT. Fragments without ports count
// with the heaviest reflector port of the target: they are the rest of
// its amplified replies.
func ampRate(rt *rates, port uint16) (float64, int) {
	if rt.ampTop < 0 {
		return 0, -1
	}
	if port == 0 {
		return rt.ampAll + rt.ampFrag, rt.ampTop
	}
	x := int(reflIndex[port]) - 1
	if x < 0 {
		return 0, -1
	}
	v := rt.amp[x]
	if x == rt.ampTop {
		v += rt.ampFrag
	}
	return v, x
}

// observe reports f on h when new, or at a tick; it reports whether it
// observed.
func (s *Stage) observe(h *hot, rt *rates, f *firing, all bool) bool {
	a := h.holding(f.p.ID)
	if a != nil {
		a.seen = true
		if !all {
			return false
		}
	} else {
		h.active = append(h.active, active{policy: f.p.ID, typ: string(f.typ), flood: f.p.Family != Amp, seen: true})
		a = &h.active[len(h.active)-1]
		if s.samples != nil {
			// Keep the sampled headers of the attack from now on.
			s.samples.Watch(h.addr, time.Unix(0, s.now))
		}
	}
	att := target.Attack{IP: h.addr, Group: &s.model.Groups[f.group], Threshold: threshold(f.p), Sources: h.src}
	switch {
	case f.port >= 0:
		att.Proto, att.Port = flow.ProtoUDP, reflectorPorts[f.port]
	default:
		att.Proto, att.Port = uint8(h.majKey>>16), uint16(h.majKey)
		switch policy.Family(a.typ) {
		case SynFlood, RstFlood, Xmas, TCPNull:
			att.Proto = flow.ProtoTCP
		case TCPZero:
			att.Proto, att.Port = flow.ProtoTCP, 0
		case IPNull:
			att.Proto, att.Port = 0, 0
		case Spectrum:
			att.Port = 0
		}
	}
	keyType := a.typ
	if f.p.Family == Flood {
		keyType = string(Flood)
	}
	s.fields = att.Fields(s.fields[:0])
	fields := make([]alert.Field, len(s.fields))
	copy(fields, s.fields)
	s.observer.Observe(time.Unix(0, s.now), alert.Condition{
		Policy: f.p.ID, Key: target.Key(keyType, h.addr), Type: a.typ,
		CID: f.p.CID, CIDName: s.model.PartitionName(f.p.CID), Severity: f.p.Severity,
		Fields: fields, Values: rt.values,
	})
	return true
}

// cool releases hot target hi once it stayed below half its promotion
// level for coolTicks ticks without an alert.
func (s *Stage) cool(hi int, h *hot) {
	l := &s.lights[h.light]
	sum := window(&l.ring, l.last, s.cur-1)
	var level float32
	for _, g := range h.groups[:h.ngroups] {
		if int(g) < len(s.level) && s.level[g] > 0 && (level == 0 || s.level[g] < level) {
			level = s.level[g]
		}
	}
	if len(h.active) > 0 || (level > 0 && sum >= float64(level/2)) {
		h.cool = 0
		return
	}
	if h.cool++; h.cool < coolTicks {
		return
	}
	l.hot = -1
	s.hot[hi] = nil
	s.hotN--
	s.spare = append(s.spare, h)
}

// evict forgets the targets without a packet for idleBuckets.
func (s *Stage) evict() {
	for i := range s.lights {
		l := &s.lights[i]
		if l.last < 0 || l.hot >= 0 || s.cur-l.last < idleBuckets {
			continue
		}
		delete(s.index, l.key)
		l.last = -1
		s.free = append(s.free, int32(i))
	}
}
