// Batch binary encoding, version 1.
//
// This is the format in which batches cross process boundaries (a NATS
// JetStream subject between collectors and detector shards). It is kept
// here, and not in the package comment, so that the package documentation
// stays about flows; it is written for someone implementing a consumer in
// another language.
//
// All integers are big-endian and fixed-width: every field sits at a fixed
// offset, so a record decodes with three length checks and no per-byte
// loop, which matters more on the hot path than the roughly one third of
// bytes varints would save. Compression, where
// wanted, belongs to the transport (JetStream's S2 stream compression).
//
// A batch is a 12-byte header, the records, then the counters, and nothing
// after them:
//
//	offset size field
//	0      3    magic "FSB"
//	3      1    version, 1
//	4      4    u32 record count, at most 1<<20
//	8      4    u32 counter count, at most 1<<20
//
// A record is 57 fixed bytes followed by the bytes of its three addresses
// (exporter, source, destination, in that order), so 57 to 105 bytes:
//
//	offset size field
//	0      8    i64 start, Unix nanoseconds
//	8      8    i64 end, Unix nanoseconds
//	16     8    u64 packets
//	24     8    u64 bytes
//	32     4    u32 input ifIndex
//	36     4    u32 output ifIndex
//	40     4    u32 sampling rate
//	44     2    u16 source port
//	46     2    u16 destination port
//	48     1    u8  IP protocol
//	49     1    u8  TCP flags
//	50     1    u8  ICMP type
//	51     1    u8  ICMP code
//	52     1    u8  flags: bit 0 fragment, bit 1 continued, others zero
//	53     1    u8  source protocol (the Source constants; any value passes)
//	54     1    u8  exporter address kind
//	55     1    u8  source address kind
//	56     1    u8  destination address kind
//
// An interface counter sample is 69 fixed bytes followed by the bytes of
// its exporter address, so 69 to 85 bytes:
//
//	offset size field
//	0      8    i64 time, Unix nanoseconds
//	8      4    u32 ifIndex
//	12     8    u64 speed, bits per second
//	20     8    u64 in octets
//	28     8    u64 out octets
//	36     8    u64 in packets
//	44     8    u64 out packets
//	52     4    u32 in errors
//	56     4    u32 out errors
//	60     4    u32 in discards
//	64     4    u32 out discards
//	68     1    u8  exporter address kind
//
// An address kind is 0 for no address (0 bytes follow), 4 for IPv4 (4 bytes
// follow) or 6 for IPv6 (16 bytes follow). An IPv4-mapped IPv6 address
// (::ffff:a.b.c.d) is kind 6: it stays distinct from the IPv4 address, as it
// is in Go. Zones are not carried. Any other kind is an error, as are set
// reserved flag bits, counts above the limits, a version other than 1,
// missing bytes and bytes after the last counter sample.

package flow

import (
	"encoding"
	"encoding/binary"
	"fmt"
	"net/netip"
)

// CodecVersion is the batch encoding version AppendBinary writes and the
// only one UnmarshalBinary reads.
const CodecVersion = 1

// CodecMaxRecords and CodecMaxCounters bound the counts of one encoded
// batch, so that a decoder's memory stays bounded whatever a peer sends; a
// producer with more splits the batch.
const (
	CodecMaxRecords  = 1 << 20
	CodecMaxCounters = 1 << 20
)

// Layout constants; see the format description at the top of this file.
const (
	codecMagic       = "FSB"
	codecHeaderSize  = 12
	codecRecordSize  = 57 // without addresses
	codecCounterSize = 69 // without the address

	addrKindNone = 0
	addrKindV4   = 4
	addrKindV6   = 6

	recFlagFragment  = 1 << 0
	recFlagContinued = 1 << 1
	recFlagsKnown    = recFlagFragment | recFlagContinued
)

