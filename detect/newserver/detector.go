package newserver

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flowsentry/flowsentry/alert"
	"github.com/flowsentry/flowsentry/detect"
	"github.com/flowsentry/flowsentry/model"
	"github.com/flowsentry/flowsentry/policy"
)

// Stats count what the families learned and dropped.
type Stats struct {
	// Servers and Clients are the entries learned.
	Servers, Clients int
	// Alerted counts the alerts raised; Silent the entries learned in a
	// learning period.
	Alerted, Silent uint64
	// Dropped counts the new entries of policies at max_learned.
	Dropped uint64
	// SaveErrors counts failed background saves.
	SaveErrors uint64
}

type policyGroup struct {
	policy uint64
	group  uint32
}

// Detector is the stage of the whole of both families: it owns the
// learned sets, decides at each tick on the candidates of every shard,
// and persists what it learned. Tick and SetModel are called by the
// pipeline while the shards wait; Start before it runs, Stop after.
type Detector struct {
	policies func() *policy.Set
	observer detect.Observer
	store    Store
	log      *slog.Logger
	drops    prometheus.Counter // flowsentry_detect_dropped_total
	shards   []*Shard

	servers, clients *detect.GroupPolicies
	model            *model.Model
	learned          *learned
	since            map[policyGroup]int64
	stats            Stats
	lastDropLog      uint64
	fields           []alert.Field

	mu      sync.Mutex // guards batch and saving
	batch   State
	saving  bool
	wg      sync.WaitGroup
	saveErr uint64
}

// New returns the stage of the whole over the shards' stages in d.Shards
// (which it connects to its learned sets); st may be nil (memory only).
func New(d detect.Deps, st Store) (*Detector, error) {
	log := d.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	det := &Detector{
		policies: d.Policies, observer: d.Observer, store: st, log: log,
		servers: detect.NewGroupPolicies(ServerFamily), clients: detect.NewGroupPolicies(ClientFamily),
		learned: newLearned(), since: map[policyGroup]int64{},
		drops: d.Metrics.Dropped(ServerFamily, "max_learned"),
	}
	for _, s := range d.Shards {
		sh, ok := s.(*Shard)
		if !ok {
			return nil, fmt.Errorf("newserver: shard stage is a %T, not a *newserver.Shard", s)
		}
		sh.learned = det.learned
		det.shards = append(det.shards, sh)
	}
	return det, nil
}

// Start loads the learned state from the store.
func (d *Detector) Start(ctx context.Context) error {
	if d.store == nil {
		return nil
	}
	st, err := d.store.LearnedServices(ctx)
	if err != nil {
		return fmt.Errorf("load learned servers and clients: %w", err)
	}
	for _, s := range st.Starts {
		d.since[policyGroup{s.Policy, s.Group}] = s.Since.UnixNano()
	}
	for _, e := range st.Entries {
		s16 := e.Server.Unmap().As16()
		svc := serviceHash(serverHash(&s16), e.Policy, e.Proto, e.Port)
		added := false
		if e.Client.IsValid() {
			c16 := e.Client.Unmap().As16()
			added = d.learned.clients.add(clientHash(svc, &c16))
		} else {
			added = d.learned.servers.add(svc)
		}
		if added {
			d.learned.count[e.Policy]++
		}
	}
	d.log.Info("learned servers and clients loaded", "servers", d.learned.servers.n, "clients", d.learned.clients.n)
	return nil
}

// Stop waits for a save in progress and saves what is left. It must be
// called after the pipeline stopped.
func (d *Detector) Stop() {
	d.wg.Wait()
	d.mu.Lock()
	b := d.batch
	d.batch = State{}
	d.mu.Unlock()
	d.write(b)
}

// Stats returns the counts; call it at a tick or after Stop.
func (d *Detector) Stats() Stats {
	st := d.stats
	st.Servers, st.Clients = d.learned.servers.n, d.learned.clients.n
	d.mu.Lock()
	st.SaveErrors = d.saveErr
	d.mu.Unlock()
	return st
}

// SetModel takes a new model.
func (d *Detector) SetModel(m *model.Model) {
	d.model = m
}

