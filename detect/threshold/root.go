// Package threshold is the Threshold/Baseline and port/protocol Threshold
// detector family: at every tick it compares the current per-second rate
// of each rate object with the policy in force for it — a fixed threshold,
// or a multiple of a baseline learned per object — and reports the objects
// over it to the alert engine.
package threshold

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/flowsentry/flowsentry/alert"
	"github.com/flowsentry/flowsentry/detect"
	"github.com/flowsentry/flowsentry/flow"
	"github.com/flowsentry/flowsentry/model"
	"github.com/flowsentry/flowsentry/policy"
	"github.com/flowsentry/flowsentry/rates"
)

// AlertType is the ALERT_TYPE of every alert this family raises.
const AlertType = "threshold_exceeded"

type baselineKey struct {
	policy uint64
	key    rates.Key
}

// Detector is a pipeline stage, of the whole or of one shard; all its
// methods but Baselines, Start and Stop are called from the pipeline
// goroutine (or the shard's).
type Detector struct {
	family   policy.Family
	scope    scope
	cfg      detect.BaselineConfig
	policies func() *policy.Set
	objects  detect.Objects
	observer detect.Observer
	store    detect.BaselineStore
	log      *slog.Logger

	model     *model.Model
	groups    map[uint32]*model.TrafficGroup
	baselines map[baselineKey]*detect.Baseline
	lastSave  int64
	fields    []alert.Field // scratch

	mu        sync.Mutex // guards published and saving
	published []detect.Baseline
	saving    sync.WaitGroup
}

// scope is the objects a detector evaluates.
type scope uint8

const (
	// allObjects: every kind, as a single engine holds them.
	allObjects scope = iota
	// mergedObjects: every kind but hosts (TGRP+IP), which the stages of
	// the shards evaluate.
	mergedObjects
	// hostObjects: the hosts of one shard.
	hostObjects
)

// in reports whether s takes objects of kind k.
func (s scope) in(k rates.Kind) bool {
	switch s {
	case mergedObjects:
		return k != rates.KindHost
	case hostObjects:
		return k == rates.KindHost
	}
	return true
}

// New returns the detector of family d.Family (threshold or
// port_threshold), reading its policies and the rate objects and reporting
// to d.Observer; d.BaselineStore may be nil (baselines are then not
// persisted).
func New(d detect.Deps) (*Detector, error) {
	if err := d.Baselines.Validate(); err != nil {
		return nil, err
	}
	return &Detector{
		family: d.Family, cfg: d.Baselines, policies: d.Policies, objects: d.Objects, observer: d.Observer,
		store: d.BaselineStore, log: d.Log,
		baselines: map[baselineKey]*detect.Baseline{},
	}, nil
}

// Start loads the stored baselines.
func (d *Detector) Start(ctx context.Context) error {
	if d.store == nil {
		return nil
	}
	list, err := d.store.Baselines(ctx)
	if err != nil {
		return fmt.Errorf("load baselines: %w", err)
	}
	for _, b := range list {
		d.baselines[baselineKey{b.Policy, b.Key}] = &b
	}
	d.mu.Lock()
	d.published = list
	d.mu.Unlock()
	return nil
}

// Stop saves the baselines one last time and waits for the save. It must
// be called after the pipeline stopped.
func (d *Detector) Stop() {
	d.save()
	d.saving.Wait()
}

// Baselines returns the baselines as of the last save; safe for concurrent
// use.
func (d *Detector) Baselines() []detect.Baseline {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.published
}

// SetModel takes a new model snapshot.
func (d *Detector) SetModel(m *model.Model) {
	d.model = m
	d.groups = make(map[uint32]*model.TrafficGroup, len(m.Groups))
	for i := range m.Groups {
		d.groups[m.Groups[i].ID] = &m.Groups[i]
	}
}

// AddClass does nothing: the detector reads the rate objects at the tick.
func (d *Detector) AddClass(*flow.Record, *model.Class) {}

// AddBatch does nothing either: as a pipeline.BatchStage, the detector
// costs the shard one call a batch rather than one a record.
func (d *Detector) AddBatch([]flow.Record, []model.Class) {}

// AddCounters does nothing.
func (d *Detector) AddCounters(*flow.IfCounters) {}

// Tick evaluates every policy against every object it applies to.
func (d *Detector) Tick(now int64) {
	set := d.policies()
	t := time.Unix(0, now)
	for _, p := range set.Templates() {
		d.evaluate(t, set, p, true)
	}
	for _, p := range set.Specific() {
		d.evaluate(t, set, p, false)
	}
	if now-d.lastSave >= int64(d.cfg.SaveInterval) {
		d.lastSave = now
		d.save()
	}
}