// Errors of the batch codec. They are preallocated so that a bad batch
// costs no allocation (only ErrCodecVersion comes wrapped, to name the
// version); their Reason is the metric label.
var (
	// ErrCodecMagic means the input does not start with "FSB": it is not
	// an encoded batch.
	ErrCodecMagic = &DecodeError{Reason: "codec_magic",
		Msg: `flow batch does not start with the magic "FSB": the message is not an encoded flow batch`}
	// ErrCodecVersion means the batch was encoded in a version this build
	// does not read, typically by a newer producer.
	ErrCodecVersion = &DecodeError{Reason: "codec_version",
		Msg: "unsupported flow batch encoding version: upgrade the consumer or downgrade the producer"}
	// ErrCodecTruncated means the input ends before the header, a record
	// or a counter sample does, or is shorter than its counts require.
	ErrCodecTruncated = &DecodeError{Reason: "codec_truncated",
		Msg: "flow batch ends before the records and counters its header announces: the message was cut"}
	// ErrCodecTrailing means bytes follow the last counter sample.
	ErrCodecTrailing = &DecodeError{Reason: "codec_trailing",
		Msg: "flow batch has bytes after its last counter sample: the message is corrupt or the counts are wrong"}
	// ErrCodecAddr means an address kind other than 0, 4 or 6 when
	// decoding, or an address with a zone, which the format does not
	// carry, when encoding.
	ErrCodecAddr = &DecodeError{Reason: "codec_addr",
		Msg: "flow batch address is neither absent, IPv4 nor IPv6 without a zone (kinds 0, 4, 6)"}
	// ErrCodecCount means a record or counter count above
	// CodecMaxRecords or CodecMaxCounters.
	ErrCodecCount = &DecodeError{Reason: "codec_count",
		Msg: "flow batch has more than 1<<20 records or counter samples: the producer must split it"}
	// ErrCodecFlags means a record's reserved flag bits are set: a newer
	// producer means something this build would silently drop.
	ErrCodecFlags = &DecodeError{Reason: "codec_flags",
		Msg: "flow batch record has reserved flag bits set: the producer is newer or the message is corrupt"}
)

var (
	_ encoding.BinaryAppender    = (*Batch)(nil)
	_ encoding.BinaryMarshaler   = (*Batch)(nil)
	_ encoding.BinaryUnmarshaler = (*Batch)(nil)
)

// MarshalBinary returns the encoding of b described at the top of codec.go.
func (b *Batch) MarshalBinary() ([]byte, error) {
	return b.AppendBinary(nil)
}

// AppendBinary appends the encoding of b to dst and returns the extended
// slice; dst grows at most once. It fails with ErrCodecCount when b holds
// more than CodecMaxRecords records or CodecMaxCounters counter samples and
// with ErrCodecAddr when an address has a zone, returning dst unchanged,
// so that nothing a consumer would refuse or decode differently is sent.
func (b *Batch) AppendBinary(dst []byte) ([]byte, error) {
	if len(b.Records) > CodecMaxRecords || len(b.Counters) > CodecMaxCounters {
		return dst, fmt.Errorf("encoding flow batch of %d records and %d counters: %w",
			len(b.Records), len(b.Counters), ErrCodecCount)
	}
	// Sizing first validates everything, so an error leaves dst as it was,
	// and lets the writes below go to a slice that needs no more growing.
	size := codecHeaderSize + len(b.Records)*codecRecordSize + len(b.Counters)*codecCounterSize
	for i := range b.Records {
		r := &b.Records[i]
		if hasZone(r.Exporter) || hasZone(r.Src) || hasZone(r.Dst) {
			return dst, fmt.Errorf("encoding flow batch record %d: %w", i, ErrCodecAddr)
		}
		size += addrSize(r.Exporter) + addrSize(r.Src) + addrSize(r.Dst)
	}
	for i := range b.Counters {
		c := &b.Counters[i]
		if hasZone(c.Exporter) {
			return dst, fmt.Errorf("encoding flow batch counter sample %d: %w", i, ErrCodecAddr)
		}
		size += addrSize(c.Exporter)
	}

	off := len(dst)
	if cap(dst)-off < size {
		// Not slices.Grow: its append of a make costs two allocations
		// under the race detector, and the size is exact anyway.
		grown := make([]byte, off, off+size)
		copy(grown, dst)
		dst = grown
	}
	dst = dst[:off+size]
	p := dst[off:]
	copy(p, codecMagic)
	p[3] = CodecVersion
	binary.BigEndian.PutUint32(p[4:8], uint32(len(b.Records)))
	binary.BigEndian.PutUint32(p[8:12], uint32(len(b.Counters)))
	p = p[codecHeaderSize:]
	for i := range b.Records {
		p = putRecord(p, &b.Records[i])
	}
	for i := range b.Counters {
		p = putCounters(p, &b.Counters[i])
	}
	return dst, nil
}

// UnmarshalBinary replaces b's records and counters with those encoded in
// data, which it does not retain. It reuses the slices' capacity, so that
// decoding into a batch that held as many records before allocates
// nothing. data is untrusted: bad input returns an error (ErrCodec*, the
// version error wrapped) and never panics, and memory is only allocated for
// counts the length of data can hold. On error b holds no records and no
// counters.
func (b *Batch) UnmarshalBinary(data []byte) error {
	if err := b.unmarshal(data); err != nil {
		b.Records = b.Records[:0]
		b.Counters = b.Counters[:0]
		return err
	}
	return nil
}

