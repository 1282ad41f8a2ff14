package flow

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"math"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

var (
	codecExporter = netip.MustParseAddr("192.0.2.1")
	codecSrc4     = netip.MustParseAddr("198.51.100.7")
	codecDst4     = netip.MustParseAddr("203.0.113.9")
	codecSrc6     = netip.MustParseAddr("2001:db8::7")
	codecDst6     = netip.MustParseAddr("2001:db8:ffff::9")
	codecMapped   = netip.MustParseAddr("::ffff:198.51.100.7")
)

// codecRecord returns the i-th record of a varied batch: every fourth one
// IPv6, the others IPv4, with fields that differ between records so that a
// decoder mixing up records or fields shows.
func codecRecord(i int) Record {
	r := Record{
		Start:        int64(1_700_000_000_000_000_000 + i*1_000_003),
		End:          int64(1_700_000_000_000_000_000 + i*2_000_011),
		Exporter:     codecExporter,
		InIf:         uint32(i % 48),
		OutIf:        uint32(i%48 + 100),
		Src:          codecSrc4,
		Dst:          codecDst4,
		SrcPort:      uint16(1024 + i),
		DstPort:      443,
		Packets:      uint64(i + 1),
		Bytes:        uint64(1500*i + 40),
		SamplingRate: 1,
		Proto:        ProtoTCP,
		TCPFlags:     TCPSyn | TCPAck,
		Fragment:     i%7 == 3,
		Continued:    i%5 == 1,
		Source:       Source(i % 6),
	}
	if i%4 == 3 {
		r.Src, r.Dst = codecSrc6, codecDst6
		r.Proto, r.TCPFlags, r.SrcPort, r.DstPort = ProtoICMPv6, 0, 0, 0
		r.ICMPType, r.ICMPCode = 128, uint8(i%3)
		r.SamplingRate = 1000
	}
	return r
}

// codecCounters returns the i-th counter sample of a varied batch.
func codecCounters(i int) IfCounters {
	return IfCounters{
		Time: int64(1_700_000_000_000_000_000 + i), Exporter: codecExporter, IfIndex: uint32(i + 1),
		Speed: 10_000_000_000, InOctets: uint64(i) << 32, OutOctets: uint64(i) << 31,
		InPackets: uint64(i) * 1000, OutPackets: uint64(i) * 999,
		InErrors: uint32(i), OutErrors: uint32(i + 1), InDiscards: uint32(i + 2), OutDiscards: uint32(i + 3),
	}
}

// codecBatch returns a batch of n records and m counter samples.
func codecBatch(n, m int) *Batch {
	b := &Batch{}
	for i := range n {
		b.Records = append(b.Records, codecRecord(i))
	}
	for i := range m {
		b.Counters = append(b.Counters, codecCounters(i))
	}
	return b
}

// codecDiff compares batches; addresses compare with ==, so an IPv4 address
// differs from its IPv4-mapped IPv6 form and from itself with a zone.
func codecDiff(got, want *Batch) string {
	return cmp.Diff(got, want, cmpopts.EquateComparable(netip.Addr{}), cmpopts.EquateEmpty())
}