func (d *Detector) evaluate(now time.Time, set *policy.Set, tp *policy.Policy, template bool) {
	tparams := Of(tp)
	if tp.Family != d.family || tparams == nil {
		return
	}
	kind, ok := kindOf(tp.Object)
	if !ok || !d.scope.in(kind) {
		return
	}
	counter, ok := counterOf(tparams.Counter)
	if !ok {
		return
	}
	d.objects.Each(kind, func(o *rates.Object) {
		k := o.Key()
		var p *policy.Policy
		switch {
		case tp.Target == policy.TargetGroups:
			g := d.groups[k.Group]
			if g == nil || g.CID != tp.CID {
				return
			}
			if !template {
				if k.Group != tp.Group {
					return
				}
				p = tp
				if p.Severity == 0 {
					return
				}
			} else if p = set.ForGroup(tp, k.Group); p == nil {
				return
			}
		default:
			if !template {
				if k.Exporter != tp.Exporter || k.IfIndex != tp.IfIndex {
					return
				}
				p = tp
				if p.Severity == 0 {
					return
				}
			} else if p = set.ForInterface(tp, k.Exporter, k.IfIndex); p == nil {
				return
			}
		}
		pp := Of(p)
		if pp == nil || (pp.Proto != 0 && pp.Proto != k.Proto) || (pp.Port != 0 && pp.Port != k.Port) {
			return
		}
		value := o.Cur(counter)
		limit := pp.Threshold
		if pp.Baseline > 0 {
			b := d.baseline(tp.ID, k)
			if b.Samples < d.warmupSamples() {
				d.learn(b, value, now)
				return
			}
			limit = math.Max(limit, pp.Baseline*b.Value)
			if value <= limit {
				d.learn(b, value, now)
			}
		}
		if value <= limit {
			return
		}
		d.observer.Observe(now, d.condition(p, o, k, limit))
	})
}

func (d *Detector) baseline(policyID uint64, k rates.Key) *detect.Baseline {
	bk := baselineKey{policyID, k}
	b := d.baselines[bk]
	if b == nil {
		b = &detect.Baseline{Policy: policyID, Key: k}
		d.baselines[bk] = b
	}
	return b
}

// learn folds one per-tick sample into the baseline: the plain mean of the
// samples during the warm-up, then an exponentially weighted moving
// average. Samples over the limit are not learned, so an attack does not
// raise its own bar.
func (d *Detector) learn(b *detect.Baseline, v float64, now time.Time) {
	b.Samples++
	w := 1 / float64(b.Samples)
	if b.Samples > d.warmupSamples() {
		w = d.cfg.Alpha()
	}
	b.Value += w * (v - b.Value)
	b.Updated = now
}

// warmupSamples is the number of one-second samples of the warm-up.
func (d *Detector) warmupSamples() uint64 { return uint64(d.cfg.Warmup / time.Second) }

// save publishes the baselines and writes them in the background; a save
// still running is not waited for, the next one catches up.
func (d *Detector) save() {
	list := make([]detect.Baseline, 0, len(d.baselines))
	for _, b := range d.baselines {
		list = append(list, *b)
	}
	d.mu.Lock()
	d.published = list
	d.mu.Unlock()
	if d.store == nil {
		return
	}
	d.saving.Add(1)
	go func() {
		defer d.saving.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := d.store.SaveBaselines(ctx, list); err != nil {
			d.log.Warn("saving baselines failed; they will be saved again at the next interval", "err", err)
		}
	}()
}

func (d *Detector) condition(p *policy.Policy, o *rates.Object, k rates.Key, limit float64) alert.Condition {
	st := o.Stats()
	f := []alert.Field{{Name: "OBJECT_TYPE", Value: p.Object}}
	num := func(name string, v uint64) {
		f = append(f, alert.Field{Name: name, Value: strconv.FormatUint(v, 10), Number: true})
	}
	str := func(name, v string) { f = append(f, alert.Field{Name: name, Value: v}) }
	key := p.Object
	switch k.Kind {
	case rates.KindGroup, rates.KindGroupPort, rates.KindHost:
		num("TGRP", uint64(k.Group))
		name := ""
		if g := d.groups[k.Group]; g != nil {
			name = g.Name
		}
		str("TGRP_NAME", name)
		key += "/" + strconv.FormatUint(uint64(k.Group), 10)
	default:
		str("EXPORTER_ADDR", k.Exporter.String())
		num("IFINDEX", uint64(k.IfIndex))
		key += "/" + k.Exporter.String() + "/" + strconv.FormatUint(uint64(k.IfIndex), 10)
	}
	if k.Kind == rates.KindGroupPort || k.Kind == rates.KindInterfacePort {
		num("PROTO", uint64(k.Proto))
		num("PORT", uint64(k.Port))
		key += "/" + strconv.Itoa(int(k.Proto)) + "/" + strconv.Itoa(int(k.Port))
	}
	if k.Kind == rates.KindHost {
		str("IP", addrString(k.IP))
		key += "/" + k.IP.String()
	}
	str("THRESHOLD_TYPE", Of(p).Counter)
	f = append(f, alert.Field{Name: "THRESHOLD_VALUE", Value: strconv.FormatFloat(limit, 'f', 1, 64), Number: true})
	return alert.Condition{
		Policy:   p.ID,
		Key:      key,
		Type:     AlertType,
		CID:      p.CID,
		CIDName:  d.model.PartitionName(p.CID),
		Severity: p.Severity,
		Fields:   f,
		Uniq:     k.Kind == rates.KindHost,
		Values: alert.Values{
			PacketsIn: st.Cur.PacketsIn, PacketsOut: st.Cur.PacketsOut,
			BytesIn: st.Cur.BytesIn, BytesOut: st.Cur.BytesOut, NewConn: st.Cur.NewConn,
			UniqLocalEndpoint: st.Cur.UniqLocalEndpoint, UniqRemoteCIDR: st.Cur.UniqRemoteCIDR,
		},
	}
}

func addrString(a netip.Addr) string { return a.Unmap().String() }

func kindOf(object string) (rates.Kind, bool) {
	for k := rates.KindGroup; k <= rates.KindInterfacePort; k++ {
		if k.String() == object {
			return k, true
		}
	}
	return 0, false
}

func counterOf(name string) (rates.Counter, bool) {
	for c := rates.Counter(0); c.String() != "unknown"; c++ {
		if c.String() == name {
			return c, true
		}
	}
	return 0, false
}
