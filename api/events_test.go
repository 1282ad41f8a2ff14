package api

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/flowsentry/flowsentry/action"
	"github.com/flowsentry/flowsentry/alert"
	"github.com/flowsentry/flowsentry/flow"
	"github.com/flowsentry/flowsentry/model"
	"github.com/flowsentry/flowsentry/plugin"
	"github.com/flowsentry/flowsentry/policy"
	"github.com/flowsentry/flowsentry/rates"
	"github.com/flowsentry/flowsentry/store"
)

// eventsServer is a real server on 127.0.0.1 with the live updates, the
// model of threeGroups, the users of newAuthServer, and a policy manager
// whose changes go to the hub.
type eventsServer struct {
	s   *Server
	e   *Events
	reg *prometheus.Registry
	url string
}

// newEventsServer starts it with cfg; tune adjusts the hub and tuneSrv
// the http.Server (when not nil) before the server starts.
func newEventsServer(t *testing.T, cfg Config, tune func(*Events), tuneSrv func(*http.Server)) *eventsServer {
	t.Helper()
	reg := prometheus.NewRegistry()
	e, err := NewEvents(reg)
	if err != nil {
		t.Fatal(err)
	}
	if tune != nil {
		tune(e)
	}
	plugins, errs := plugin.Load(examplesCopy(t))
	if len(errs) != 0 {
		t.Fatal(errs)
	}
	pm := policy.NewManager(&policy.MemStore{}, nil)
	pm.OnChange(e.Policies)
	if err := pm.Load(context.Background(), nil, []uint32{0, 5}); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	cfg.Address = "127.0.0.1:0"
	s, err := New(cfg, withAuth(t, Deps{
		Gatherer: reg, Registerer: reg, Model: model.NewHolder(threeGroups(t)),
		Rates: func() *rates.Snapshot { return &rates.Snapshot{} }, Log: log, Events: e,
		Alerting: &Alerting{
			Policies: pm, Plugins: plugins, Instances: plugin.NewInstances(plugins, &plugin.MemInstances{}),
			Annotator: http.NotFoundHandler(), Reader: emptyReader(t, log), Alerts: alertMap{},
		},
	}, store.User{Name: "g2", Role: store.RoleViewer, CIDs: []uint32{0}, Groups: []uint32{2}}))
	if err != nil {
		t.Fatal(err)
	}
	if tuneSrv != nil {
		tuneSrv(s.srv)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return &eventsServer{s: s, e: e, reg: reg, url: "http://" + s.Addr().String()}
}

// frame is one server-sent event, or a comment (event ":").
type frame struct {
	id, event, data string
}

// stream is an open GET /api/v1/events read by a real client.
type stream struct {
	resp   *http.Response
	frames chan frame
}

// open opens a stream of user (password "pw") with query; it fails the
// test unless the answer is 200.
func (es *eventsServer) open(t *testing.T, user, query string, header ...string) *stream {
	t.Helper()
	resp := es.get(t, user, query, header...)
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET /api/v1/events%s as %s: %d %s", query, user, resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q, want text/event-stream", ct)
	}
	st := &stream{resp: resp, frames: make(chan frame, 100000)}
	go func() {
		defer close(st.frames)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 1<<20)
		var f frame
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if f != (frame{}) {
					st.frames <- f
				}
				f = frame{}
			case strings.HasPrefix(line, ":"):
				f.event, f.data = ":", strings.TrimSpace(line[1:])
			default:
				k, v, _ := strings.Cut(line, ": ")
				switch k {
				case "id":
					f.id = v
				case "event":
					f.event = v
				case "data":
					f.data = v
				case "retry":
					f.event, f.data = "retry", v
				}
			}
		}
	}()
	t.Cleanup(func() { resp.Body.Close() })
	if f := st.next(t); f.event != "retry" {
		t.Fatalf("first frame %+v, want the retry hint", f)
	}
	return st
}

