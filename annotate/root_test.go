package annotate

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// t0 is the start of the test action's latest call.
var t0 = time.Date(2015, 12, 3, 21, 24, 3, 0, time.UTC)

const (
	alertID  = 1004
	actionID = 7
	token    = "0123456789abcdef0123456789abcdef"
)

// window is the manual's 300 seconds after a call.
const window = 300 * time.Second

// grant is the test action's grant: token issued at t0.
func grant(state AlertState) Grant {
	return Grant{Token: token, Until: t0.Add(window), Alert: state}
}

// fill stores n values of each of keys for an action, as earlier
// requests (or an earlier run of the server) would have.
func fill(t *testing.T, s Store, action uint64, keys []string, n int) {
	t.Helper()
	var vals []Value
	for _, k := range keys {
		for i := range n {
			vals = append(vals, Value{Alert: alertID, Action: action, Key: k, Value: uint64(i + 1), Time: t0})
		}
	}
	if err := s.AddValues(context.Background(), vals); err != nil {
		t.Fatal(err)
	}
}

// keyNames returns n distinct key names with a prefix.
func keyNames(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%03d", prefix, i)
	}
	return out
}

// request is a valid request for the test action with values key=1 for
// each key.
func request(keys ...string) Request {
	r := Request{Token: token, Alert: alertID, Action: actionID, Values: map[string]uint64{}}
	for _, k := range keys {
		r.Values[k] = 1
	}
	return r
}

