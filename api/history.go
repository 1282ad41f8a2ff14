package api

import (
	"context"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/flowsentry/flowsentry/history"
	"github.com/flowsentry/flowsentry/model"
	"github.com/flowsentry/flowsentry/rates"
)

// HistoryReader reads the rate history (*store.Store).
type HistoryReader interface {
	// ReadHistory returns the minutes of series k in [from, to), by time.
	ReadHistory(ctx context.Context, k rates.Key, from, to time.Time) ([]history.Point, error)
}

// Limits of GET /api/v1/history.
const (
	// historyPoints is how many points an answer holds at most by
	// default; longer ranges are downsampled.
	historyPoints = 1000
	// historyMaxPoints caps the max_points parameter.
	historyMaxPoints = 10_000
	// historyDefaultRange is the range when from is left out.
	historyDefaultRange = 24 * time.Hour
)

// historyKinds are the kind parameter's values.
var historyKinds = map[string]rates.Kind{
	"group": rates.KindGroup, "interface": rates.KindInterface,
	"group_port": rates.KindGroupPort, "interface_port": rates.KindInterfacePort,
}

// historyAnswer is the answer of GET /api/v1/history, in columns (as
// uPlot takes them): T[i] is the start of step i in Unix seconds, and
// Avg[name][i] and Peak[name][i] its values.
type historyAnswer struct {
	Series      historySeries        `json:"series"`
	From        time.Time            `json:"from"`
	To          time.Time            `json:"to"`
	StepSeconds int                  `json:"step_seconds"`
	T           []int64              `json:"t"`
	Avg         map[string][]float64 `json:"avg"`
	Peak        map[string][]float64 `json:"peak"`
}

// historySeries names the series answered.
type historySeries struct {
	Kind     string      `json:"kind"`
	Group    *uint32     `json:"id,omitempty"`
	Name     string      `json:"name,omitempty"`
	CID      *uint32     `json:"cid,omitempty"`
	Exporter *netip.Addr `json:"exporter,omitempty"`
	IfIndex  *uint32     `json:"ifindex,omitempty"`
	Proto    *uint8      `json:"proto,omitempty"`
	Port     *uint16     `json:"port,omitempty"`
}