func (b *Batch) unmarshal(data []byte) error {
	if n := min(len(data), len(codecMagic)); string(data[:n]) != codecMagic[:n] {
		return ErrCodecMagic
	}
	if len(data) > len(codecMagic) && data[3] != CodecVersion {
		return fmt.Errorf("flow batch encoding version %d, this build reads version %d: %w",
			data[3], CodecVersion, ErrCodecVersion)
	}
	if len(data) < codecHeaderSize {
		return ErrCodecTruncated
	}
	nrec := binary.BigEndian.Uint32(data[4:8])
	ncnt := binary.BigEndian.Uint32(data[8:12])
	if nrec > CodecMaxRecords || ncnt > CodecMaxCounters {
		return ErrCodecCount
	}
	data = data[codecHeaderSize:]
	// Every record and sample takes at least its fixed part: refusing
	// counts the input cannot hold bounds the allocation below by the
	// input's length. The product fits an int even on 32 bits.
	if int(nrec)*codecRecordSize+int(ncnt)*codecCounterSize > len(data) {
		return ErrCodecTruncated
	}
	b.Records = resize(b.Records, int(nrec))
	b.Counters = resize(b.Counters, int(ncnt))

	var err error
	for i := range b.Records {
		if data, err = getRecord(data, &b.Records[i]); err != nil {
			return err
		}
	}
	for i := range b.Counters {
		if data, err = getCounters(data, &b.Counters[i]); err != nil {
			return err
		}
	}
	if len(data) != 0 {
		return ErrCodecTrailing
	}
	return nil
}

