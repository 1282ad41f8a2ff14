package collector

import (
	"net/netip"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flowsentry/flowsentry/internal/testcaptures"
	"github.com/flowsentry/flowsentry/samples"
)

// TestSetSamples checks that the sFlow workers offer the raw headers to
// the store given with SetSamples: it keeps the first headers sent to the
// watched victim of an sFlow-exported SYN flood.
func TestSetSamples(t *testing.T) {
	store, err := samples.New(samples.DefaultConfig(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	victim := netip.MustParseAddr("10.10.10.10")
	store.Watch(victim, time.Now()) // the workers stamp datagrams with the wall clock
	sink := &testSink{}
	c, err := New(testConfig(protocolSFlow, "127.0.0.1:0"), sink, prometheus.NewRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	c.SetSamples(store)
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	payloads := udpPayloads(t, testcaptures.Path(t, "flow-exports/derived/pmacct-sflow-s10-synflood.pcap"))
	conn := dial(t, c, 0, "127.0.0.1")
	for i := 0; i < len(payloads); i += 50 { // paced: the socket buffer must not overflow
		send(t, conn, payloads[i:min(i+50, len(payloads))]...)
		time.Sleep(time.Millisecond)
	}
	want := samples.DefaultConfig().PerTarget
	waitFor(t, "the victim's headers", func() bool { return store.Count(victim) == want })
	if n := store.Count(netip.MustParseAddr("10.10.10.11")); n != 0 {
		t.Errorf("%d headers kept for an address not watched", n)
	}
}
