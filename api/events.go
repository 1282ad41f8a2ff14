package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flowsentry/flowsentry/action"
	"github.com/flowsentry/flowsentry/alert"
	"github.com/flowsentry/flowsentry/policy"
	"github.com/flowsentry/flowsentry/rates"
)

// The topics of GET /api/v1/events.
const (
	TopicAlerts   = "alerts"
	TopicActions  = "actions"
	TopicPolicies = "policies"
	TopicTraffic  = "traffic"
)

// eventTopics are the topics, in the order the error message names them.
var eventTopics = []string{TopicAlerts, TopicActions, TopicPolicies, TopicTraffic}

// Defaults of the event hub.
const (
	// eventBuffer is how many messages wait for a subscriber before it
	// loses messages.
	eventBuffer = 256
	// maxEventStreams caps the open streams; more get 503.
	maxEventStreams = 256
	// eventHeartbeat is the interval of the heartbeat comment, which also
	// checks the stream's login again.
	eventHeartbeat = 15 * time.Second
	// eventRetry is the reconnection delay the stream suggests.
	eventRetry = 3 * time.Second
	// eventWriteTimeout bounds each write to a stream: a client that
	// stops reading is dropped.
	eventWriteTimeout = 30 * time.Second
)

// Events is the hub of the live updates (GET /api/v1/events, server-sent
// events): the alert engine's sink, the action dispatcher, the policy
// manager and the rates' tick publish to it, and each stream receives the
// events of its topics that its user may see (the partition, and for
// traffic the group). Publishing never blocks: each stream has a queue of
// eventBuffer messages; one that falls behind loses messages and receives
// an "overflow" event instead, telling the page to reload its data. Its
// methods are safe for concurrent use.
type Events struct {
	buffer, max int
	heartbeat   time.Duration

	published *prometheus.CounterVec
	dropped   *prometheus.CounterVec
	refused   prometheus.Counter

	mu   sync.Mutex
	subs map[*subscriber]struct{}
	seq  uint64 // ID of the latest message
	n    atomic.Int32
}

// NewEvents returns an event hub with its metrics registered with reg.
func NewEvents(reg prometheus.Registerer) (*Events, error) {
	e := &Events{
		buffer: eventBuffer, max: maxEventStreams, heartbeat: eventHeartbeat,
		subs: map[*subscriber]struct{}{},
		published: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flowsentry_api_events_published_total",
			Help: "Live update events published (GET /api/v1/events), by topic; a traffic event is one tick of every group.",
		}, []string{"topic"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flowsentry_api_events_dropped_total",
			Help: "Live update events a stream lost, by topic and reason: overflow (the stream's queue was full; it got an overflow event) or encode (the event could not be written as JSON).",
		}, []string{"topic", "reason"}),
		refused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "flowsentry_api_events_refused_total",
			Help: "Live update streams refused with 503 because the most streams were open.",
		}),
	}
	streams := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "flowsentry_api_event_streams",
		Help: "Open live update streams (GET /api/v1/events).",
	}, func() float64 { return float64(e.n.Load()) })
	for _, c := range []prometheus.Collector{e.published, e.dropped, e.refused, streams} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	for _, t := range eventTopics {
		e.published.WithLabelValues(t)
		e.dropped.WithLabelValues(t, "overflow")
	}
	return e, nil
}

// message is an event as queued for the streams: data for the events of
// one partition, groups (each visible on its own) for traffic.
type message struct {
	id    uint64
	topic string
	cid   uint32
	// group is the traffic group of an alert event (byGroup), which only
	// users who see that group get (0: none, an interface's alert).
	group   uint32
	byGroup bool
	data    []byte
	time    time.Time
	groups  []groupPart
	// ifaces are the interfaces of a traffic message, which only
	// admins see (as the exporters).
	ifaces [][]byte
}

// groupPart is one traffic group of a traffic message.
type groupPart struct {
	cid, group uint32
	data       []byte
}

// subscriber is one stream. p is guarded by the hub's lock (the heartbeat
// updates it); lost says messages were dropped since the last overflow
// event.
type subscriber struct {
	p      Principal
	topics map[string]bool
	ch     chan *message
	lost   atomic.Bool
}

// errTooManyStreams refuses a stream over the cap.
var errTooManyStreams = errors.New("too many event streams")