// resize returns s with length n, reusing its array when it is large
// enough. The elements are left as they were: the decoder overwrites them.
func resize[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

// putRecord writes r at the start of p and returns the rest of p.
func putRecord(p []byte, r *Record) []byte {
	q := p[:codecRecordSize]
	binary.BigEndian.PutUint64(q[0:], uint64(r.Start))
	binary.BigEndian.PutUint64(q[8:], uint64(r.End))
	binary.BigEndian.PutUint64(q[16:], r.Packets)
	binary.BigEndian.PutUint64(q[24:], r.Bytes)
	binary.BigEndian.PutUint32(q[32:], r.InIf)
	binary.BigEndian.PutUint32(q[36:], r.OutIf)
	binary.BigEndian.PutUint32(q[40:], r.SamplingRate)
	binary.BigEndian.PutUint16(q[44:], r.SrcPort)
	binary.BigEndian.PutUint16(q[46:], r.DstPort)
	q[48] = r.Proto
	q[49] = r.TCPFlags
	q[50] = r.ICMPType
	q[51] = r.ICMPCode
	var flags byte
	if r.Fragment {
		flags |= recFlagFragment
	}
	if r.Continued {
		flags |= recFlagContinued
	}
	q[52] = flags
	q[53] = byte(r.Source)
	q[54] = addrKind(r.Exporter)
	q[55] = addrKind(r.Src)
	q[56] = addrKind(r.Dst)
	p = p[codecRecordSize:]
	p = putAddr(p, r.Exporter)
	p = putAddr(p, r.Src)
	return putAddr(p, r.Dst)
}

// getRecord decodes the record at the start of p into r and returns the
// rest of p.
func getRecord(p []byte, r *Record) ([]byte, error) {
	if len(p) < codecRecordSize {
		return nil, ErrCodecTruncated
	}
	q := p[:codecRecordSize]
	flags := q[52]
	if flags&^recFlagsKnown != 0 {
		return nil, ErrCodecFlags
	}
	ne, oke := addrLen(q[54])
	ns, oks := addrLen(q[55])
	nd, okd := addrLen(q[56])
	if !oke || !oks || !okd {
		return nil, ErrCodecAddr
	}
	a := p[codecRecordSize:]
	if len(a) < ne+ns+nd {
		return nil, ErrCodecTruncated
	}
	// One composite literal overwrites every field, so nothing of the
	// slot's previous record survives.
	*r = Record{
		Start:        int64(binary.BigEndian.Uint64(q[0:])),
		End:          int64(binary.BigEndian.Uint64(q[8:])),
		Packets:      binary.BigEndian.Uint64(q[16:]),
		Bytes:        binary.BigEndian.Uint64(q[24:]),
		InIf:         binary.BigEndian.Uint32(q[32:]),
		OutIf:        binary.BigEndian.Uint32(q[36:]),
		SamplingRate: binary.BigEndian.Uint32(q[40:]),
		SrcPort:      binary.BigEndian.Uint16(q[44:]),
		DstPort:      binary.BigEndian.Uint16(q[46:]),
		Proto:        q[48],
		TCPFlags:     q[49],
		ICMPType:     q[50],
		ICMPCode:     q[51],
		Fragment:     flags&recFlagFragment != 0,
		Continued:    flags&recFlagContinued != 0,
		Source:       Source(q[53]),
		Exporter:     getAddr(a[:ne]),
		Src:          getAddr(a[ne : ne+ns]),
		Dst:          getAddr(a[ne+ns : ne+ns+nd]),
	}
	return a[ne+ns+nd:], nil
}

// putCounters writes c at the start of p and returns the rest of p.
func putCounters(p []byte, c *IfCounters) []byte {
	q := p[:codecCounterSize]
	binary.BigEndian.PutUint64(q[0:], uint64(c.Time))
	binary.BigEndian.PutUint32(q[8:], c.IfIndex)
	binary.BigEndian.PutUint64(q[12:], c.Speed)
	binary.BigEndian.PutUint64(q[20:], c.InOctets)
	binary.BigEndian.PutUint64(q[28:], c.OutOctets)
	binary.BigEndian.PutUint64(q[36:], c.InPackets)
	binary.BigEndian.PutUint64(q[44:], c.OutPackets)
	binary.BigEndian.PutUint32(q[52:], c.InErrors)
	binary.BigEndian.PutUint32(q[56:], c.OutErrors)
	binary.BigEndian.PutUint32(q[60:], c.InDiscards)
	binary.BigEndian.PutUint32(q[64:], c.OutDiscards)
	q[68] = addrKind(c.Exporter)
	return putAddr(p[codecCounterSize:], c.Exporter)
}

// getCounters decodes the counter sample at the start of p into c and
// returns the rest of p.
func getCounters(p []byte, c *IfCounters) ([]byte, error) {
	if len(p) < codecCounterSize {
		return nil, ErrCodecTruncated
	}
	q := p[:codecCounterSize]
	n, ok := addrLen(q[68])
	if !ok {
		return nil, ErrCodecAddr
	}
	a := p[codecCounterSize:]
	if len(a) < n {
		return nil, ErrCodecTruncated
	}
	*c = IfCounters{
		Time:        int64(binary.BigEndian.Uint64(q[0:])),
		IfIndex:     binary.BigEndian.Uint32(q[8:]),
		Speed:       binary.BigEndian.Uint64(q[12:]),
		InOctets:    binary.BigEndian.Uint64(q[20:]),
		OutOctets:   binary.BigEndian.Uint64(q[28:]),
		InPackets:   binary.BigEndian.Uint64(q[36:]),
		OutPackets:  binary.BigEndian.Uint64(q[44:]),
		InErrors:    binary.BigEndian.Uint32(q[52:]),
		OutErrors:   binary.BigEndian.Uint32(q[56:]),
		InDiscards:  binary.BigEndian.Uint32(q[60:]),
		OutDiscards: binary.BigEndian.Uint32(q[64:]),
		Exporter:    getAddr(a[:n]),
	}
	return a[n:], nil
}

// hasZone reports whether a carries a zone, which the format cannot.
func hasZone(a netip.Addr) bool {
	return a.Is6() && a.Zone() != ""
}

// addrKind returns the kind byte of a. Is4 is false for IPv4-mapped IPv6
// addresses, which therefore keep kind 6.
func addrKind(a netip.Addr) byte {
	switch {
	case a.Is4():
		return addrKindV4
	case a.Is6():
		return addrKindV6
	}
	return addrKindNone
}

// addrSize returns how many bytes follow a's kind byte.
func addrSize(a netip.Addr) int {
	return a.BitLen() / 8
}

// addrLen returns how many bytes follow an address kind byte, and false
// for an unknown kind.
func addrLen(kind byte) (int, bool) {
	switch kind {
	case addrKindNone:
		return 0, true
	case addrKindV4:
		return 4, true
	case addrKindV6:
		return 16, true
	}
	return 0, false
}

// putAddr writes a's bytes (not its kind) at the start of p and returns the
// rest of p.
func putAddr(p []byte, a netip.Addr) []byte {
	switch {
	case a.Is4():
		b := a.As4()
		return p[copy(p, b[:]):]
	case a.Is6():
		b := a.As16()
		return p[copy(p, b[:]):]
	}
	return p
}

// getAddr returns the address whose bytes are b, which addrLen sized: 0, 4
// or 16 bytes. AddrFrom16 keeps an IPv4-mapped address as IPv6, as it was
// encoded.
func getAddr(b []byte) netip.Addr {
	switch len(b) {
	case 4:
		return netip.AddrFrom4([4]byte(b))
	case 16:
		return netip.AddrFrom16([16]byte(b))
	}
	return netip.Addr{}
}
