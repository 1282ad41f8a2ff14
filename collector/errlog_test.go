package collector

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestErrorLog checks that repeated errors are logged once per interval
// per exporter and reason, with the number suppressed in between.
func TestErrorLog(t *testing.T) {
	a, b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	type event struct {
		at       time.Duration
		exporter netip.Addr
		reason   string
	}
	type line struct {
		Exporter   string
		Reason     string
		Suppressed int
	}
	tests := []struct {
		name   string
		events []event
		want   []line
	}{
		{"first is logged", []event{{0, a, "truncated"}}, []line{{"192.0.2.1", "truncated", 0}}},
		{"repeats within the interval are suppressed", []event{{0, a, "truncated"}, {time.Second, a, "truncated"}, {59 * time.Second, a, "truncated"}},
			[]line{{"192.0.2.1", "truncated", 0}}},
		{"after the interval with the count", []event{{0, a, "truncated"}, {time.Second, a, "truncated"}, {2 * time.Second, a, "truncated"}, {61 * time.Second, a, "truncated"}},
			[]line{{"192.0.2.1", "truncated", 0}, {"192.0.2.1", "truncated", 2}}},
		{"exporters and reasons apart", []event{{0, a, "truncated"}, {0, b, "truncated"}, {0, a, "version"}, {time.Second, b, "truncated"}},
			[]line{{"192.0.2.1", "truncated", 0}, {"192.0.2.2", "truncated", 0}, {"192.0.2.1", "version", 0}}},
		{"socket errors have no exporter", []event{{0, netip.Addr{}, "read"}}, []line{{"", "read", 0}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			l := newErrorLog(slog.New(slog.NewJSONHandler(&buf, nil)), time.Minute)
			t0 := time.Unix(1_764_000_000, 0)
			for _, e := range tt.events {
				l.report(msgDecodeError, "w/0", e.exporter, e.reason, errors.New("bad"), t0.Add(e.at))
			}
			var got []line
			for dec := json.NewDecoder(&buf); dec.More(); {
				var m struct {
					Msg, Exporter, Reason, Err, Worker string
					Suppressed                         int
				}
				if err := dec.Decode(&m); err != nil {
					t.Fatal(err)
				}
				if m.Msg != msgDecodeError || m.Err != "bad" || m.Worker != "w/0" {
					t.Errorf("log line %+v lacks the message, worker or err", m)
				}
				got = append(got, line{m.Exporter, m.Reason, m.Suppressed})
			}
			if diff := cmp.Diff(got, tt.want); diff != "" {
				t.Errorf("log lines (-got +want):\n%s", diff)
			}
		})
	}
}