func TestAnnotate(t *testing.T) {
	cases := []struct {
		name   string
		tokens StaticTokens
		setup  func(t *testing.T, s *MemoryStore)
		req    Request
		at     time.Time
		// want is the expected message; "" for success.
		want       string
		wantStored int
	}{
		{
			name:       "stored within the window",
			req:        request("ip_rcv", "tcp_total_drop"),
			at:         t0.Add(10 * time.Second),
			wantStored: 2,
		},
		{
			name:       "last instant of the window",
			req:        request("ip_rcv"),
			at:         t0.Add(window),
			wantStored: 1,
		},
		{
			name:       "ended alert within the window of its DELETE call",
			tokens:     StaticTokens{{alertID, actionID}: grant(AlertEnded)},
			req:        request("ip_rcv"),
			at:         t0.Add(time.Minute),
			wantStored: 1,
		},
		{
			name: "window passed while the alert is open",
			req:  request("ip_rcv"),
			at:   t0.Add(window + time.Nanosecond),
			want: "The alert action ID/AID was not found",
		},
		{
			name:   "no such action",
			tokens: StaticTokens{},
			req:    request("ip_rcv"),
			at:     t0,
			want:   "The alert action ID/AID was not found",
		},
		{
			name:   "no token issued yet (waiting for approval)",
			tokens: StaticTokens{{alertID, actionID}: {Until: t0.Add(window)}},
			req:    request("ip_rcv"),
			at:     t0,
			want:   "The alert action ID/AID was not found",
		},
		{
			name: "token mismatch",
			req:  Request{Token: "ffff", Alert: alertID, Action: actionID, Values: map[string]uint64{"ip_rcv": 1}},
			at:   t0,
			want: "Update rejected: token mismatch, or the alert has timed out",
		},
		{
			name: "token mismatch after the window",
			req:  Request{Token: "ffff", Alert: alertID, Action: actionID, Values: map[string]uint64{"ip_rcv": 1}},
			at:   t0.Add(time.Hour),
			want: "Update rejected: token mismatch, or the alert has timed out",
		},
		{
			name:   "alert gone",
			tokens: StaticTokens{{alertID, actionID}: grant(AlertMissing)},
			req:    request("ip_rcv"),
			at:     t0,
			want:   "The alert was not found in memory",
		},
		{
			name:   "alert ended and window passed",
			tokens: StaticTokens{{alertID, actionID}: grant(AlertEnded)},
			req:    request("ip_rcv"),
			at:     t0.Add(window + time.Second),
			want:   "The alert is too old and cannot be updated",
		},
		{
			name:       "128th key of the action",
			setup:      func(t *testing.T, s *MemoryStore) { fill(t, s, actionID, keyNames("k", 127), 1) },
			req:        request("new"),
			at:         t0,
			wantStored: 1,
		},
		{
			name:  "129th key of the action",
			setup: func(t *testing.T, s *MemoryStore) { fill(t, s, actionID, keyNames("k", 128), 1) },
			req:   request("new"),
			at:    t0,
			want:  "Too many keys for this alert action (max: 128 per action)",
		},
		{
			name:       "existing key of an action at 128 keys",
			setup:      func(t *testing.T, s *MemoryStore) { fill(t, s, actionID, keyNames("k", 128), 1) },
			req:        request("k000"),
			at:         t0,
			wantStored: 1,
		},
		{
			name: "129 keys in one request",
			req:  request(keyNames("k", 129)...),
			at:   t0,
			want: "Too many keys for this alert action (max: 128 per action)",
		},
		{
			name:       "770th value of a key",
			setup:      func(t *testing.T, s *MemoryStore) { fill(t, s, actionID, []string{"ip_rcv"}, 769) },
			req:        request("ip_rcv"),
			at:         t0,
			wantStored: 1,
		},
		{
			name:  "771st value of a key",
			setup: func(t *testing.T, s *MemoryStore) { fill(t, s, actionID, []string{"ip_rcv"}, 770) },
			req:   request("other", "ip_rcv"),
			at:    t0,
			want:  "Too many values for this key (max: 770 per key)",
		},
		{
			name: "513th key of the alert",
			setup: func(t *testing.T, s *MemoryStore) {
				for a := uint64(1); a <= 4; a++ {
					fill(t, s, a, keyNames("k", 128), 1)
				}
			},
			tokens: StaticTokens{{alertID, 5}: {Token: token, Until: t0.Add(window)}},
			req:    Request{Token: token, Alert: alertID, Action: 5, Values: map[string]uint64{"k000": 1}},
			at:     t0,
			want:   "Too many keys for this alert (max: 512 per alert)",
		},
		{
			name: "21,000th value of the alert",
			setup: func(t *testing.T, s *MemoryStore) {
				fill(t, s, 1, keyNames("k", 27), 770)
				fill(t, s, 2, keyNames("k", 1), 209)
			},
			req:        request("ip_rcv"),
			at:         t0,
			wantStored: 1,
		},
		{
			name:  "21,001st value of the alert",
			setup: func(t *testing.T, s *MemoryStore) { fill(t, s, 1, keyNames("k", 28), 750) },
			req:   request("ip_rcv"),
			at:    t0,
			want:  "Too many values for this alert (max: 21,000 per alert)",
		},
		{
			name:  "store failure",
			setup: func(_ *testing.T, s *MemoryStore) { s.Fail = errors.New("disk I/O error") },
			req:   request("ip_rcv"),
			at:    t0,
			want:  "Failed to store key for this alert action",
		},
		{
			name: "zero value",
			req:  Request{Token: token, Alert: alertID, Action: actionID, Values: map[string]uint64{"b": 1, "a": 0}},
			at:   t0,
			want: `value 0 of key "a" is not a positive integer: values are whole numbers from 1 to 9223372036854775807`,
		},
		{
			name: "value beyond int64",
			req:  Request{Token: token, Alert: alertID, Action: actionID, Values: map[string]uint64{"a": 1 << 63}},
			at:   t0,
			want: `value 9223372036854775808 of key "a" is not a positive integer: values are whole numbers from 1 to 9223372036854775807`,
		},
		{
			name: "empty key",
			req:  Request{Token: token, Alert: alertID, Action: actionID, Values: map[string]uint64{"": 1}},
			at:   t0,
			want: "a key is empty: write KEY=VALUE with a key such as tcp_total_drop",
		},
		{
			name: "control character in a key",
			req:  request("a\nb"),
			at:   t0,
			want: `key "a\nb" holds a control character or invalid UTF-8: use printable characters`,
		},
		{
			name: "no values",
			req:  request(),
			at:   t0,
			want: "values is empty: give at least one KEY=VALUE",
		},
		{
			name: "no token",
			req:  Request{Alert: alertID, Action: actionID, Values: map[string]uint64{"a": 1}},
			at:   t0,
			want: "tkn is missing: give the TKN that flowsentry put in the plugin's environment",
		},
		{
			name: "no alert ID",
			req:  Request{Token: token, Action: actionID, Values: map[string]uint64{"a": 1}},
			at:   t0,
			want: "id is missing or 0: give the alert ID, the ID of the plugin's environment",
		},
		{
			name: "no action ID",
			req:  Request{Token: token, Alert: alertID, Values: map[string]uint64{"a": 1}},
			at:   t0,
			want: "aid is missing or 0: give the alert action ID, the AID of the plugin's environment",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			store := &MemoryStore{}
			tokens := tc.tokens
			if tokens == nil {
				tokens = StaticTokens{{alertID, actionID}: grant(AlertOpen)}
			}
			if tc.setup != nil {
				tc.setup(t, store)
			}
			fail := store.Fail
			store.Fail = nil
			before, _ := store.Values(context.Background(), alertID)
			store.Fail = fail
			a, err := New(DefaultConfig(), store, tokens, func() time.Time { return tc.at }, nil)
			if err != nil {
				t.Fatal(err)
			}
			n, err := a.Annotate(context.Background(), tc.req)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if diff := cmp.Diff(got, tc.want); diff != "" {
				t.Errorf("error (-got +want):\n%s", diff)
			}
			if n != tc.wantStored {
				t.Errorf("stored %d, want %d", n, tc.wantStored)
			}
			store.Fail = nil
			after, _ := store.Values(context.Background(), alertID)
			if len(after)-len(before) != tc.wantStored {
				t.Errorf("the store gained %d values, want %d", len(after)-len(before), tc.wantStored)
			}
			for _, v := range after[len(before):] {
				if !v.Time.Equal(tc.at) || v.Alert != tc.req.Alert || v.Action != tc.req.Action || v.Value != tc.req.Values[v.Key] {
					t.Errorf("stored %+v, want the request's values at %v", v, tc.at)
				}
			}
		})
	}
}