// Tick starts the learning periods of policies new on a group, decides on
// the shards' candidates and saves what it learned in the background.
func (d *Detector) Tick(now int64) {
	var set *policy.Set
	if d.policies != nil {
		set = d.policies()
	}
	changed := d.servers.Update(set, d.model)
	changed = d.clients.Update(set, d.model) || changed
	if changed && d.model != nil {
		for i := range d.model.Groups {
			for _, gp := range []*detect.GroupPolicies{d.servers, d.clients} {
				for _, p := range gp.Of(uint16(i)) {
					d.started(p.ID, d.model.Groups[i].ID, now)
				}
			}
		}
	}
	t := time.Unix(0, now)
	for _, s := range d.shards {
		s.take(func(c *candidate) { d.decide(t, now, c) })
	}
	if d.stats.Dropped > d.lastDropLog {
		d.log.Warn("new server/client policies at max_learned: new entries are neither learned nor alerted; raise max_learned",
			"dropped", d.stats.Dropped-d.lastDropLog)
		d.lastDropLog = d.stats.Dropped
	}
	d.flush()
}

// started returns when policy p began learning on group g, starting it
// now the first time.
func (d *Detector) started(p uint64, g uint32, now int64) int64 {
	k := policyGroup{p, g}
	since, ok := d.since[k]
	if !ok {
		since = now
		d.since[k] = now
		d.mu.Lock()
		d.batch.Starts = append(d.batch.Starts, Start{Policy: p, Group: g, Since: time.Unix(0, now)})
		d.mu.Unlock()
	}
	return since
}

// decide learns a candidate the sets do not hold yet and alerts on it
// unless its policy is learning.
func (d *Detector) decide(t time.Time, now int64, c *candidate) {
	set := &d.learned.servers
	if c.client {
		set = &d.learned.clients
	}
	if set.has(c.key) {
		return
	}
	params := Of(c.p)
	if params == nil {
		return
	}
	if d.learned.count[c.p.ID] >= params.MaxLearned {
		d.stats.Dropped++
		d.drops.Inc()
		return
	}
	d.learned.count[c.p.ID]++
	e := Entry{Policy: c.p.ID, Server: c.server, Proto: c.proto, Port: c.port, Learned: t}
	set.add(c.key)
	if c.client {
		e.Client = c.remote
	}
	d.mu.Lock()
	d.batch.Entries = append(d.batch.Entries, e)
	d.mu.Unlock()
	if now < d.started(c.p.ID, c.group, now)+int64(params.LearningPeriod) {
		d.stats.Silent++
		return
	}
	d.stats.Alerted++
	d.observer.Observe(t, d.condition(c))
}

func (d *Detector) condition(c *candidate) alert.Condition {
	typ := ServerAlert
	key := addrString(c.server) + "/" + strconv.Itoa(int(c.proto)) + "/" + strconv.Itoa(int(c.port))
	f := []alert.Field{
		{Name: "SERVER_IP", Value: addrString(c.server)},
		{Name: "SERVER_TG", Value: strconv.FormatUint(uint64(c.group), 10), Number: true},
		{Name: "SERVER_TG_NAME", Value: c.groupName},
		{Name: "PROTO", Value: strconv.Itoa(int(c.proto)), Number: true},
		{Name: "SERVER_PORT", Value: strconv.Itoa(int(c.port)), Number: true},
	}
	if c.client {
		typ = ClientAlert
		key += "/" + addrString(c.remote)
		f = append(f, alert.Field{Name: "CLIENT_IP", Value: addrString(c.remote)})
	}
	return alert.Condition{
		Policy: c.p.ID, Key: key, Type: typ, CID: c.p.CID, CIDName: d.model.PartitionName(c.p.CID),
		Severity: c.p.Severity, Fields: f, Values: c.values,
	}
}

func addrString(a netip.Addr) string { return a.Unmap().String() }

// flush hands what was learned since the last save to a background save,
// unless one is running (the next tick catches up).
func (d *Detector) flush() {
	if d.store == nil {
		d.mu.Lock()
		d.batch = State{}
		d.mu.Unlock()
		return
	}
	d.mu.Lock()
	if d.saving || (len(d.batch.Entries) == 0 && len(d.batch.Starts) == 0) {
		d.mu.Unlock()
		return
	}
	b := d.batch
	d.batch = State{}
	d.saving = true
	d.mu.Unlock()
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		d.write(b)
		d.mu.Lock()
		d.saving = false
		d.mu.Unlock()
	}()
}

// write saves b; on failure it puts b back for the next save.
func (d *Detector) write(b State) {
	if d.store == nil || (len(b.Entries) == 0 && len(b.Starts) == 0) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := d.store.AddLearnedServices(ctx, b); err != nil {
		d.log.Warn("saving learned servers and clients failed; they will be saved again at the next tick", "err", err)
		d.mu.Lock()
		d.saveErr++
		d.batch.Entries = append(d.batch.Entries, b.Entries...)
		d.batch.Starts = append(d.batch.Starts, b.Starts...)
		d.mu.Unlock()
	}
}

var (
	_ detect.Stage      = (*Detector)(nil)
	_ detect.ShardStage = (*Shard)(nil)
)