// subscribe adds a stream of p for topics.
func (e *Events) subscribe(p Principal, topics map[string]bool) (*subscriber, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.subs) >= e.max {
		e.refused.Inc()
		return nil, errTooManyStreams
	}
	s := &subscriber{p: p, topics: topics, ch: make(chan *message, e.buffer)}
	e.subs[s] = struct{}{}
	e.n.Store(int32(len(e.subs)))
	return s, nil
}

// unsubscribe removes a stream.
func (e *Events) unsubscribe(s *subscriber) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.subs, s)
	e.n.Store(int32(len(e.subs)))
}

// setPrincipal replaces the user of a stream (its role or partitions
// changed).
func (e *Events) setPrincipal(s *subscriber, p Principal) {
	e.mu.Lock()
	defer e.mu.Unlock()
	s.p = p
}

// principal returns the user of a stream.
func (e *Events) principal(s *subscriber) Principal {
	e.mu.Lock()
	defer e.mu.Unlock()
	return s.p
}

// Publish hands v, written as JSON, to the streams of topic whose user
// may see partition cid. It never blocks.
func (e *Events) Publish(topic string, cid uint32, v any) {
	e.publish(&message{topic: topic, cid: cid}, v)
}

// publish fills m's data with v as JSON and queues it.
func (e *Events) publish(m *message, v any) {
	if e.n.Load() == 0 {
		return
	}
	data, err := json.Marshal(v)
	if err != nil {
		e.dropped.WithLabelValues(m.topic, "encode").Inc()
		return
	}
	m.data = data
	e.send(m)
}

// sees reports whether the user of s may see m.
func (s *subscriber) sees(m *message) bool {
	switch {
	case !s.topics[m.topic]:
		return false
	case m.groups != nil:
		return true // each group is checked as the data is written
	case m.byGroup:
		return s.p.seesGroup(m.cid, m.group)
	}
	return s.p.may(m.cid)
}

// send queues m for every stream of its topic that may see it.
func (e *Events) send(m *message) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.seq++
	m.id = e.seq
	e.published.WithLabelValues(m.topic).Inc()
	for s := range e.subs {
		if !s.sees(m) {
			continue
		}
		select {
		case s.ch <- m:
		default:
			s.lost.Store(true)
			e.dropped.WithLabelValues(m.topic, "overflow").Inc()
		}
	}
}

// latest returns the ID of the latest message.
func (e *Events) latest() uint64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.seq
}

// AlertEvent is the data of an alerts event: a summary of one transition
// of an alert after it was stored; GET /api/v1/alerts/{id} has the rest.
type AlertEvent struct {
	// Op is CREATE, UPDATE or DELETE.
	Op       alert.Op  `json:"op"`
	ID       uint64    `json:"id"`
	Policy   uint64    `json:"policy"`
	Type     string    `json:"alert_type"`
	CID      uint32    `json:"cid"`
	CIDName  string    `json:"cid_name"`
	Severity int       `json:"severity"`
	Key      string    `json:"key"`
	Earliest time.Time `json:"earliest"`
	Latest   time.Time `json:"latest"`
	// Ended is when the alert ended; left out while it is open.
	Ended time.Time `json:"ended,omitzero"`
}

// Alert publishes an alert transition; it is an alert.Sink.
func (e *Events) Alert(ev alert.Event) {
	a := &ev.Alert
	e.publish(&message{topic: TopicAlerts, cid: a.CID, group: a.Group(), byGroup: true}, AlertEvent{
		Op: ev.Op, ID: a.ID, Policy: a.Policy, Type: a.Type, CID: a.CID, CIDName: a.CIDName,
		Severity: a.Severity, Key: a.Key, Earliest: a.Earliest, Latest: a.Latest, Ended: a.Ended,
	})
}

// ActionEvent is the data of an actions event: the action as saved, with
// the partition of its alert.
type ActionEvent struct {
	action.Action
	CID uint32 `json:"cid"`
}

// Action publishes a saved action of an alert of partition cid about
// traffic group group (alert.Alert.Group; 0 for none), for the action
// dispatcher's OnChange: like the alert, only users who see that group
// get it.
func (e *Events) Action(a action.Action, cid, group uint32) {
	e.publish(&message{topic: TopicActions, cid: cid, group: group, byGroup: true}, ActionEvent{Action: a, CID: cid})
}

