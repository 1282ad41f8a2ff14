package api

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/flowsentry/flowsentry/alert"
	"github.com/flowsentry/flowsentry/collector/sflow"
	"github.com/flowsentry/flowsentry/flow"
	"github.com/flowsentry/flowsentry/internal/testcaptures"
	"github.com/flowsentry/flowsentry/model"
	"github.com/flowsentry/flowsentry/rates"
	"github.com/flowsentry/flowsentry/samples"
)

// alertMap is an alert store of fixed alerts.
type alertMap map[uint64]alert.Alert

func (m alertMap) Get(_ context.Context, id uint64) (alert.Alert, error) {
	if a, ok := m[id]; ok {
		return a, nil
	}
	return alert.Alert{}, alert.ErrNotFound
}

// victim is the SYN flood's target in the sFlow capture.
var victim = netip.MustParseAddr("10.10.10.10")

// ddosAlert returns a DDoS alert of partition cid on target.
func ddosAlert(id uint64, cid uint32, target string) alert.Alert {
	return alert.Alert{ID: id, Type: "ddos_synflood", CID: cid, Fields: []alert.Field{
		{Name: "TARGET_IP", Value: target}, {Name: "TARGET_MASK", Value: "8", Number: true}}}
}

// newSamplesServer returns a server whose sample store holds the headers
// pmacct's sFlow export of a SYN flood sent to its victim, or no store
// when withStore is false.
func newSamplesServer(t *testing.T, withStore bool) *httptest.Server {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	m, err := model.Build(model.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	reader := emptyReader(t, log)
	deps := Deps{
		Gatherer: prometheus.NewRegistry(), Registerer: prometheus.NewRegistry(),
		Model: model.NewHolder(m), Rates: func() *rates.Snapshot { return &rates.Snapshot{} }, Log: log,
		Alerting: &Alerting{
			Annotator: http.NotFoundHandler(), Reader: reader,
			Alerts: alertMap{
				1: ddosAlert(1, 0, victim.String()),
				2: {ID: 2, Type: "threshold_exceeded", CID: 0, Fields: []alert.Field{{Name: "OBJECT_TYPE", Value: "TGRP"}}},
				3: ddosAlert(3, 0, "10.10.10.99"),
				4: ddosAlert(4, 0, "::ffff:"+victim.String()),
			},
		},
	}
	if withStore {
		store, err := samples.New(samples.DefaultConfig(), prometheus.NewRegistry())
		if err != nil {
			t.Fatal(err)
		}
		now := time.Date(2026, 11, 25, 21, 45, 31, 0, time.UTC)
		store.Watch(victim, now)
		store.Watch(netip.MustParseAddr("10.10.10.99"), now)
		frames, _ := testcaptures.Frames(t, "flow-exports/derived/pmacct-sflow-s10-synflood.pcap")
		d := &sflow.Decoder{Samples: store}
		for i, f := range frames {
			if _, _, p, ok := flow.UDPPayload(f, flow.LinkEthernet); ok {
				if _, err := d.Decode(now.Add(time.Duration(i)*time.Millisecond).UnixNano(), p, &flow.Batch{}); err != nil {
					t.Fatal(err)
				}
			}
		}
		deps.Samples = store
	}
	s, err := New(DefaultConfig(), withAuth(t, deps))
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.srv.Handler)
	t.Cleanup(ts.Close)
	return ts
}

