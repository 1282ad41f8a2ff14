package rates

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"sync"
	"testing"

	"github.com/flowsentry/flowsentry/flow"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// TestSnapshotImmutable runs a reader goroutine against the writer (run it
// with -race) and checks that a published snapshot never changes.
func TestSnapshotImmutable(t *testing.T) {
	e, _ := newTestEngine(t, DefaultConfig())
	if s := e.Snapshot(); s == nil || len(s.Groups) != 0 {
		t.Fatalf("initial snapshot %+v, want empty", s)
	}
	e.Add(rec("10.1.0.10", "203.0.113.5", via(1, 2)))
	e.AddCounters(&flow.IfCounters{Time: at(0.5), Exporter: exporterA, IfIndex: 1, InOctets: 1})
	e.Tick(at(1))
	first := e.Snapshot()
	frozen, err := json.Marshal(first)
	if err != nil {
		t.Fatal(err)
	}

	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			s := e.Snapshot()
			var n uint64
			for _, g := range s.Groups {
				n += g.Totals.PacketsOut
			}
			for _, x := range s.Exporters {
				for _, i := range x.Interfaces {
					if i.Counters != nil {
						n += i.Counters.InOctets
					}
				}
			}
			_ = n
		}
	})
	for i := range 2000 {
		sec := 1 + float64(i)/100
		r := rec("10.1.0.10", fmt.Sprintf("203.0.%d.5", i%200), via(1, 2), span(sec, sec))
		e.Add(r)
		e.AddCounters(&flow.IfCounters{Time: at(sec), Exporter: exporterA, IfIndex: 1, InOctets: uint64(i + 2)})
		if i%10 == 0 {
			e.Tick(at(sec))
		}
	}
	e.Tick(at(21))
	close(done)
	wg.Wait()

	after, err := json.Marshal(first)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(after), string(frozen)); diff != "" {
		t.Errorf("published snapshot changed (-now +then):\n%s", diff)
	}
	if got := allStats(e.Snapshot())[kGroup(1)].Totals.PacketsOut; got != 2001 {
		t.Errorf("latest snapshot: %d packets out, want 2001", got)
	}
}

// TestKeyJSON checks that keys carry the OBJECT_TYPE and only its fields.
func TestKeyJSON(t *testing.T) {
	ip := netip.MustParseAddr("10.1.0.10")
	cases := []struct {
		key  Key
		want string
	}{
		{Key{Kind: KindGroup, Group: 0}, `{"object_type":"TGRP","tgrp":0}`},
		{Key{Kind: KindGroupPort, Group: 1, Proto: 6, Port: 0}, `{"object_type":"TGRP+PROTO+PORT","tgrp":1,"proto":6,"port":0}`},
		{Key{Kind: KindHost, Group: 1, IP: ip}, `{"object_type":"TGRP+IP","tgrp":1,"ip":"10.1.0.10"}`},
		{Key{Kind: KindInterface, Exporter: exporterA, IfIndex: 3}, `{"object_type":"EXPORTER_ADDR+IFINDEX","exporter_addr":"192.0.2.1","ifindex":3}`},
		{Key{Kind: KindInterfacePort, Exporter: exporterA, IfIndex: 3, Proto: 17, Port: 53}, `{"object_type":"EXPORTER_ADDR+IFINDEX+PROTO+PORT","exporter_addr":"192.0.2.1","ifindex":3,"proto":17,"port":53}`},
	}
	for _, tc := range cases {
		t.Run(tc.key.Kind.String(), func(t *testing.T) {
			got, err := json.Marshal(tc.key)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(string(got), tc.want); diff != "" {
				t.Errorf("JSON (-got +want):\n%s", diff)
			}
		})
	}
}

// TestSnapshotJSON checks the field names the API serves.
func TestSnapshotJSON(t *testing.T) {
	e, _ := newTestEngine(t, DefaultConfig())
	e.Add(rec("10.1.0.10", "203.0.113.5", via(1, 0), counts(20, 2000)))
	e.Tick(at(1))
	b, err := json.Marshal(e.Snapshot())
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Time          string
		WindowSeconds int `json:"window_seconds"`
		Groups        []map[string]json.RawMessage
		Exporters     []struct {
			Records    map[string]float64
			Interfaces []map[string]json.RawMessage
		}
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got.WindowSeconds != 10 || len(got.Groups) != 1 || len(got.Exporters) != 1 || len(got.Exporters[0].Interfaces) != 1 {
		t.Fatalf("snapshot JSON shape: %s", b)
	}
	fields := func(m map[string]json.RawMessage) []string {
		var out []string
		for k := range m {
			out = append(out, k)
		}
		return out
	}
	sorted := cmpopts.SortSlices(func(a, b string) bool { return a < b })
	if diff := cmp.Diff(fields(got.Groups[0]), []string{"key", "name", "cid", "first_seen", "last_seen", "cur", "avg", "peak", "totals"}, sorted); diff != "" {
		t.Errorf("object fields (-got +want):\n%s", diff)
	}
	if diff := cmp.Diff(fields(got.Exporters[0].Interfaces[0]), []string{"key", "name", "cid", "first_seen", "last_seen", "cur", "avg", "peak", "totals"}, sorted); diff != "" {
		t.Errorf("interface fields (-got +want):\n%s", diff)
	}
	var cur map[string]float64
	if err := json.Unmarshal(got.Groups[0]["cur"], &cur); err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{
		"packets_in": 0, "packets_out": 2, "bytes_in": 0, "bytes_out": 200, "new_conn": 0, "new_conn_out": 0.1,
		"updates": 0.1, "uniq_local_endpoint": 0, "uniq_remote_cidr": 0,
	}
	if diff := cmp.Diff(cur, want); diff != "" {
		t.Errorf("cur (-got +want):\n%s", diff)
	}
	if diff := cmp.Diff(got.Exporters[0].Records, map[string]float64{"cur": 0.1, "avg": 0.1, "peak": 0.1, "total": 1}); diff != "" {
		t.Errorf("exporter records (-got +want):\n%s", diff)
	}
}