// unhex decodes hex written with spaces between fields.
func unhex(tb testing.TB, s string) []byte {
	tb.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

var codecCases = []struct {
	name  string
	batch *Batch
	// golden, when set, is the expected encoding in hex: it pins the
	// format that consumers in other languages implement.
	golden string
}{
	{
		name:   "empty",
		batch:  &Batch{},
		golden: "465342 01 00000000 00000000",
	},
	{
		name: "one IPv4 record, golden",
		batch: &Batch{Records: []Record{{
			Start: 1, End: 2, Exporter: codecExporter, InIf: 3, OutIf: 4, Src: codecSrc4, Dst: codecDst4,
			SrcPort: 5, DstPort: 6, Packets: 7, Bytes: 8, SamplingRate: 9, Proto: ProtoUDP, TCPFlags: 0,
			ICMPType: 10, ICMPCode: 11, Fragment: true, Continued: true, Source: SourceIPFIX,
		}}},
		golden: `465342 01 00000001 00000000
			0000000000000001 0000000000000002 0000000000000007 0000000000000008
			00000003 00000004 00000009 0005 0006
			11 00 0a 0b 03 03 04 04 04
			c0000201 c6336407 cb007109`,
	},
	{
		name: "one counter sample with an IPv6 exporter, golden",
		batch: &Batch{Counters: []IfCounters{{
			Time: -1, Exporter: codecSrc6, IfIndex: 1, Speed: 2, InOctets: 3, OutOctets: 4,
			InPackets: 5, OutPackets: 6, InErrors: 7, OutErrors: 8, InDiscards: 9, OutDiscards: 10,
		}}},
		golden: `465342 01 00000000 00000001
			ffffffffffffffff 00000001 0000000000000002
			0000000000000003 0000000000000004 0000000000000005 0000000000000006
			00000007 00000008 00000009 0000000a 06
			20010db8000000000000000000000007`,
	},
	{
		name:  "IPv4 records",
		batch: &Batch{Records: []Record{codecRecord(0), codecRecord(1), codecRecord(2)}},
	},
	{
		name:  "IPv6 records",
		batch: &Batch{Records: []Record{codecRecord(3), codecRecord(7), codecRecord(11)}},
	},
	{
		name: "invalid exporter",
		batch: &Batch{
			Records:  []Record{{Src: codecSrc4, Dst: codecDst4, Packets: 1}, {}},
			Counters: []IfCounters{{IfIndex: 1}},
		},
	},
	{
		name: "IPv4-mapped IPv6 addresses stay IPv6",
		batch: &Batch{
			Records:  []Record{{Exporter: codecMapped, Src: codecMapped, Dst: codecSrc4}, {Exporter: codecSrc4, Src: codecSrc4, Dst: codecMapped}},
			Counters: []IfCounters{{Exporter: codecMapped}},
		},
	},
	{
		name: "every source",
		batch: &Batch{Records: []Record{
			{Source: SourceUnknown}, {Source: SourceNetFlowV5}, {Source: SourceNetFlowV9},
			{Source: SourceIPFIX}, {Source: SourceSFlow}, {Source: SourceMeter}, {Source: 200},
		}},
	},
	{
		name: "max values",
		batch: &Batch{
			Records: []Record{{
				Start: math.MaxInt64, End: math.MinInt64,
				Exporter: netip.MustParseAddr("255.255.255.255"), InIf: math.MaxUint32, OutIf: math.MaxUint32,
				Src:     netip.MustParseAddr("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
				Dst:     netip.MustParseAddr("::ffff:255.255.255.255"),
				SrcPort: math.MaxUint16, DstPort: math.MaxUint16, Packets: math.MaxUint64, Bytes: math.MaxUint64,
				SamplingRate: math.MaxUint32, Proto: math.MaxUint8, TCPFlags: math.MaxUint8,
				ICMPType: math.MaxUint8, ICMPCode: math.MaxUint8, Fragment: true, Continued: true, Source: math.MaxUint8,
			}, {
				Start: math.MinInt64, End: math.MaxInt64,
			}},
			Counters: []IfCounters{{
				Time: math.MaxInt64, Exporter: netip.MustParseAddr("ffff::ffff"), IfIndex: math.MaxUint32,
				Speed: math.MaxUint64, InOctets: math.MaxUint64, OutOctets: math.MaxUint64,
				InPackets: math.MaxUint64, OutPackets: math.MaxUint64,
				InErrors: math.MaxUint32, OutErrors: math.MaxUint32, InDiscards: math.MaxUint32, OutDiscards: math.MaxUint32,
			}, {
				Time: math.MinInt64,
			}},
		},
	},
	{
		name:  "counters only",
		batch: codecBatch(0, 16),
	},
	{
		name:  "BatchSize records and counters",
		batch: codecBatch(BatchSize, 16),
	},
}

func TestCodecRoundTrip(t *testing.T) {
	for _, tc := range codecCases {
		t.Run(tc.name, func(t *testing.T) {
			enc, err := tc.batch.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			if tc.golden != "" {
				if want := unhex(t, tc.golden); !bytes.Equal(enc, want) {
					t.Errorf("encoding\n got %x\nwant %x", enc, want)
				}
			}
			appended, err := tc.batch.AppendBinary([]byte("prefix"))
			if err != nil {
				t.Fatal(err)
			}
			if got := string(appended); !strings.HasPrefix(got, "prefix") || got[len("prefix"):] != string(enc) {
				t.Errorf("AppendBinary does not append MarshalBinary's encoding to dst")
			}

			var fresh Batch
			if err := fresh.UnmarshalBinary(enc); err != nil {
				t.Fatal(err)
			}
			if diff := codecDiff(&fresh, tc.batch); diff != "" {
				t.Errorf("into an empty batch (-got, +want):\n%s", diff)
			}
			// A used batch with other contents in its slices' capacity:
			// every field of every slot must be overwritten.
			used := codecBatch(BatchSize+3, 20)
			used.Records[0] = Record{Src: netip.MustParseAddr("fe80::1%eth0")}
			if err := used.UnmarshalBinary(enc); err != nil {
				t.Fatal(err)
			}
			if diff := codecDiff(used, tc.batch); diff != "" {
				t.Errorf("into a used batch (-got, +want):\n%s", diff)
			}
		})
	}
}

// codecSample is a valid encoding with records and counter samples of
// every address kind, for the error cases to cut and corrupt.
func codecSample(tb testing.TB) []byte {
	tb.Helper()
	b := codecBatch(4, 2)
	b.Records[1].Exporter = netip.Addr{}
	b.Counters[1].Exporter = codecSrc6
	enc, err := b.MarshalBinary()
	if err != nil {
		tb.Fatal(err)
	}
	return enc
}

// codecSet returns a copy of enc with the byte at off set to v.
func codecSet(enc []byte, off int, v byte) []byte {
	enc = bytes.Clone(enc)
	enc[off] = v
	return enc
}

// codecHeader returns a header with the given counts, padded with zeros to
// size bytes.
func codecHeader(records, counters uint32, size int) []byte {
	h := append([]byte("FSB\x01"), 0, 0, 0, 0, 0, 0, 0, 0)
	binary.BigEndian.PutUint32(h[4:], records)
	binary.BigEndian.PutUint32(h[8:], counters)
	return append(h, make([]byte, size-len(h))...)
}

func TestCodecDecodeErrors(t *testing.T) {
	enc := codecSample(t)
	// The first record is IPv4 in all three addresses.
	const rec0 = codecHeaderSize
	counter0 := len(enc) - (codecCounterSize + 16) - (codecCounterSize + 4)
	for _, tc := range []struct {
		name    string
		in      []byte
		want    error
		wantMsg string // a part of the message, when set
	}{
		{name: "nil", in: nil, want: ErrCodecTruncated},
		{name: "bad magic", in: codecSet(enc, 0, 'X'), want: ErrCodecMagic},
		{name: "bad magic, short", in: []byte("FS!"), want: ErrCodecMagic},
		{name: "version 0", in: codecSet(enc, 3, 0), want: ErrCodecVersion, wantMsg: "version 0, this build reads version 1"},
		{name: "version 2", in: codecSet(enc, 3, 2), want: ErrCodecVersion, wantMsg: "version 2, this build reads version 1"},
		{name: "version 2, header only", in: []byte("FSB\x02"), want: ErrCodecVersion},
		{name: "trailing byte", in: append(bytes.Clone(enc), 0), want: ErrCodecTrailing},
		{name: "1<<30 records in 20 bytes", in: codecHeader(1<<30, 0, 20), want: ErrCodecCount},
		{name: "max+1 records", in: codecHeader(CodecMaxRecords+1, 0, 20), want: ErrCodecCount},
		{name: "max+1 counters", in: codecHeader(0, CodecMaxCounters+1, 20), want: ErrCodecCount},
		{name: "u32 max counters", in: codecHeader(0, math.MaxUint32, 20), want: ErrCodecCount},
		{name: "max records in 20 bytes", in: codecHeader(CodecMaxRecords, CodecMaxCounters, 20), want: ErrCodecTruncated},
		{name: "1000 records in 20 bytes", in: codecHeader(1000, 0, 20), want: ErrCodecTruncated},
		{name: "exporter kind 5", in: codecSet(enc, rec0+54, 5), want: ErrCodecAddr},
		{name: "source kind 16", in: codecSet(enc, rec0+55, 16), want: ErrCodecAddr},
		{name: "destination kind 255", in: codecSet(enc, rec0+56, 255), want: ErrCodecAddr},
		{name: "counter exporter kind 1", in: codecSet(enc, counter0+68, 1), want: ErrCodecAddr},
		{name: "reserved flag bit", in: codecSet(enc, rec0+52, 0x04), want: ErrCodecFlags},
		{name: "all flag bits", in: codecSet(enc, rec0+52, 0xff), want: ErrCodecFlags},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := codecBatch(3, 3)
			err := b.UnmarshalBinary(tc.in)
			if !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
			if tc.wantMsg != "" && !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("error %q does not say %q", err, tc.wantMsg)
			}
			if len(b.Records) != 0 || len(b.Counters) != 0 {
				t.Errorf("after an error the batch holds %d records and %d counters, want none", len(b.Records), len(b.Counters))
			}
			if errors.Is(err, ErrCodecVersion) {
				return // wrapped to name the version, so it allocates
			}
			// Bad input costs nothing, whatever its counts claim.
			var fresh Batch
			if n := testing.AllocsPerRun(10, func() { _ = fresh.UnmarshalBinary(tc.in) }); n != 0 {
				t.Errorf("%v allocations, want 0", n)
			}
		})
	}

	// Counts are in the header, so every cut of a valid encoding is short
	// of what they announce.
	t.Run("every truncation", func(t *testing.T) {
		for n := range len(enc) {
			var b Batch
			if err := b.UnmarshalBinary(enc[:n]); !errors.Is(err, ErrCodecTruncated) {
				t.Errorf("first %d of %d bytes: error %v, want %v", n, len(enc), err, ErrCodecTruncated)
			}
		}
	})
}