// get sends GET /api/v1/events with query as user.
func (es *eventsServer) get(t *testing.T, user, query string, header ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, es.url+"/api/v1/events"+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(user, "pw")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// next returns the next frame that is not a heartbeat; it fails the test
// after 5 s or when the stream ended.
func (st *stream) next(t *testing.T) frame {
	t.Helper()
	for {
		select {
		case f, ok := <-st.frames:
			if !ok {
				t.Fatal("the stream ended")
			}
			if f.event == ":" {
				continue
			}
			return f
		case <-time.After(5 * time.Second):
			t.Fatal("no event in 5 s")
		}
	}
}

// alertEvent is an alert transition of partition cid.
func alertEvent(op alert.Op, id uint64, cid uint32) alert.Event {
	t0 := time.Date(2026, 3, 14, 10, 0, 0, 0, time.UTC)
	return alert.Event{Op: op, Alert: alert.Alert{ID: id, Policy: 7, Type: "ddos_flood", CID: cid, CIDName: "p", Severity: 4, Key: "TGRP=1", Earliest: t0, Latest: t0.Add(time.Minute)}}
}

// trafficTick builds real rates with 10 packets a second into one host of
// each of groups 1, 2 and 3, and publishes the tick to e.
func trafficTick(t *testing.T, e *Events) {
	t.Helper()
	m := threeGroups(t)
	sh, err := rates.NewShards(rates.DefaultConfig(), 1, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	sh.SetModel(m)
	sh.Shard(0).SetModel(m)
	start := time.Date(2026, 3, 14, 10, 0, 0, 0, time.UTC).UnixNano()
	sh.Shard(0).Tick(start)
	sh.Merge(start)
	for g := byte(1); g <= 3; g++ {
		r := &flow.Record{Start: start, End: start, Src: netip.MustParseAddr("198.51.100.1"), Dst: netip.AddrFrom4([4]byte{10, g, 0, 9}),
			SrcPort: 40000, DstPort: 443, Packets: 10 * uint64(g), Bytes: 1000, SamplingRate: 1, Proto: flow.ProtoTCP, TCPFlags: flow.TCPAck,
			Exporter: netip.MustParseAddr("192.0.2.7"), InIf: 3}
		var c model.Class
		m.Classify(r, &c)
		sh.Shard(0).AddClass(r, &c)
	}
	now := start + int64(time.Second)
	sh.Shard(0).Tick(now)
	sh.Merge(now)
	e.Traffic(now, sh)
}

// TestEventTopics reads each topic from its publisher through a real
// stream; the policies come from the API's POST through the manager's
// hook.
func TestEventTopics(t *testing.T) {
	es := newEventsServer(t, DefaultConfig(), nil, nil)
	for _, tc := range []struct {
		topic   string
		publish func(t *testing.T)
		want    []string
	}{
		{"alerts", func(*testing.T) { es.e.Alert(alertEvent(alert.OpCreate, 42, 0)) },
			[]string{`"op":"CREATE"`, `"id":42`, `"alert_type":"ddos_flood"`, `"cid":0`, `"severity":4`, `"earliest":"2026-03-14T10:00:00Z"`}},
		{"actions", func(*testing.T) {
			es.e.Action(action.Action{ID: 9, Alert: 42, Policy: 7, Instance: 3, Plugin: "mail", State: action.StateWaiting, Token: "secret"}, 0, 0)
		}, []string{`"id":9`, `"alert":42`, `"state":"waiting_approval"`, `"plugin":"mail"`, `"cid":0`}},
		{"policies", func(t *testing.T) {
			body := `{"name":"web","cid":0,"family":"port_threshold","target":"traffic_groups","object_type":"TGRP+PROTO+PORT","threshold_type":"bits_in","threshold":8000,"proto":6,"port":80,"severity":3,"actions":[]}`
			exchange{method: "POST", path: "/api/v1/policies", user: "root", body: body, code: 201}.run(t, &httptest.Server{URL: es.url})
		}, []string{`"op":"created"`, `"name":"web"`, `"family":"port_threshold"`, `"cid":0`}},
		{"traffic", func(t *testing.T) { trafficTick(t, es.e) },
			[]string{`"time":"2026-03-14T10:00:01Z"`, `"id":1,"name":"one","cid":0,"cur":{"packets_in":`, `"id":2,"name":"two"`, `"id":3,"name":"three","cid":5`}},
	} {
		t.Run(tc.topic, func(t *testing.T) {
			st := es.open(t, "root", "?topics="+tc.topic)
			tc.publish(t)
			f := st.next(t)
			if f.event != tc.topic || f.id == "" || !json.Valid([]byte(f.data)) {
				t.Fatalf("got %+v, want a %s event with an id and JSON data", f, tc.topic)
			}
			for _, w := range tc.want {
				if !strings.Contains(f.data, w) {
					t.Errorf("data %s lacks %s", f.data, w)
				}
			}
			if strings.Contains(f.data, "secret") {
				t.Errorf("data %s shows the action's token", f.data)
			}
		})
	}
}

// TestEventIsolation checks that a stream gets only the events of its
// user's partitions and groups: each user's first event is the one it may
// see, published after those it may not.
func TestEventIsolation(t *testing.T) {
	es := newEventsServer(t, DefaultConfig(), nil, nil)
	users := []struct {
		name, want string
		groups     []string
	}{
		{"viewer", `"id":100`, []string{`"name":"one"`, `"name":"two"`}},
		{"mgr5", `"id":105`, []string{`"name":"three"`}},
		{"g2", `"id":100`, []string{`"name":"two"`}},
		{"root", `"id":105`, []string{`"name":"one"`, `"name":"two"`, `"name":"three"`}},
	}
	streams := map[string]*stream{}
	for _, u := range users {
		streams[u.name] = es.open(t, u.name, "")
	}
	es.e.Alert(alertEvent(alert.OpCreate, 105, 5))
	es.e.Alert(groupEvent(100, 2))
	trafficTick(t, es.e)
	for _, u := range users {
		t.Run(u.name, func(t *testing.T) {
			st := streams[u.name]
			if first := st.next(t); first.event != "alerts" || !strings.Contains(first.data, u.want) {
				t.Fatalf("first event %+v, want the alert %s", first, u.want)
			}
			if u.name == "root" { // root sees both alerts
				if f := st.next(t); !strings.Contains(f.data, `"id":100`) {
					t.Fatalf("second event %+v, want alert 100", f)
				}
			}
			tr := st.next(t)
			if tr.event != "traffic" {
				t.Fatalf("got %+v, want traffic", tr)
			}
			var ev TrafficEvent
			if err := json.Unmarshal([]byte(tr.data), &ev); err != nil {
				t.Fatal(err)
			}
			if len(ev.Groups) != len(u.groups) {
				t.Errorf("groups %s, want only %v", tr.data, u.groups)
			}
			// Only admins see the interfaces, as the exporters.
			if u.name == "root" {
				if len(ev.Interfaces) != 1 || ev.Interfaces[0].Exporter.String() != "192.0.2.7" || ev.Interfaces[0].IfIndex != 3 || ev.Interfaces[0].Cur.PacketsIn == 0 {
					t.Errorf("root's interfaces %+v, want interface 3 of 192.0.2.7 with its packets", ev.Interfaces)
				}
			} else if len(ev.Interfaces) != 0 || strings.Contains(tr.data, "interfaces") {
				t.Errorf("%s sees interfaces: %s", u.name, tr.data)
			}
			for _, g := range u.groups {
				if !strings.Contains(tr.data, g) {
					t.Errorf("groups %s lack %s", tr.data, g)
				}
			}
		})
	}
	// g2 sees only the alerts of its group 2: not those of group 1 nor
	// those of no group (an interface's); viewer sees them all.
	es.e.Alert(groupEvent(101, 1))
	es.e.Alert(alertEvent(alert.OpCreate, 102, 0))
	es.e.Alert(groupEvent(103, 2))
	if f := streams["g2"].next(t); !strings.Contains(f.data, `"id":103`) {
		t.Errorf("g2's next event %+v, want alert 103 of its group", f)
	}
	if f := streams["viewer"].next(t); !strings.Contains(f.data, `"id":101`) {
		t.Errorf("viewer's next event %+v, want alert 101", f)
	}
	// The same for the actions of those alerts.
	streams["g2"] = es.open(t, "g2", "?topics=actions")
	es.e.Action(action.Action{ID: 31, Alert: 101}, 0, 1)
	es.e.Action(action.Action{ID: 32, Alert: 102}, 0, 0)
	es.e.Action(action.Action{ID: 33, Alert: 103}, 0, 2)
	if f := streams["g2"].next(t); f.event != "actions" || !strings.Contains(f.data, `"id":33`) {
		t.Errorf("g2's first action event %+v, want action 33 of its group's alert", f)
	}
}

// groupEvent is the CREATE of alert id of partition 0 about traffic group
// group (TARGET_TG).
func groupEvent(id uint64, group uint32) alert.Event {
	ev := alertEvent(alert.OpCreate, id, 0)
	ev.Alert.Fields = []alert.Field{{Name: "TARGET_TG", Value: strconv.FormatUint(uint64(group), 10), Number: true}}
	return ev
}

// TestEventOverflow publishes faster than a one-message queue drains: the
// stream gets an overflow event, and what it got plus what it lost is
// everything published.
func TestEventOverflow(t *testing.T) {
	es := newEventsServer(t, DefaultConfig(), func(e *Events) { e.buffer = 1 }, nil)
	st := es.open(t, "viewer", "?topics=alerts")
	const n = 2000
	for i := range n {
		es.e.Alert(alertEvent(alert.OpUpdate, uint64(i+1), 0))
	}
	es.e.Alert(alertEvent(alert.OpDelete, n+1, 0)) // the end marker; the stream may lose it too
	got, overflows := 0, 0
	deadline := time.After(5 * time.Second)
read:
	for {
		select {
		case f := <-st.frames:
			switch {
			case f.event == "overflow":
				overflows++
			case f.event == "alerts" && strings.Contains(f.data, `"DELETE"`):
				break read
			case f.event == "alerts":
				got++
			}
		case <-deadline:
			break read
		}
	}
	dropped := int(testutil.ToFloat64(es.e.dropped.WithLabelValues("alerts", "overflow")))
	if overflows == 0 || dropped == 0 {
		t.Fatalf("%d overflow events, %d dropped: want both above 0 with a queue of 1", overflows, dropped)
	}
	if got+dropped != n && got+dropped != n+1 {
		t.Errorf("got %d + dropped %d, want %d published", got, dropped, n)
	}
	t.Logf("%d events received, %d dropped, %d overflow events", got, dropped, overflows)
}

// TestEventLastID checks that a page reconnecting after events were
// published is told to reload, and one that missed nothing is not.
func TestEventLastID(t *testing.T) {
	es := newEventsServer(t, DefaultConfig(), nil, nil)
	st := es.open(t, "viewer", "?topics=alerts")
	es.e.Alert(alertEvent(alert.OpCreate, 1, 0))
	last := st.next(t).id
	st = es.open(t, "viewer", "?topics=alerts", "Last-Event-ID", last)
	es.e.Alert(alertEvent(alert.OpCreate, 2, 0))
	if f := st.next(t); f.event != "alerts" {
		t.Fatalf("got %+v after reconnecting with the latest ID, want the next alert", f)
	}
	st = es.open(t, "viewer", "?topics=alerts", "Last-Event-ID", last)
	if f := st.next(t); f.event != "overflow" {
		t.Fatalf("got %+v after reconnecting with an old ID, want overflow", f)
	}
}

// TestEventStreamCap checks the 503 over the most streams and the topics
// parameter.
func TestEventStreamCap(t *testing.T) {
	es := newEventsServer(t, DefaultConfig(), func(e *Events) { e.max = 2 }, nil)
	es.open(t, "viewer", "")
	es.open(t, "root", "")
	for _, tc := range []struct {
		name, query string
		code        int
		want        string
	}{
		{"bad topic", "?topics=alerts,weather", 400, `\"weather\" is not a topic; use a comma-separated list of alerts, actions, policies, traffic`},
		{"third stream", "", 503, "2 live update streams are open"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := es.get(t, "viewer", tc.query)
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.code || !strings.Contains(string(body), tc.want) || resp.Header.Get("Content-Type") != "application/json" {
				t.Fatalf("%d %s, want %d with %s", resp.StatusCode, body, tc.code, tc.want)
			}
		})
	}
	if n := testutil.ToFloat64(es.e.refused); n != 1 {
		t.Errorf("flowsentry_api_events_refused_total %v, want 1", n)
	}
}

// TestEventHeartbeat checks the heartbeat comment, and that the stream
// ends at the heartbeat after its user is deleted.
func TestEventHeartbeat(t *testing.T) {
	es := newEventsServer(t, DefaultConfig(), func(e *Events) { e.heartbeat = 50 * time.Millisecond }, nil)
	st := es.open(t, "viewer", "")
	select {
	case f := <-st.frames:
		if f.event != ":" || f.data != "heartbeat" {
			t.Fatalf("got %+v, want the heartbeat", f)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("no heartbeat in 2 s")
	}
	exchange{method: "DELETE", path: "/api/v1/users/viewer", user: "root", code: 204}.run(t, &httptest.Server{URL: es.url})
	if f := st.next(t); f.event != "closed" || !strings.Contains(f.data, "log in again") {
		t.Fatalf("got %+v after the user was deleted, want closed", f)
	}
}

// TestEventStreamTimeouts keeps streams open past the server's read and
// write timeouts, and fills the connection cap with them: they are busy,
// so a new connection is refused rather than one of them evicted.
func TestEventStreamTimeouts(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxConnections, cfg.MaxConnectionsPerClient = minConnections, 0
	es := newEventsServer(t, cfg, func(e *Events) { e.heartbeat = 50 * time.Millisecond },
		func(srv *http.Server) { srv.ReadTimeout, srv.WriteTimeout = 2*time.Second, 3*time.Second })
	// One stream first, so that the others find the password checked
	// (bcrypt) in the cache, well within the write timeout.
	streams := []*stream{es.open(t, "viewer", "?topics=alerts")}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range minConnections - 1 {
		wg.Go(func() {
			st := es.open(t, "viewer", "?topics=alerts")
			mu.Lock()
			streams = append(streams, st)
			mu.Unlock()
		})
	}
	wg.Wait()
	waitOpen(t, es.s, minConnections)
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	if resp, err := client.Get(es.url + "/healthz"); err == nil {
		resp.Body.Close()
		t.Fatalf("GET /healthz got %d with every connection streaming; want the connection refused", resp.StatusCode)
	}
	time.Sleep(3500 * time.Millisecond) // past both timeouts (long enough for bcrypt under -race)
	es.e.Alert(alertEvent(alert.OpCreate, 7, 0))
	for i, st := range streams {
		if f := st.next(t); f.event != "alerts" {
			t.Fatalf("stream %d: got %+v, want the alert", i, f)
		}
	}
	if n := testutil.ToFloat64(es.s.conns.evicted.WithLabelValues(reasonMax)); n != 0 {
		t.Errorf("%v streams evicted, want 0", n)
	}
}
