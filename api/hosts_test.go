package api

import (
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/flowsentry/flowsentry/model"
	"github.com/flowsentry/flowsentry/rates"
)

// TestGroupSort sorts the hosts and ports of a traffic group by each kind
// of counter: a scanner (many local endpoints, few bytes) tops the list
// by uniq_local_endpoint and not by bytes.
func TestGroupSort(t *testing.T) {
	host := func(ip string, cur rates.Rates) rates.Stats {
		return rates.Stats{Key: rates.Key{Kind: rates.KindHost, Group: 1, IP: netip.MustParseAddr(ip)}, Cur: cur}
	}
	snap := &rates.Snapshot{Hosts: []rates.Stats{
		host("10.0.0.1", rates.Rates{BytesIn: 9000, UniqLocalEndpoint: 1, UniqRemoteCIDR: 1}), // a busy server
		host("10.0.0.2", rates.Rates{BytesIn: 40, UniqLocalEndpoint: 250, UniqRemoteCIDR: 2}), // a scanner
		host("10.0.0.3", rates.Rates{BytesIn: 500, UniqLocalEndpoint: 3, UniqRemoteCIDR: 60}),
		{Key: rates.Key{Kind: rates.KindHost, Group: 2, IP: netip.MustParseAddr("10.9.0.1")}, Cur: rates.Rates{UniqLocalEndpoint: 999}},
	}}
	m, err := model.Build(model.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(DefaultConfig(), withAuth(t, Deps{
		Gatherer: prometheus.NewRegistry(), Registerer: prometheus.NewRegistry(), Model: model.NewHolder(m),
		Rates: func() *rates.Snapshot { return snap }, Log: slog.New(slog.DiscardHandler),
	}))
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.srv.Handler)
	t.Cleanup(ts.Close)
	for _, tc := range []struct {
		query string
		want  []string
	}{
		{"", []string{"10.0.0.1", "10.0.0.3", "10.0.0.2"}},
		{"?sort=uniq_local_endpoint", []string{"10.0.0.2", "10.0.0.3", "10.0.0.1"}},
		{"?sort=uniq_local_endpoint&limit=1", []string{"10.0.0.2"}},
		{"?sort=uniq_remote_cidr", []string{"10.0.0.3", "10.0.0.2", "10.0.0.1"}},
		{"?sort=bytes_in&order=asc", []string{"10.0.0.2", "10.0.0.3", "10.0.0.1"}},
	} {
		t.Run("hosts"+tc.query, func(t *testing.T) {
			body := exchange{method: "GET", path: "/api/v1/trafficgroups/1/hosts" + tc.query, user: "root", code: 200}.run(t, ts)
			var list []rates.Stats
			if err := json.Unmarshal([]byte(body), &list); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, st := range list {
				got = append(got, st.Key.IP.String())
			}
			if diff := cmp.Diff(got, tc.want); diff != "" {
				t.Errorf("hosts (-got +want):\n%s", diff)
			}
		})
	}
	for _, e := range []exchange{
		{path: "/api/v1/trafficgroups/1/hosts?sort=bogus", code: 400, contains: []string{
			"use one of packets_in, packets_out, bytes_in, bytes_out, new_conn, new_conn_out, updates, uniq_local_endpoint, uniq_remote_cidr"}},
		{path: "/api/v1/trafficgroups/1/ports?sort=uniq_local_endpoint", code: 400, contains: []string{
			"use one of packets_in, packets_out, bytes_in, bytes_out, new_conn, new_conn_out, updates\""}},
		{path: "/api/v1/trafficgroups/1/ports?sort=new_conn_out", code: 200},
		{path: "/api/v1/trafficgroups/1/hosts?order=up", code: 400, contains: []string{"use desc (highest first, the default) or asc"}},
	} {
		e.method, e.user = "GET", "root"
		t.Run(e.path, func(t *testing.T) { e.run(t, ts) })
	}
}