func TestCodecEncodeErrors(t *testing.T) {
	zoned := netip.MustParseAddr("fe80::1%eth0")
	for _, tc := range []struct {
		name  string
		batch *Batch
		want  error
	}{
		{name: "zoned exporter", batch: &Batch{Records: []Record{codecRecord(0), {Exporter: zoned}}}, want: ErrCodecAddr},
		{name: "zoned source", batch: &Batch{Records: []Record{{Src: zoned}}}, want: ErrCodecAddr},
		{name: "zoned destination", batch: &Batch{Records: []Record{{Dst: zoned}}}, want: ErrCodecAddr},
		{name: "zoned counter exporter", batch: &Batch{Counters: []IfCounters{{Exporter: zoned}}}, want: ErrCodecAddr},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst := []byte("prefix")
			got, err := tc.batch.AppendBinary(dst)
			if !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
			if string(got) != "prefix" {
				t.Errorf("dst changed to %q on error", got)
			}
		})
	}
}

func TestCodecAllocs(t *testing.T) {
	src := codecBatch(BatchSize, 16)
	enc, err := src.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	t.Run("decode into capacity", func(t *testing.T) {
		b := NewBatch()
		defer b.Release()
		if err := b.UnmarshalBinary(enc); err != nil {
			t.Fatal(err)
		}
		if n := testing.AllocsPerRun(20, func() { _ = b.UnmarshalBinary(enc) }); n != 0 {
			t.Errorf("%v allocations, want 0", n)
		}
	})
	t.Run("encode into capacity", func(t *testing.T) {
		buf := make([]byte, 0, len(enc))
		if n := testing.AllocsPerRun(20, func() { buf, _ = src.AppendBinary(buf[:0]) }); n != 0 {
			t.Errorf("%v allocations, want 0", n)
		}
	})
	t.Run("marshal allocates once", func(t *testing.T) {
		if n := testing.AllocsPerRun(20, func() { _, _ = src.MarshalBinary() }); n != 1 {
			t.Errorf("%v allocations, want 1", n)
		}
	})
}

