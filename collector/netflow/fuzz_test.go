package netflow

import (
	"encoding/binary"
	"errors"
	"math"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/flowsentry/flowsentry/flow"
)

// frame joins datagrams into one fuzz input: each is preceded by its
// length on two bytes.
func frame(datagrams ...[]byte) []byte {
	var b []byte
	for _, d := range datagrams {
		b = binary.BigEndian.AppendUint16(b, uint16(len(d)))
		b = append(b, d...)
	}
	return b
}

// unframe splits a fuzz input into datagrams; a last length running past
// the end takes what is left.
func unframe(b []byte) [][]byte {
	var out [][]byte
	for len(b) >= 2 {
		n := min(int(binary.BigEndian.Uint16(b)), len(b)-2)
		out = append(out, b[2:2+n])
		b = b[2+n:]
	}
	return out
}

var knownReasons = map[string]bool{
	"truncated": true, "version": true, "count": true, "length": true, "set_length": true,
	"template_length": true, "template_id": true, "field_length": true, "zero_length": true,
}

// FuzzDecode decodes a sequence of datagrams from one exporter, seeded
// with the datagrams of every NetFlow / IPFIX capture (all of them for
// captures of up to 64 datagrams, the first 8 of the larger ones), alone,
// and the first 4 of each capture in sequence so that templates meet data.
//
// Invariants: no panic and no endless loop; errors are *flow.DecodeError
// with a known reason; no more records than input bytes; every record has
// a source and destination address of one family, the exporter, the
// source of the datagram's version, a rate of at least 1 that divides its
// (unsaturated) counts, and no ports when it is ICMP; the template cache
// stays within its bounds, its eviction orders agreeing with its domains
// (checkCache). Differential: while
// both this decoder and goflow2 accept every datagram of the sequence (and
// this decoder neither misses, holds, replays nor withdraws templates,
// which goflow2 does not do), the records equal the reference's.
//
// Each run also decodes with goflow2, which is slow, so the engine's
// minimization of new inputs can take the whole run: bound it.
//
//	go test -run '^$' -fuzz FuzzDecode -fuzztime 30s -fuzzminimizetime 5s ./collector/netflow
func FuzzDecode(f *testing.F) {
	for _, c := range captureCases {
		dgs := readAll(f, c.files...)
		if len(dgs) > 64 {
			dgs = dgs[:8]
		}
		var first [][]byte
		for i, dg := range dgs {
			f.Add(frame(dg.payload))
			if i < 4 {
				first = append(first, dg.payload)
			}
		}
		f.Add(frame(first...))
	}
	exporter := netip.MustParseAddr("192.0.2.1")
	sources := map[uint16]flow.Source{5: flow.SourceNetFlowV5, 9: flow.SourceNetFlowV9, 10: flow.SourceIPFIX}
	f.Fuzz(func(t *testing.T, in []byte) {
		// Small bounds, so that inputs reach the evictions.
		cfg := DefaultConfig()
		cfg.PendingDatagrams, cfg.MaxTemplatesPerExporter, cfg.MaxTemplates = 4, 16, 16
		templates := NewTemplates(cfg)
		dec := NewDecoder(templates)
		ref := newReference()
		comparing := true
		total := 0
		for i, p := range unframe(in) {
			out, st, err := dec.Decode(exporter, int64(i)*int64(time.Second), p, nil)
			if err != nil {
				var de *flow.DecodeError
				if !errors.As(err, &de) || !knownReasons[de.Reason] {
					t.Fatalf("datagram %d: error %v (%T) is not a known *flow.DecodeError", i, err, err)
				}
			}
			checkCache(t, templates)
			if st.Records != len(out) {
				t.Fatalf("datagram %d: Stats.Records %d, %d records", i, st.Records, len(out))
			}
			if total += len(out); total > len(in) {
				t.Fatalf("%d records from %d bytes", total, len(in))
			}
			for j, r := range out {
				checkRecord(t, r, exporter, sources[st.Version])
				if t.Failed() {
					t.Fatalf("datagram %d record %d: %+v", i, j, r)
				}
			}
			if !comparing {
				continue
			}
			want, rerr := ref.decode(exporter, p)
			if err != nil || rerr != nil || want.partial ||
				st.TemplateMisses > 0 || st.Held > 0 || st.Replayed > 0 || st.TemplatesWithdrawn > 0 {
				comparing = false
				continue
			}
			if diff := cmp.Diff(out, want.records, addrComparer); diff != "" {
				t.Fatalf("datagram %d (-got +want):\n%s", i, diff)
			}
			if st.NoAddress != want.noAddress {
				t.Fatalf("datagram %d: NoAddress %d, reference %d", i, st.NoAddress, want.noAddress)
			}
		}
	})
}

// checkRecord reports a record breaking the decoder's invariants.
func checkRecord(t *testing.T, r flow.Record, exporter netip.Addr, source flow.Source) {
	t.Helper()
	if !r.Src.IsValid() || !r.Dst.IsValid() || r.Src.Is4() != r.Dst.Is4() {
		t.Errorf("addresses %v -> %v are not a pair of one family", r.Src, r.Dst)
	}
	if r.Exporter != exporter || r.Source != source {
		t.Errorf("exporter %v source %v, want %v %v", r.Exporter, r.Source, exporter, source)
	}
	if r.SamplingRate < 1 {
		t.Errorf("sampling rate %d", r.SamplingRate)
	}
	rate := uint64(max(r.SamplingRate, 1))
	if (r.Packets%rate != 0 && r.Packets != math.MaxUint64) || (r.Bytes%rate != 0 && r.Bytes != math.MaxUint64) {
		t.Errorf("counts %d / %d not scaled by rate %d", r.Packets, r.Bytes, rate)
	}
	if (r.Proto == flow.ProtoICMP || r.Proto == flow.ProtoICMPv6) && (r.SrcPort != 0 || r.DstPort != 0) {
		t.Errorf("ICMP record with ports %d -> %d", r.SrcPort, r.DstPort)
	}
}