// getPCAP fetches path as user and checks it is a pcap download named
// filename; it returns the body.
func getPCAP(t *testing.T, ts *httptest.Server, path, user, filename string) []byte {
	t.Helper()
	req, err := http.NewRequest("GET", ts.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(user, "pw")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s as %s: %d: %s", path, user, resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/vnd.tcpdump.pcap" {
		t.Errorf("Content-Type %q", ct)
	}
	if cd, want := resp.Header.Get("Content-Disposition"), "attachment; filename="+filename; cd != want {
		t.Errorf("Content-Disposition %q, want %q", cd, want)
	}
	return body
}

// TestAlertPCAP checks GET /api/v1/alerts/{id}/pcap: the pcap of a DDoS
// alert's target, its errors and its user checks.
func TestAlertPCAP(t *testing.T) {
	ts := newSamplesServer(t, true)
	t.Run("errors", func(t *testing.T) {
		for _, e := range []exchange{
			{method: "GET", path: "/api/v1/alerts/1/pcap", code: 401, contains: []string{"basic auth"}},
			{method: "GET", path: "/api/v1/alerts/1/pcap", user: "nobody", code: 401, contains: []string{"bad user name or password"}},
			{method: "GET", path: "/api/v1/alerts/1/pcap", user: "mgr5", code: 404, contains: []string{"no alert 1 that user mgr5 may see"}},
			{method: "GET", path: "/api/v1/alerts/x/pcap", user: "root", code: 400, contains: []string{`alert ID \"x\" is not a number`}},
			{method: "GET", path: "/api/v1/alerts/99/pcap", user: "root", code: 404, contains: []string{"no alert 99"}},
			{method: "GET", path: "/api/v1/alerts/2/pcap", user: "root", code: 404, contains: []string{"not a DDoS alert", "TARGET_IP"}},
			{method: "GET", path: "/api/v1/alerts/3/pcap", user: "root", code: 404,
				contains: []string{"no sampled packets were kept for this alert: packet headers are kept only for sFlow sources"}},
		} {
			t.Run(e.path+" as "+e.user, func(t *testing.T) { e.run(t, ts) })
		}
	})
	for _, tc := range []struct{ path, user, filename string }{
		{"/api/v1/alerts/1/pcap", "root", "alert-1.pcap"},
		{"/api/v1/alerts/1/pcap", "viewer", "alert-1.pcap"},
		{"/api/v1/alerts/4/pcap", "viewer", "alert-4.pcap"}, // an IPv4-mapped TARGET_IP
	} {
		t.Run(tc.path+" as "+tc.user, func(t *testing.T) {
			body := getPCAP(t, ts, tc.path, tc.user, tc.filename)
			r, err := pcapgo.NewReader(bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for {
				data, _, err := r.ReadPacketData()
				if err != nil {
					break
				}
				n++
				p := gopacket.NewPacket(data, r.LinkType(), gopacket.Default)
				ip, _ := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
				tcp, _ := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
				if ip == nil || !ip.DstIP.Equal(victim.AsSlice()) || tcp == nil || !tcp.SYN {
					t.Fatalf("packet %d is not a SYN to %s: %v", n, victim, p)
				}
			}
			if n != samples.DefaultConfig().PerTarget {
				t.Errorf("%d packets, want %d", n, samples.DefaultConfig().PerTarget)
			}
		})
	}
	// End to end: tshark reads what the API served.
	t.Run("tshark", func(t *testing.T) {
		tshark, err := exec.LookPath("tshark")
		if err != nil {
			t.Fatal("tshark is not installed: run scripts/test.sh, which installs it (apt-get install tshark)")
		}
		file := filepath.Join(t.TempDir(), "alert-1.pcap")
		if err := os.WriteFile(file, getPCAP(t, ts, "/api/v1/alerts/1/pcap", "root", "alert-1.pcap"), 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(tshark, "-r", file, "-T", "fields", "-e", "ip.dst", "-e", "tcp.dstport", "-e", "tcp.flags.syn").Output()
		if err != nil {
			t.Fatalf("tshark -r %s: %v", file, err)
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		for i, l := range lines {
			if l != "10.10.10.10\t25565\t1" && l != "10.10.10.10\t25565\tTrue" {
				t.Fatalf("tshark line %d: %q, want a SYN to 10.10.10.10:25565", i, l)
			}
		}
		if len(lines) != samples.DefaultConfig().PerTarget {
			t.Errorf("tshark read %d packets, want %d", len(lines), samples.DefaultConfig().PerTarget)
		}
	})
}

// TestAlertPCAPWithoutStore checks the answer of a server that keeps no
// packet headers.
func TestAlertPCAPWithoutStore(t *testing.T) {
	ts := newSamplesServer(t, false)
	exchange{method: "GET", path: "/api/v1/alerts/1/pcap", user: "root", code: 404,
		contains: []string{"no sampled packets were kept for this alert", "keeps no packet headers"}}.run(t, ts)
}
