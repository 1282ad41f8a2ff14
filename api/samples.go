package api

import (
	"bytes"
	"io"
	"net/http"
	"net/netip"
	"strconv"

	"github.com/flowsentry/flowsentry/alert"
)

// PacketSamples writes the sampled packet headers kept for an attacked
// address as a pcap file (*samples.Store).
type PacketSamples interface {
	// WritePCAP writes the headers kept for target and returns how many
	// it wrote; 0 when none was kept.
	WritePCAP(w io.Writer, target netip.Addr) (n int, err error)
}

// pcapType is the IANA media type of pcap files.
const pcapType = "application/vnd.tcpdump.pcap"

// mountSamples adds GET /api/v1/alerts/{id}/pcap, under the same user
// checks as GET /api/v1/alerts/{id}.
func (s *Server) mountSamples(mux *http.ServeMux, a *Alerting) {
	mux.HandleFunc("GET /api/v1/alerts/{id}/pcap", s.auth(a, s.alertPCAP))
}

// alertPCAP serves the sampled packets sent to the target of a DDoS alert
// (its TARGET_IP field) as a pcap file.
func (s *Server) alertPCAP(w http.ResponseWriter, r *http.Request, a *Alerting, p Principal) {
	al, id, ok := visibleAlert(w, r, a, p)
	if !ok {
		return
	}
	target, ok := targetIP(&al)
	if !ok {
		writeError(w, http.StatusNotFound, "alert %d is a %s alert, not a DDoS alert: packets are kept only for the TARGET_IP of DDoS alerts", id, al.Type)
		return
	}
	if s.deps.Samples == nil {
		writeError(w, http.StatusNotFound, "no sampled packets were kept for this alert: this server keeps no packet headers")
		return
	}
	var buf bytes.Buffer
	n, err := s.deps.Samples.WritePCAP(&buf, target)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "writing the packets of alert %d: %v", id, err)
		return
	}
	if n == 0 {
		writeError(w, http.StatusNotFound, "no sampled packets were kept for this alert: packet headers are kept only for sFlow sources, for an hour after the attack on %s", target)
		return
	}
	h := w.Header()
	h.Set("Content-Type", pcapType)
	h.Set("Content-Disposition", "attachment; filename=alert-"+strconv.FormatUint(id, 10)+".pcap")
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(buf.Bytes()) // the client went away; nothing to do
}

// targetIP returns the TARGET_IP field of a DDoS alert.
func targetIP(al *alert.Alert) (netip.Addr, bool) {
	for _, f := range al.Fields {
		if f.Name != "TARGET_IP" {
			continue
		}
		if a, err := netip.ParseAddr(f.Value); err == nil {
			return a.Unmap(), true
		}
		if pfx, err := netip.ParsePrefix(f.Value); err == nil {
			return pfx.Addr().Unmap(), true
		}
	}
	return netip.Addr{}, false
}