// PolicyEvent is the data of a policies event: one policy created,
// changed or deleted, through the API or by a reload of the configuration
// file; GET /api/v1/policies/{id} has the rest.
type PolicyEvent struct {
	// Op is created, changed or deleted.
	Op     string        `json:"op"`
	ID     uint64        `json:"id"`
	CID    uint32        `json:"cid"`
	Name   string        `json:"name"`
	Family policy.Family `json:"family"`
}

// Policies publishes the differences between two sets of policies in
// force (the policy manager's OnChange).
func (e *Events) Policies(old, cur *policy.Set) {
	if e.n.Load() == 0 {
		return
	}
	before := map[uint64]policy.Policy{}
	for _, p := range old.All() {
		before[p.ID] = p
	}
	pub := func(op string, p *policy.Policy) {
		e.Publish(TopicPolicies, p.CID, PolicyEvent{Op: op, ID: p.ID, CID: p.CID, Name: p.Name, Family: p.Family})
	}
	for _, p := range cur.All() {
		was, ok := before[p.ID]
		delete(before, p.ID)
		switch {
		case !ok:
			pub("created", &p)
		case !samePolicy(was, p):
			pub("changed", &p)
		}
	}
	gone := make([]uint64, 0, len(before))
	for id := range before {
		gone = append(gone, id)
	}
	slices.Sort(gone)
	for _, id := range gone {
		p := before[id]
		pub("deleted", &p)
	}
}

// samePolicy reports whether a and b are written the same.
func samePolicy(a, b policy.Policy) bool {
	da, errA := policy.Encode(a)
	db, errB := policy.Encode(b)
	return errA == nil && errB == nil && bytes.Equal(da, db)
}

// GroupRates is one traffic group of a traffic event.
type GroupRates struct {
	ID   uint32 `json:"id"`
	Name string `json:"name"`
	CID  uint32 `json:"cid"`
	// Cur are the current per-second rates, as in GET
	// /api/v1/trafficgroups.
	Cur rates.Rates `json:"cur"`
}

// InterfaceRates is one exporter interface of a traffic event.
type InterfaceRates struct {
	Exporter netip.Addr `json:"exporter"`
	IfIndex  uint32     `json:"ifindex"`
	// Name is the interface's configured name; "" when none.
	Name string `json:"name"`
	// Cur are the current per-second rates, as in GET
	// /api/v1/exporters/{addr}/interfaces.
	Cur rates.Rates `json:"cur"`
}

// TrafficEvent is the data of a traffic event, once per tick: the current
// rates of the traffic groups the user sees that had traffic, and for
// admins those of the exporters' interfaces.
type TrafficEvent struct {
	Time       time.Time        `json:"time"`
	Groups     []GroupRates     `json:"groups"`
	Interfaces []InterfaceRates `json:"interfaces,omitempty"`
}

// Traffic publishes the current rates of every traffic group and
// interface; it is the engine's tick hook (engine.Deps.Record), called
// while no shard runs.
func (e *Events) Traffic(now int64, objs *rates.Shards) {
	if e.n.Load() == 0 {
		return
	}
	m := &message{topic: TopicTraffic, time: time.Unix(0, now).UTC(), groups: []groupPart{}}
	encode := func(v any) []byte {
		data, err := json.Marshal(v)
		if err != nil {
			e.dropped.WithLabelValues(TopicTraffic, "encode").Inc()
		}
		return data
	}
	objs.Each(rates.KindGroup, func(o *rates.Object) {
		st := o.Stats()
		if data := encode(GroupRates{ID: st.Key.Group, Name: st.Name, CID: st.CID, Cur: st.Cur}); data != nil {
			m.groups = append(m.groups, groupPart{cid: st.CID, group: st.Key.Group, data: data})
		}
	})
	objs.Each(rates.KindInterface, func(o *rates.Object) {
		st := o.Stats()
		if data := encode(InterfaceRates{Exporter: st.Key.Exporter, IfIndex: st.Key.IfIndex, Name: st.Name, Cur: st.Cur}); data != nil {
			m.ifaces = append(m.ifaces, data)
		}
	})
	e.send(m)
}