// TestAnnotateCounts checks that the limits count what earlier requests
// stored, across a restart (a new Annotator over the same store) and
// after the counts were evicted from memory.
func TestAnnotateCounts(t *testing.T) {
	ctx := context.Background()
	store := &MemoryStore{}
	tokens := StaticTokens{
		{alertID, actionID}: grant(AlertOpen),
		{alertID + 1, 1}:    {Token: token, Until: t0.Add(window)},
	}
	clock := func() time.Time { return t0 }
	cfg := DefaultConfig()
	cfg.CachedAlerts = 1
	a, err := New(cfg, store, tokens, clock, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range MaxValuesPerKey - 1 {
		if _, err := a.Annotate(ctx, request("ip_rcv")); err != nil {
			t.Fatalf("value %d: %v", i+1, err)
		}
	}
	// Another alert evicts the counts of the first one.
	if _, err := a.Annotate(ctx, Request{Token: token, Alert: alertID + 1, Action: 1, Values: map[string]uint64{"x": 1}}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Annotate(ctx, request("ip_rcv")); err != nil {
		t.Fatalf("value 770 after eviction: %v", err)
	}
	restarted, err := New(cfg, store, tokens, clock, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := restarted.Annotate(ctx, request("ip_rcv")); !errors.Is(err, ErrValuesPerKey) {
		t.Fatalf("value 771 after a restart: got %v, want %v", err, ErrValuesPerKey)
	}
}

func TestNew(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
		want string
	}{
		{"small body", Config{MaxRequestBytes: 10, CachedAlerts: 1}, "max_request_bytes: 10 is too small: use at least 1024 (default 1048576)"},
		{"no cache", Config{MaxRequestBytes: 1024}, "cached_alerts: 0 is too small: use at least 1 (default 4096)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg, &MemoryStore{}, StaticTokens{}, nil, nil)
			if err == nil || err.Error() != tc.want {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
	if _, err := New(DefaultConfig(), nil, StaticTokens{}, nil, nil); err == nil {
		t.Error("New without a store succeeded")
	}
}

// TestAnnotateConcurrent checks that concurrent requests never store more
// than a limit allows.
func TestAnnotateConcurrent(t *testing.T) {
	store := &MemoryStore{}
	a, err := New(DefaultConfig(), store, StaticTokens{{alertID, actionID}: grant(AlertOpen)}, func() time.Time { return t0 }, nil)
	if err != nil {
		t.Fatal(err)
	}
	const workers, each = 8, 100
	var wg sync.WaitGroup
	var refused atomic.Int64
	for range workers {
		wg.Go(func() {
			for range each {
				_, err := a.Annotate(context.Background(), request("ip_rcv"))
				if errors.Is(err, ErrValuesPerKey) {
					refused.Add(1)
				} else if err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	vals, _ := store.Values(context.Background(), alertID)
	if len(vals) != MaxValuesPerKey || refused.Load() != workers*each-MaxValuesPerKey {
		t.Errorf("stored %d and refused %d, want %d and %d", len(vals), refused.Load(), MaxValuesPerKey, workers*each-MaxValuesPerKey)
	}
}