// FuzzCodec decodes arbitrary input, seeded with the encodings of the
// round-trip cases and of a few broken ones.
//
// Invariants: no panic; errors are *DecodeError with a codec reason and
// leave the batch empty; no more records or counter samples than the input
// has room for at their minimum sizes; the encoding is canonical, so a
// decoded batch encodes back to the very input, which decodes to an equal
// batch; decoding into a used batch gives the same as into an empty one.
//
//	go test -run '^$' -fuzz FuzzCodec -fuzztime 30s ./flow
func FuzzCodec(f *testing.F) {
	for _, tc := range codecCases {
		enc, err := tc.batch.MarshalBinary()
		if err != nil {
			f.Fatal(err)
		}
		if len(enc) < 4096 {
			f.Add(enc)
		}
	}
	enc := codecSample(f)
	f.Add(enc)
	f.Add(enc[:len(enc)-1])
	f.Add(codecSet(enc, codecHeaderSize+54, 6))
	f.Add(codecHeader(1<<30, 0, 20))

	f.Fuzz(func(t *testing.T, data []byte) {
		var b Batch
		err := b.UnmarshalBinary(data)
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) || !strings.HasPrefix(de.Reason, "codec_") {
				t.Fatalf("error %v is not a codec *DecodeError", err)
			}
			if len(b.Records) != 0 || len(b.Counters) != 0 {
				t.Fatalf("error %v left %d records and %d counters", err, len(b.Records), len(b.Counters))
			}
			return
		}
		if limit := len(data) / codecRecordSize; len(b.Records) > limit {
			t.Fatalf("%d records from %d bytes, at most %d fit", len(b.Records), len(data), limit)
		}
		if limit := len(data) / codecCounterSize; len(b.Counters) > limit {
			t.Fatalf("%d counters from %d bytes, at most %d fit", len(b.Counters), len(data), limit)
		}
		enc, err := b.MarshalBinary()
		if err != nil {
			t.Fatalf("re-encoding a decoded batch: %v", err)
		}
		if !bytes.Equal(enc, data) {
			t.Fatalf("re-encoding differs from the input:\n got %x\nwant %x", enc, data)
		}
		var again Batch
		if err := again.UnmarshalBinary(enc); err != nil {
			t.Fatalf("decoding the re-encoding: %v", err)
		}
		if diff := codecDiff(&again, &b); diff != "" {
			t.Fatalf("round trip (-got, +want):\n%s", diff)
		}
		used := codecBatch(5, 3)
		if err := used.UnmarshalBinary(data); err != nil {
			t.Fatalf("decoding into a used batch: %v", err)
		}
		if diff := codecDiff(used, &b); diff != "" {
			t.Fatalf("into a used batch (-got, +want):\n%s", diff)
		}
	})
}

// codecBenchBatch is a full collector batch: three quarters IPv4 records,
// one quarter IPv6.
var codecBenchBatch = codecBatch(BatchSize, 0)

// The codec benchmarks encode and decode a full batch into buffers with
// enough capacity, as a collector and a shard do in steady state: 0
// allocs/op is part of the result. MB/s is of encoded bytes. Compare
// changes with benchstat:
//
//	go test -run '^$' -bench Codec -benchmem -count=6 -cpu 1 ./flow
func BenchmarkCodecEncode(b *testing.B) {
	buf, err := codecBenchBatch.MarshalBinary()
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		buf, _ = codecBenchBatch.AppendBinary(buf[:0])
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*BatchSize), "ns/record")
}

func BenchmarkCodecDecode(b *testing.B) {
	enc, err := codecBenchBatch.MarshalBinary()
	if err != nil {
		b.Fatal(err)
	}
	dst := NewBatch()
	b.SetBytes(int64(len(enc)))
	for b.Loop() {
		if err := dst.UnmarshalBinary(enc); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*BatchSize), "ns/record")
}