// trafficData writes the groups of m that p sees, and for an admin the
// interfaces, as a TrafficEvent; nil when p sees none of them.
func trafficData(m *message, p Principal) []byte {
	var b bytes.Buffer
	b.WriteString(`{"time":`)
	t, _ := m.time.MarshalJSON() // a tick's time is always valid
	b.Write(t)
	b.WriteString(`,"groups":[`)
	n := 0
	for _, g := range m.groups {
		if !p.seesGroup(g.cid, g.group) {
			continue
		}
		if n > 0 {
			b.WriteByte(',')
		}
		b.Write(g.data)
		n++
	}
	b.WriteByte(']')
	if p.Admin && len(m.ifaces) > 0 {
		b.WriteString(`,"interfaces":[`)
		b.Write(bytes.Join(m.ifaces, []byte{','}))
		b.WriteByte(']')
		n += len(m.ifaces)
	}
	if n == 0 {
		return nil
	}
	b.WriteByte('}')
	return b.Bytes()
}

// events serves GET /api/v1/events?topics=: a stream of server-sent
// events of the topics (all by default) that the user may see. Every
// heartbeat checks the login again, so a stream ends within one when its
// session, token or user goes, and follows a change of the user's
// partitions.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	e := s.deps.Events
	if e == nil {
		writeError(w, http.StatusNotFound, "this server publishes no live updates")
		return
	}
	topics := map[string]bool{}
	raw := r.URL.Query().Get("topics")
	if raw == "" {
		raw = strings.Join(eventTopics, ",")
	}
	for t := range strings.SplitSeq(raw, ",") {
		t = strings.TrimSpace(t)
		if !slices.Contains(eventTopics, t) {
			writeError(w, http.StatusBadRequest, "topics: %q is not a topic; use a comma-separated list of %s, or leave topics out for all", t, strings.Join(eventTopics, ", "))
			return
		}
		topics[t] = true
	}
	rc := http.NewResponseController(w)
	sub, err := e.subscribe(principal(r), topics)
	if err != nil {
		w.Header().Set("Retry-After", strconv.Itoa(int(eventRetry/time.Second)))
		writeError(w, http.StatusServiceUnavailable, "%d live update streams are open, the most this server serves; close one (another browser tab) or try again later", e.max)
		return
	}
	defer e.unsubscribe(sub)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprintf(w, "retry: %d\n\n", eventRetry.Milliseconds())
	// Events are not kept: a page that reconnects after missing some is
	// told to reload.
	if last := r.Header.Get("Last-Event-ID"); last != "" && last != strconv.FormatUint(e.latest(), 10) {
		sub.lost.Store(true)
		writeOverflow(w, sub)
	}
	if rc.Flush() != nil {
		return
	}
	beat := time.NewTicker(e.heartbeat)
	defer beat.Stop()
	for {
		_ = rc.SetWriteDeadline(time.Now().Add(eventWriteTimeout))
		select {
		case <-r.Context().Done():
			return
		case m := <-sub.ch:
			writeOverflow(w, sub)
			p := e.principal(sub)
			writeMessage(w, m, p)
			for range len(sub.ch) {
				writeMessage(w, <-sub.ch, p)
			}
		case <-beat.C:
			c, ok := s.authenticate(discardWriter{}, r)
			if !ok {
				fmt.Fprint(w, "event: closed\ndata: {\"error\":\"the login of this stream is no longer valid: log in again\"}\n\n")
				_ = rc.Flush()
				return
			}
			e.setPrincipal(sub, c.p)
			fmt.Fprint(w, ": heartbeat\n\n")
		}
		if rc.Flush() != nil {
			return
		}
	}
}

// writeOverflow writes an overflow event when the stream lost messages.
func writeOverflow(w http.ResponseWriter, sub *subscriber) {
	if sub.lost.Swap(false) {
		fmt.Fprint(w, "event: overflow\ndata: {\"error\":\"events were lost: reload the data shown\"}\n\n")
	}
}

// writeMessage writes m as p may see it.
func writeMessage(w http.ResponseWriter, m *message, p Principal) {
	data := m.data
	if m.groups != nil {
		if data = trafficData(m, p); data == nil {
			return
		}
	} else if !p.may(m.cid) { // the user lost the partition since
		return
	}
	fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", m.id, m.topic, data)
}

// discardWriter is the ResponseWriter of a heartbeat's login check, whose
// error answer goes nowhere: the stream ends instead.
type discardWriter struct{}

func (discardWriter) Header() http.Header         { return http.Header{} }
func (discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (discardWriter) WriteHeader(int)             {}
