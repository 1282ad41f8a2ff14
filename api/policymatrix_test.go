package api

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flowsentry/flowsentry/alert"
	"github.com/flowsentry/flowsentry/model"
	"github.com/flowsentry/flowsentry/plugin"
	"github.com/flowsentry/flowsentry/policy"
	"github.com/flowsentry/flowsentry/rates"
	"github.com/flowsentry/flowsentry/store"
)

// matrixFixture is a real policy manager and alert store over model m,
// with the default templates, a port line template (bytes_in 6/443) and,
// in partition 0, an override of "Packets In" on group 2.
type matrixFixture struct {
	pm        *policy.Manager
	st        *store.Store
	packetsIn policy.Policy
}

func newMatrixFixture(t testing.TB, m *model.Model) matrixFixture {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, t.TempDir(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	var cids []uint32
	for _, p := range m.Partitions {
		cids = append(cids, p.CID)
	}
	pm := policy.NewManager(st, nil)
	if err := pm.Load(ctx, nil, cids); err != nil {
		t.Fatal(err)
	}
	f := matrixFixture{pm: pm, st: st}
	for _, p := range pm.List() {
		if p.CID == 0 && p.Name == "Packets In" {
			f.packetsIn = p
		}
	}
	put := func(doc string) {
		t.Helper()
		p, err := policy.Decode([]byte(doc))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := pm.Put(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	put(fmt.Sprintf(`{"name":"PI two","cid":0,"family":"threshold","target":"traffic_groups","object_type":"TGRP","severity":7,"tgrp":2,"override":%d,"threshold_type":"packets_in","threshold":5}`, f.packetsIn.ID))
	put(`{"name":"HTTPS in","cid":0,"family":"port_threshold","target":"traffic_groups","object_type":"TGRP+PROTO+PORT","severity":3,"threshold_type":"bytes_in","threshold":1000,"proto":6,"port":443}`)
	return f
}

func newMatrixServer(t *testing.T) (*httptest.Server, matrixFixture) {
	t.Helper()
	ctx := context.Background()
	m := threeGroups(t)
	f := newMatrixFixture(t, m)
	now := time.Now()
	al := alert.Alert{ID: 1, Policy: f.packetsIn.ID, Key: "TGRP/1", Type: "threshold_exceeded", Earliest: now.Add(-10 * time.Minute),
		Latest: now.Add(-5 * time.Minute), LastCall: now.Add(-5 * time.Minute), Ended: now.Add(-5 * time.Minute),
		Fields: []alert.Field{{Name: "TGRP", Value: "1", Number: true}}}
	if err := f.st.SaveAlerts(ctx, []*alert.Alert{&al}); err != nil {
		t.Fatal(err)
	}
	exporter := netip.MustParseAddr("192.0.2.1")
	snap := &rates.Snapshot{Time: now, WindowSeconds: 10,
		Groups:     []rates.Stats{{Key: rates.Key{Kind: rates.KindGroup, Group: 1}, Cur: rates.Rates{PacketsIn: 1234}}},
		GroupPorts: []rates.Stats{{Key: rates.Key{Kind: rates.KindGroupPort, Group: 2, Proto: 6, Port: 443}, Cur: rates.Rates{BytesIn: 777}}},
		Exporters: []rates.Exporter{{Addr: exporter, Interfaces: []rates.Interface{
			{Stats: rates.Stats{Key: rates.Key{Kind: rates.KindInterface, Exporter: exporter, IfIndex: 7}, LastSeen: now, Cur: rates.Rates{PacketsIn: 40}}},
			{Stats: rates.Stats{Key: rates.Key{Kind: rates.KindInterface, Exporter: exporter, IfIndex: 8}, LastSeen: now.Add(-time.Hour)}},
		}}},
	}
	reg, errs := plugin.Load(examplesCopy(t))
	if len(errs) != 0 {
		t.Fatal(errs)
	}
	log := slog.New(slog.DiscardHandler)
	s, err := New(DefaultConfig(), withAuth(t, Deps{
		Gatherer: prometheus.NewRegistry(), Registerer: prometheus.NewRegistry(),
		Model: model.NewHolder(m), Rates: func() *rates.Snapshot { return snap }, Log: log,
		Alerting: &Alerting{
			Policies: f.pm, Plugins: reg, Instances: plugin.NewInstances(reg, &plugin.MemInstances{}),
			Annotator: http.NotFoundHandler(), Reader: emptyReader(t, log), AlertCounts: f.st.AlertCounts,
		},
	}))
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.srv.Handler)
	t.Cleanup(ts.Close)
	return ts, f
}

// cell returns the cell of row key on the column named col.
func (mp *MatrixPartition) cell(t *testing.T, key, col string) MatrixCell {
	t.Helper()
	for i, r := range mp.Rows {
		if r.Key != key {
			continue
		}
		for j, c := range mp.Columns {
			if c.Name == col {
				return mp.Cells[i][j]
			}
		}
		t.Fatalf("partition %d has no column %q: %+v", mp.CID, col, mp.Columns)
	}
	t.Fatalf("partition %d has no row %q", mp.CID, key)
	return MatrixCell{}
}

func TestPolicyMatrix(t *testing.T) {
	ts, f := newMatrixServer(t)
	var root Matrix
	getJSON(t, ts, "/api/v1/policy/matrix", "root", &root)
	if len(root.Partitions) != 2 {
		t.Fatalf("root sees %d partitions, want 2", len(root.Partitions))
	}
	zero := root.Partitions[0]
	var cols []string
	for _, c := range zero.Columns {
		cols = append(cols, c.Kind+":"+c.Name)
	}
	if got, want := fmt.Sprint(cols), "[groups:All traffic groups interfaces:All interfaces group:one group:two interface:192.0.2.1/7]"; got != want {
		t.Errorf("columns %s, want %s (the idle interface 8 left out)", got, want)
	}
	rate := func(v float64) *float64 { return &v }
	pi := "threshold/packets_in/0/0"
	cases := []struct {
		name, row, col string
		want           MatrixCell
	}{
		{"template fired on group one", pi, "one", MatrixCell{Rate: rate(1234), LastHour: 1, State: "red",
			Policy: &CellPolicy{ID: f.packetsIn.ID, Name: "Packets In", Kind: "template", Severity: 5, Source: policy.SourceAPI, Template: f.packetsIn.ID}}},
		{"override on group two", pi, "two", MatrixCell{Rate: rate(0), State: "green"}},
		{"template column sums", pi, "All traffic groups", MatrixCell{Rate: rate(1234), LastHour: 1, State: "red"}},
		{"interface rate, no interface policy", pi, "192.0.2.1/7", MatrixCell{Rate: rate(40)}},
		{"port line on group two", "port_threshold/bytes_in/6/443", "two", MatrixCell{Rate: rate(777), State: "green"}},
		{"alerts row without policy", "scan", "one", MatrixCell{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := zero.cell(t, c.row, c.col)
			if (got.Rate == nil) != (c.want.Rate == nil) || got.Rate != nil && *got.Rate != *c.want.Rate {
				t.Errorf("rate %v, want %v", got.Rate, c.want.Rate)
			}
			if got.LastHour != c.want.LastHour || got.PrevHour != c.want.PrevHour || got.State != c.want.State {
				t.Errorf("counts %d/%d state %q, want %d/%d %q", got.LastHour, got.PrevHour, got.State, c.want.LastHour, c.want.PrevHour, c.want.State)
			}
			if c.want.Policy != nil && (got.Policy == nil || *got.Policy != *c.want.Policy) {
				t.Errorf("policy %+v, want %+v", got.Policy, c.want.Policy)
			}
		})
	}
	if p := zero.cell(t, pi, "two").Policy; p == nil || p.Kind != "override" || p.Name != "PI two" || p.Template != f.packetsIn.ID {
		t.Errorf("group two: policy %+v, want the override PI two of template %d", p, f.packetsIn.ID)
	}
	parents := map[string]string{}
	for _, r := range zero.Rows {
		parents[r.Key] = r.Parent
	}
	if parents["ddos_synflood"] != "ddos_flood" || parents[pi] != "threshold" || parents["scan"] != "" {
		t.Errorf("parents: %v", parents)
	}

	t.Run("viewer", func(t *testing.T) {
		var m Matrix
		getJSON(t, ts, "/api/v1/policy/matrix", "viewer", &m)
		if len(m.Partitions) != 1 || m.Partitions[0].CID != 0 || m.Partitions[0].MayChange {
			t.Fatalf("viewer: %+v", m.Partitions)
		}
		if n := len(m.Partitions[0].Columns); n != 4 {
			t.Errorf("viewer sees %d columns, want 4 (no interfaces)", n)
		}
	})
	t.Run("manager", func(t *testing.T) {
		var m Matrix
		getJSON(t, ts, "/api/v1/policy/matrix?cid=5", "mgr5", &m)
		if len(m.Partitions) != 1 || !m.Partitions[0].MayChange {
			t.Fatalf("mgr5: %+v", m.Partitions)
		}
	})
	for _, e := range []exchange{
		{method: "GET", path: "/api/v1/policy/matrix?cid=0", user: "mgr5", code: 404, contains: []string{"no partition 0"}},
		{method: "GET", path: "/api/v1/policy/matrix?cid=x", user: "root", code: 400, contains: []string{"cid=\\\"x\\\" is not a number"}},
		{method: "GET", path: "/api/v1/policy/matrix", code: 401},
		{method: "GET", path: "/api/v1/families", user: "viewer", code: 200, contains: []string{`"name": "port_threshold"`, `"key": "threshold_type"`, `"lines": true`}},
	} {
		t.Run(e.path+" "+e.user, func(t *testing.T) { e.run(t, ts) })
	}
}

// BenchmarkPolicyMatrix computes the matrix of one partition with 200
// traffic groups, every family and a few port lines.
func BenchmarkPolicyMatrix(b *testing.B) {
	cfg := model.Config{Partitions: []model.PartitionConfig{{CID: 0, Name: "zero"}}}
	snap := &rates.Snapshot{Time: time.Now()}
	var counts []store.AlertCount
	for g := uint32(1); g <= 200; g++ {
		cfg.TrafficGroups = append(cfg.TrafficGroups, model.TrafficGroupConfig{ID: g, Name: fmt.Sprint("g", g), Partition: 0,
			CIDRs: []string{fmt.Sprintf("10.%d.%d.0/24", g/256, g%256)}})
		snap.Groups = append(snap.Groups, rates.Stats{Key: rates.Key{Kind: rates.KindGroup, Group: g}, Cur: rates.Rates{PacketsIn: float64(g)}})
		counts = append(counts, store.AlertCount{Policy: 1, Group: g, LastHour: int(g % 3), PrevHour: 1})
	}
	m, err := model.Build(cfg)
	if err != nil {
		b.Fatal(err)
	}
	f := newMatrixFixture(b, m)
	in := matrixInput{model: m, snap: snap, policies: f.pm.List(), counts: counts, now: time.Now()}
	p := Principal{Name: "root", Admin: true}
	var cells int
	b.ReportAllocs()
	for b.Loop() {
		mx := buildMatrix(in, p, nil)
		cells = len(mx.Partitions[0].Cells) * len(mx.Partitions[0].Columns)
	}
	b.ReportMetric(float64(cells), "cells")
}