// history serves GET /api/v1/history: the per-minute average and peak of
// one series' counters, downsampled to at most max_points steps.
func (s *Server) history(w http.ResponseWriter, r *http.Request, _ *Alerting, p Principal) {
	if s.deps.History == nil {
		writeError(w, http.StatusNotFound, "this server keeps no rate history")
		return
	}
	q := r.URL.Query()
	kind, ok := historyKinds[q.Get("kind")]
	if !ok {
		writeError(w, http.StatusBadRequest, "kind %q is not valid; use kind=group, interface, group_port or interface_port", q.Get("kind"))
		return
	}
	k := rates.Key{Kind: kind}
	ans := historyAnswer{Series: historySeries{Kind: q.Get("kind")}}
	ok = true
	num := func(name string, bits int) uint64 {
		v, err := strconv.ParseUint(q.Get(name), 10, bits)
		if err != nil && ok {
			writeError(w, http.StatusBadRequest, "%s=%q is not valid; give a number from 0 to %d", name, q.Get(name), uint64(1)<<bits-1)
			ok = false
		}
		return v
	}
	if kind == rates.KindGroup || kind == rates.KindGroupPort {
		if k.Group = uint32(num("id", 32)); !ok {
			return
		}
		m := s.deps.Model.Load()
		i := slices.IndexFunc(m.Groups, func(g model.TrafficGroup) bool { return g.ID == k.Group })
		if i < 0 || !p.seesGroup(m.Groups[i].CID, k.Group) {
			writeError(w, http.StatusNotFound, "no traffic group %d among those you may see; list them with GET /api/v1/trafficgroups", k.Group)
			return
		}
		g := &m.Groups[i]
		ans.Series.Group, ans.Series.Name, ans.Series.CID = &k.Group, g.Name, &g.CID
	} else {
		if !p.Admin {
			writeError(w, http.StatusForbidden, "interface history is for administrators only; ask one, or use kind=group")
			return
		}
		a, err := netip.ParseAddr(q.Get("exporter"))
		if err != nil {
			writeError(w, http.StatusBadRequest, "exporter=%q is not an IP address; give the exporter's address, e.g. exporter=192.0.2.1", q.Get("exporter"))
			return
		}
		k.Exporter, k.IfIndex = a.Unmap(), uint32(num("ifindex", 32))
		ans.Series.Exporter, ans.Series.IfIndex = &k.Exporter, &k.IfIndex
	}
	if kind == rates.KindGroupPort || kind == rates.KindInterfacePort {
		k.Proto, k.Port = uint8(num("proto", 8)), uint16(num("port", 16))
		ans.Series.Proto, ans.Series.Port = &k.Proto, &k.Port
	}
	if !ok {
		return
	}
	var err error
	to, from := time.Now().UTC(), time.Time{}
	for _, t := range []struct {
		name string
		dst  *time.Time
	}{{"to", &to}, {"from", &from}} {
		if v := q.Get(t.name); v != "" {
			if *t.dst, err = time.Parse(time.RFC3339, v); err != nil {
				writeError(w, http.StatusBadRequest, "%s=%q is not an RFC 3339 time; give e.g. %s=2026-03-14T10:00:00Z", t.name, v, t.name)
				return
			}
		}
	}
	if from.IsZero() {
		from = to.Add(-historyDefaultRange)
	}
	if !from.Before(to) {
		writeError(w, http.StatusBadRequest, "from (%s) is not before to (%s); give a range that ends after it starts", from.Format(time.RFC3339), to.Format(time.RFC3339))
		return
	}
	maxPoints := historyPoints
	if v := q.Get("max_points"); v != "" {
		if maxPoints, err = strconv.Atoi(v); err != nil || maxPoints < 1 || maxPoints > historyMaxPoints {
			writeError(w, http.StatusBadRequest, "max_points=%q is not valid; give 1 to %d (default %d)", v, historyMaxPoints, historyPoints)
			return
		}
	}
	counters, ok := historyCounters(w, q.Get("counter"))
	if !ok {
		return
	}
	points, err := s.deps.History.ReadHistory(r.Context(), k, from, to)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "reading the history: %v", err)
		return
	}
	step := history.StepFor(from, to, maxPoints)
	points = history.Downsample(points, step)
	ans.From, ans.To, ans.StepSeconds = from.UTC(), to.UTC(), int(step/time.Second)
	ans.T = make([]int64, len(points))
	ans.Avg, ans.Peak = map[string][]float64{}, map[string][]float64{}
	for _, c := range counters {
		avg, peak := make([]float64, len(points)), make([]float64, len(points))
		for j, pt := range points {
			avg[j], peak[j] = float64(pt.Avg[c.index])*c.scale, float64(pt.Peak[c.index])*c.scale
		}
		ans.Avg[c.name], ans.Peak[c.name] = avg, peak
	}
	for j, pt := range points {
		ans.T[j] = pt.Time.Unix()
	}
	writeJSON(w, http.StatusOK, ans)
}

// historyCounter is a counter asked for: its name, its index in
// history.Counters, and the factor applied (8 for bits).
type historyCounter struct {
	name  string
	index int
	scale float64
}

// historyCounters parses the counter parameter, a comma-separated list of
// history.Counters and bits_in, bits_out; empty asks for every counter.
func historyCounters(w http.ResponseWriter, list string) ([]historyCounter, bool) {
	if list == "" {
		list = strings.Join(history.Counters[:], ",")
	}
	var out []historyCounter
	for name := range strings.SplitSeq(list, ",") {
		name = strings.TrimSpace(name)
		c := historyCounter{name: name, scale: 1}
		switch name {
		case "bits_in":
			c.index, c.scale = int(rates.BytesIn), 8
		case "bits_out":
			c.index, c.scale = int(rates.BytesOut), 8
		default:
			c.index = slices.Index(history.Counters[:], name)
			if c.index < 0 {
				writeError(w, http.StatusBadRequest, "counter %q is not recorded; use a comma-separated list of %s, bits_in, bits_out", name, strings.Join(history.Counters[:], ", "))
				return nil, false
			}
		}
		out = append(out, c)
	}
	return out, true
}
