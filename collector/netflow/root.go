// Package netflow decodes NetFlow v5, NetFlow v9 (RFC 3954) and IPFIX
// (RFC 7011) export datagrams into flow records.
//
// The decoders are built for the collector's hot path: every template is
// compiled once, when it is learned, into a layout that says where each
// value a flow record needs sits in a data record (for templates with
// variable-length fields, a short walk per record moves the offsets). Data
// records are then read with straight-line code and direct byte indexing,
// appended to a caller-owned slice, with no allocation per record.
// Templates, sampling rates and data waiting for its template live in a
// Templates value shared by all workers; each worker owns a Decoder.
//
// Field semantics are documented where they are decided: compile (which
// element gives which value), samplingFields.rate and Decoder.recordRate
// (sampling), finish (ICMP, scaling).
//
// The package neither logs nor touches Prometheus: Decode returns Stats and
// *flow.DecodeError values (one preallocated value per reason) that the
// collector turns into metrics.
package netflow

import (
	"encoding/binary"
	"net/netip"

	"github.com/flowsentry/flowsentry/flow"
)

// Stats is what one Decode call did, for the caller to turn into metrics.
type Stats struct {
	// Version is the export version from the header: 5, 9 or 10 (IPFIX);
	// any other value when the version was not recognised, 0 when the
	// datagram was too short to hold one.
	Version uint16
	// Records is how many flow records were appended to out, replayed
	// records included.
	Records int
	// TemplatesLearned counts the templates and options templates that
	// were new or changed. Templates sent again unchanged are not counted.
	TemplatesLearned int
	// TemplatesWithdrawn counts templates removed by IPFIX withdrawals.
	TemplatesWithdrawn int
	// Evicted counts the templates, of any exporter, the cache dropped
	// during this call to stay within its bounds.
	Evicted Evictions
	// TemplateMisses counts the data sets whose template was unknown.
	TemplateMisses int
	// Held counts datagrams whose template-less data sets were kept to be
	// decoded when their templates arrive.
	Held int
	// HeldDropped counts held datagrams given up during this call: the
	// oldest one when the pending bound is reached, those older than the
	// pending age, or, when holding is disabled, every datagram with a
	// template miss.
	HeldDropped int
	// Replayed counts the records, among Records, decoded from held data
	// because this call brought their template.
	Replayed int
	// NoAddress counts data records dropped because their template holds
	// no source and destination address of one family (templates that
	// only export a frame section, NAT events, and the like).
	NoAddress int
}

// Evictions counts templates dropped from the cache, by cause.
type Evictions struct {
	// ExporterLimit counts templates evicted because their exporter had
	// Config.MaxTemplatesPerExporter templates and sent a new one.
	ExporterLimit int
	// TotalLimit counts templates evicted because the cache held
	// Config.MaxTemplates templates and a new one came.
	TotalLimit int
	// Age counts templates not sent again within Config.TemplateMaxAge.
	Age int
}

// Decoder decodes datagrams into flow records. A Decoder belongs to one
// goroutine (it keeps scratch buffers); several Decoders share one
// Templates.
type Decoder struct {
	t *Templates
	// missed holds, back to back, copies of the current datagram's data
	// sets whose template is unknown, until they are handed to the pending
	// store.
	missed []byte
	// fields is scratch space for the template record being learned.
	fields []field
	// layout is scratch space for the slots of a record of a template
	// with variable-length fields.
	layout layout
	// sampler caches the last sampler lookup of the current data set.
	sampler    uint64
	samplerOK  bool
	samplerHit uint32
	// replayErr is the first error met while decoding held data; it is
	// reported once the current datagram is done.
	replayErr error
}

// NewDecoder returns a decoder that learns templates into, and reads them
// from, t.
func NewDecoder(t *Templates) *Decoder {
	return &Decoder{t: t}
}

// Decode decodes one NetFlow v5, NetFlow v9 or IPFIX datagram, told apart by
// its version field, sent by exporter and received at now (Unix
// nanoseconds; the virtual time in replay). It appends the flow records to
// out and returns it. Records decoded before an error are kept in out; the
// error is a *flow.DecodeError.
//
// now only ages held data and templates: record times come from the
// datagram. payload is not retained: data held for a missing template is
// copied.
func (d *Decoder) Decode(exporter netip.Addr, now int64, payload []byte, out []flow.Record) ([]flow.Record, Stats, error) {
	var st Stats
	d.t.expireHeld(now, &st)
	if len(payload) < 2 {
		return out, st, errTruncated
	}
	st.Version = binary.BigEndian.Uint16(payload)
	start := len(out)
	var err error
	switch st.Version {
	case 5:
		out, err = decodeV5(exporter, payload, out)
	case 9:
		out, err = d.decodeV9(exporter, now, payload, out, &st)
	case 10:
		out, err = d.decodeIPFIX(exporter, now, payload, out, &st)
	default:
		err = errVersion
	}
	if err == nil && d.replayErr != nil {
		err = d.replayErr
	}
	d.replayErr = nil
	st.Records = len(out) - start
	return out, st, err
}

// The errors Decode returns, one per metric reason.
var (
	errTruncated = &flow.DecodeError{Reason: "truncated",
		Msg: "netflow: datagram ends inside its header or inside a data record; the exporter or the network cut it (check the exporter's MTU / export packet size)"}
	errVersion = &flow.DecodeError{Reason: "version",
		Msg: "netflow: unknown export version, want 5, 9 or 10 (IPFIX); send only NetFlow or IPFIX to this port (sFlow has its own listener)"}
	errCount = &flow.DecodeError{Reason: "count",
		Msg: "netflow v5: the header counts more records than the datagram holds; the datagram is malformed or cut"}
	errLength = &flow.DecodeError{Reason: "length",
		Msg: "ipfix: the message length in the header is below 16 bytes or beyond the end of the datagram; the message is malformed or cut"}
	errSetLength = &flow.DecodeError{Reason: "set_length",
		Msg: "netflow: a set (flowset) length is below 4 bytes or runs past the end of the datagram; the datagram is malformed"}
	errTemplateLength = &flow.DecodeError{Reason: "template_length",
		Msg: "netflow: a template record runs past the end of its set, or its scope length or scope field count is invalid; the exporter sent a malformed template"}
	errTemplateID = &flow.DecodeError{Reason: "template_id",
		Msg: "netflow: a template uses an ID below 256, which is reserved for sets; the exporter sent a malformed template"}
	errFieldLength = &flow.DecodeError{Reason: "field_length",
		Msg: "netflow: a template field has a length its information element does not allow (an address that is not 4 or 16 bytes, a number of 0 or more than 8 bytes, a variable-length number); the template is ignored, fix the exporter's template"}
	errZeroLength = &flow.DecodeError{Reason: "zero_length",
		Msg: "netflow: a template has no fields or only zero-length fields, so its records would take no room; the template is ignored"}
)
