// Package sflow decodes sFlow v5 datagrams (sflow.org/sflow_version_5.txt)
// into flow records and interface counters, without allocating: flow
// samples with a raw packet header or sampled IPv4/IPv6 data become one
// flow.Record each, scaled by the sampling rate; generic interface counter
// records become flow.IfCounters. Like goflow2's decoders, it neither logs
// nor counts: the collector wraps it and turns Stats and the reasons of its
// errors into metrics.
package sflow

import (
	"net/netip"

	"github.com/flowsentry/flowsentry/flow"
)

// Decoder decodes sFlow v5 datagrams. It keeps no state across datagrams
// (sFlow needs no templates), so one decoder takes datagrams from any
// number of agents. Give each worker its own: the contract leaves room for
// per-worker scratch state, so a Decoder must not be shared between
// goroutines.
type Decoder struct {
	// Samples, when not nil, is offered the raw packet header of every
	// flow sample that became a record (see package samples). Set it
	// before the first Decode.
	Samples SampleSink
}

// SampleSink takes the raw packet headers of flow samples, as
// *samples.Store does. Offer is called on the hot path, from the goroutine
// of Decode: it must be cheap, must not block, and must copy what it
// keeps (header points into the datagram, which is reused).
type SampleSink interface {
	// Offer is given the destination address of the sampled packet, the
	// record's header_protocol (1 Ethernet, 11 IPv4, 12 IPv6),
	// frame_length and stripped fields, the header bytes and the time
	// the datagram was received (Unix ns).
	Offer(dst netip.Addr, proto, frameLength, stripped uint32, header []byte, now int64)
}

// NewDecoder returns a decoder.
func NewDecoder() *Decoder {
	return &Decoder{}
}

// Stats counts what one datagram held.
type Stats struct {
	// Samples is the number of samples in the datagram, of any format.
	Samples int
	// FlowSamples counts flow samples and expanded flow samples.
	FlowSamples int
	// CounterSamples counts counter samples and expanded counter samples.
	CounterSamples int
	// Records is the number of flow records appended to the batch.
	Records int
	// Counters is the number of interface counter sets appended.
	Counters int
	// Skipped counts the samples that added nothing to the batch: unknown
	// or vendor formats, flow samples of non-IP packets, counter samples
	// without generic interface counters.
	Skipped int
}

// Errors of Decode. Their Reason is the metric label.
var (
	errTruncated = &flow.DecodeError{Reason: "truncated",
		Msg: "sflow: datagram ends inside its header: the UDP payload was cut (check the exporter's MTU)"}
	errVersion = &flow.DecodeError{Reason: "version",
		Msg: "sflow: datagram version is not 5: only sFlow v5 is supported, configure the agent to send sFlow version 5 or send it to the NetFlow/IPFIX listener"}
	errAddressType = &flow.DecodeError{Reason: "address_type",
		Msg: "sflow: agent address type is neither 1 (IPv4) nor 2 (IPv6): the datagram is corrupt"}
	errSampleCount = &flow.DecodeError{Reason: "count",
		Msg: "sflow: sample or record count is larger than the datagram can hold: the datagram is corrupt"}
	errSampleLength = &flow.DecodeError{Reason: "sample_length",
		Msg: "sflow: sample length runs past the end of the datagram or is too short for the sample's fields: the datagram is corrupt"}
	errRecordLength = &flow.DecodeError{Reason: "record_length",
		Msg: "sflow: record length runs past the end of its sample or is too short for the record's fields: the datagram is corrupt"}
)
