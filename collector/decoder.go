package collector

import (
	"encoding/binary"
	"net/netip"

	"github.com/flowsentry/flowsentry/collector/netflow"
	"github.com/flowsentry/flowsentry/collector/sflow"
	"github.com/flowsentry/flowsentry/flow"
)

// decoder is what a worker needs from the protocol decoders: decode one
// datagram into the batch and say what it held. It belongs to one worker.
type decoder interface {
	decode(exporter netip.Addr, now int64, payload []byte, b *flow.Batch) (stats, error)
	// templates reports whether the datagram carries state the decoder
	// must learn even when the worker sheds load (templates).
	templates(payload []byte) bool
}

// stats is the outcome of one datagram, common to both protocols.
type stats struct {
	// source is the export version, SourceUnknown when not recognised.
	source             flow.Source
	records            int
	templatesLearned   int
	templatesWithdrawn int
	templateMisses     int
	held, heldDropped  int
	replayed           int
	noAddress          int
	skippedSamples     int
	// evicted are the templates, of any exporter, the cache dropped.
	evicted netflow.Evictions
}

// netflowDecoder adapts netflow.Decoder (NetFlow v5, v9, IPFIX).
type netflowDecoder struct{ d *netflow.Decoder }

func (n netflowDecoder) decode(exporter netip.Addr, now int64, payload []byte, b *flow.Batch) (stats, error) {
	var st netflow.Stats
	var err error
	b.Records, st, err = n.d.Decode(exporter, now, payload, b.Records)
	s := stats{
		records:            st.Records,
		templatesLearned:   st.TemplatesLearned,
		templatesWithdrawn: st.TemplatesWithdrawn,
		templateMisses:     st.TemplateMisses,
		held:               st.Held,
		heldDropped:        st.HeldDropped,
		replayed:           st.Replayed,
		noAddress:          st.NoAddress,
		evicted:            st.Evicted,
	}
	switch st.Version {
	case 5:
		s.source = flow.SourceNetFlowV5
	case 9:
		s.source = flow.SourceNetFlowV9
	case 10:
		s.source = flow.SourceIPFIX
	}
	return s, err
}

func (netflowDecoder) templates(payload []byte) bool { return netflow.CarriesTemplates(payload) }

// sflowDecoder adapts sflow.Decoder. The exporter is the agent address
// inside the datagram, which the decoder reads itself.
type sflowDecoder struct{ d *sflow.Decoder }

func (s sflowDecoder) decode(_ netip.Addr, now int64, payload []byte, b *flow.Batch) (stats, error) {
	st, err := s.d.Decode(now, payload, b)
	out := stats{records: st.Records, skippedSamples: st.Skipped}
	if len(payload) >= 4 && binary.BigEndian.Uint32(payload) == 5 {
		out.source = flow.SourceSFlow
	}
	return out, err
}

// templates is false: sFlow datagrams are self-contained.
func (sflowDecoder) templates([]byte) bool { return false }
