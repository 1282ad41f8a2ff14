package api

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/flowsentry/flowsentry/model"
	"github.com/flowsentry/flowsentry/rates"
)

// maxLimit caps the number of objects a list request returns.
const maxLimit = 10000

// Error is the body of every error response.
type Error struct {
	// Error says what is wrong with the request and how to fix it.
	Error string `json:"error"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v) // the client went away; nothing to do
}

func writeError(w http.ResponseWriter, code int, format string, args ...any) {
	writeJSON(w, code, Error{Error: fmt.Sprintf(format, args...)})
}

// health answers 200 {"status":"ok"} when every check passes, and 503
// {"status":"degraded", NAME: ERROR...} naming each failing one.
func (s *Server) health(w http.ResponseWriter, _ *http.Request) {
	body := map[string]string{"status": "ok"}
	code := http.StatusOK
	for name, check := range s.deps.Health {
		if err := check(); err != nil {
			body[name] = err.Error()
			body["status"], code = "degraded", http.StatusServiceUnavailable
		}
	}
	writeJSON(w, code, body)
}

func (s *Server) index(w http.ResponseWriter, r *http.Request) {
	if s.deps.UI != nil && len(s.deps.UI.Pages) > 0 && wantsPage(r) {
		http.Redirect(w, r, s.deps.UI.Pages[0], http.StatusSeeOther)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"name": "flowsentry",
		// Every route is in the OpenAPI document.
		"openapi": "/api/v1/openapi.json",
		"endpoints": []string{
			"/api/v1/partitions", "/api/v1/trafficgroups", "/api/v1/alerts/search", "/api/v1/policies",
			"/api/v1/actions", "/api/v1/history", "/api/v1/events", "/metrics", "/healthz",
		},
	})
}

// Partition is a partition as the API shows it.
type Partition struct {
	CID      uint32         `json:"cid"`
	Name     string         `json:"name"`
	Internal []netip.Prefix `json:"internal"`
}

// partitions lists the partitions the user may see.
func (s *Server) partitions(w http.ResponseWriter, r *http.Request) {
	m := s.deps.Model.Load()
	out := make([]Partition, 0, len(m.Partitions))
	for _, p := range m.Partitions {
		if principal(r).may(p.CID) {
			out = append(out, Partition{CID: p.CID, Name: p.Name, Internal: p.Internal})
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// TrafficGroup is a configured traffic group with its live rates; groups
// that have seen no traffic have zero rates.
type TrafficGroup struct {
	ID    uint32         `json:"id"`
	Name  string         `json:"name"`
	CID   uint32         `json:"cid"`
	CIDRs []netip.Prefix `json:"cidrs"`
	rates.Stats
}

// TrafficGroups joins the model's traffic groups with their rates, in
// configuration order.
func TrafficGroups(m *model.Model, snap *rates.Snapshot) []TrafficGroup {
	byID := make(map[uint32]rates.Stats, len(snap.Groups))
	for _, g := range snap.Groups {
		byID[g.Key.Group] = g
	}
	out := make([]TrafficGroup, 0, len(m.Groups))
	for _, g := range m.Groups {
		st, ok := byID[g.ID]
		if !ok {
			st = rates.Stats{Key: rates.Key{Kind: rates.KindGroup, Group: g.ID}, Name: g.Name, CID: g.CID}
		}
		out = append(out, TrafficGroup{ID: g.ID, Name: g.Name, CID: g.CID, CIDRs: g.CIDRs, Stats: st})
	}
	return out
}

// trafficGroups lists the traffic groups the user sees.
func (s *Server) trafficGroups(w http.ResponseWriter, r *http.Request) {
	out := []TrafficGroup{}
	for _, g := range TrafficGroups(s.deps.Model.Load(), s.deps.Rates()) {
		if principal(r).seesGroup(g.CID, g.ID) {
			out = append(out, g)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// group finds the traffic group named by the {id} path value, writing the
// error response when there is none.
func (s *Server) group(w http.ResponseWriter, r *http.Request) (TrafficGroup, bool) {
	raw := r.PathValue("id")
	id, err := strconv.ParseUint(raw, 10, 32)
	if err != nil {
		writeError(w, http.StatusBadRequest, "traffic group ID %q is not a number; use the numeric ID from GET /api/v1/trafficgroups", raw)
		return TrafficGroup{}, false
	}
	for _, g := range TrafficGroups(s.deps.Model.Load(), s.deps.Rates()) {
		if g.ID == uint32(id) && principal(r).seesGroup(g.CID, g.ID) {
			return g, true
		}
	}
	writeError(w, http.StatusNotFound, "no traffic group with ID %d; GET /api/v1/trafficgroups lists them", id)
	return TrafficGroup{}, false
}

func (s *Server) trafficGroup(w http.ResponseWriter, r *http.Request) {
	if g, ok := s.group(w, r); ok {
		writeJSON(w, http.StatusOK, g)
	}
}

func (s *Server) groupPorts(w http.ResponseWriter, r *http.Request) {
	s.groupObjects(w, r, flowSortKeys, func(snap *rates.Snapshot) []rates.Stats { return snap.GroupPorts })
}

func (s *Server) groupHosts(w http.ResponseWriter, r *http.Request) {
	s.groupObjects(w, r, hostSortKeys, func(snap *rates.Snapshot) []rates.Stats { return snap.Hosts })
}

// sortKey is a value of the "sort" query parameter: the current rate a
// list is ordered by.
type sortKey struct {
	name string
	rate func(rates.Rates) float64
}

// flowSortKeys are the sort keys of every object: the flow counters.
var flowSortKeys = []sortKey{
	{"packets_in", func(r rates.Rates) float64 { return r.PacketsIn }},
	{"packets_out", func(r rates.Rates) float64 { return r.PacketsOut }},
	{"bytes_in", func(r rates.Rates) float64 { return r.BytesIn }},
	{"bytes_out", func(r rates.Rates) float64 { return r.BytesOut }},
	{"new_conn", func(r rates.Rates) float64 { return r.NewConn }},
	{"new_conn_out", func(r rates.Rates) float64 { return r.NewConnOut }},
	{"updates", func(r rates.Rates) float64 { return r.Updates }},
}

// hostSortKeys add the unique counts, which only hosts have: sorting by
// uniq_local_endpoint lists the top scanners.
var hostSortKeys = append(slices.Clip(flowSortKeys),
	sortKey{"uniq_local_endpoint", func(r rates.Rates) float64 { return r.UniqLocalEndpoint }},
	sortKey{"uniq_remote_cidr", func(r rates.Rates) float64 { return r.UniqRemoteCIDR }},
)

// groupObjects lists the objects of one traffic group (see listObjects).
func (s *Server) groupObjects(w http.ResponseWriter, r *http.Request, keys []sortKey, pick func(*rates.Snapshot) []rates.Stats) {
	g, ok := s.group(w, r)
	if !ok {
		return
	}
	listObjects(w, r, keys, pick(s.deps.Rates()), func(k rates.Key) bool { return k.Group == g.ID })
}

// listObjects writes the objects of objs whose key match accepts, sorted
// by a current rate (?sort= one of keys, default bytes_in; ?order=desc,
// the default, or asc) and cut to ?limit= (default 100).
func listObjects(w http.ResponseWriter, r *http.Request, keys []sortKey, objs []rates.Stats, match func(rates.Key) bool) {
	q := r.URL.Query()
	by := cmp.Or(q.Get("sort"), "bytes_in")
	i := slices.IndexFunc(keys, func(k sortKey) bool { return k.name == by })
	if i < 0 {
		names := make([]string, len(keys))
		for j, k := range keys {
			names[j] = k.name
		}
		writeError(w, http.StatusBadRequest, "sort=%q is not valid here; use one of %s", by, strings.Join(names, ", "))
		return
	}
	key := keys[i].rate
	sign := 1 // highest first
	switch order := cmp.Or(q.Get("order"), "desc"); order {
	case "desc":
	case "asc":
		sign = -1
	default:
		writeError(w, http.StatusBadRequest, "order=%q is not valid; use desc (highest first, the default) or asc", order)
		return
	}
	limit := 100
	if raw := q.Get("limit"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || n > maxLimit {
			writeError(w, http.StatusBadRequest, "limit=%q is not valid; use a number from 1 to %d", raw, maxLimit)
			return
		}
		limit = n
	}
	out := []rates.Stats{}
	for _, st := range objs {
		if match(st.Key) {
			out = append(out, st)
		}
	}
	slices.SortStableFunc(out, func(a, b rates.Stats) int { return sign * cmp.Compare(key(b.Cur), key(a.Cur)) })
	if len(out) > limit {
		out = out[:limit]
	}
	writeJSON(w, http.StatusOK, out)
}

// exporters lists the exporters by address, a page at a time (see
// readPage), each with all its interfaces.
func (s *Server) exporters(w http.ResponseWriter, r *http.Request) {
	p, ok := readPage(w, r)
	if !ok {
		return
	}
	// The snapshot is shared: sort a copy.
	ex := slices.Clone(s.deps.Rates().Exporters)
	slices.SortFunc(ex, func(a, b rates.Exporter) int { return a.Addr.Compare(b.Addr) })
	writePage(w, r, p, ex)
}

// exporterInterfaces lists the interfaces of the exporter {addr} by
// ifIndex, a page at a time (see readPage).
func (s *Server) exporterInterfaces(w http.ResponseWriter, r *http.Request) {
	p, ok := readPage(w, r)
	if !ok {
		return
	}
	ex, ok := s.exporter(w, r)
	if !ok {
		return
	}
	ifaces := slices.Clone(ex.Interfaces)
	slices.SortFunc(ifaces, func(a, b rates.Interface) int { return cmp.Compare(a.Key.IfIndex, b.Key.IfIndex) })
	writePage(w, r, p, ifaces)
}

// exporter finds the exporter {addr}, or writes the error.
func (s *Server) exporter(w http.ResponseWriter, r *http.Request) (rates.Exporter, bool) {
	raw := r.PathValue("addr")
	addr, err := netip.ParseAddr(raw)
	if err != nil {
		writeError(w, http.StatusBadRequest, "exporter %q is not an IP address; use the addr of an exporter from GET /api/v1/exporters", raw)
		return rates.Exporter{}, false
	}
	ex := s.deps.Rates().Exporters
	i := slices.IndexFunc(ex, func(x rates.Exporter) bool { return x.Addr == addr.Unmap() })
	if i < 0 {
		writeError(w, http.StatusNotFound, "no exporter %s; GET /api/v1/exporters lists them", addr)
		return rates.Exporter{}, false
	}
	return ex[i], true
}

// interfacePorts lists the port objects (EXPORTER_ADDR+IFINDEX+PROTO+PORT)
// of interface {ifindex} of exporter {addr}, sorted and cut as the ports
// of a traffic group.
func (s *Server) interfacePorts(w http.ResponseWriter, r *http.Request) {
	ex, ok := s.exporter(w, r)
	if !ok {
		return
	}
	raw := r.PathValue("ifindex")
	n, err := strconv.ParseUint(raw, 10, 32)
	if err != nil {
		writeError(w, http.StatusBadRequest, "ifindex %q is not a number; use the ifindex of an interface from GET /api/v1/exporters/%s/interfaces", raw, ex.Addr)
		return
	}
	ifIndex := uint32(n)
	if !slices.ContainsFunc(ex.Interfaces, func(i rates.Interface) bool { return i.Key.IfIndex == ifIndex }) {
		writeError(w, http.StatusNotFound, "exporter %s has no interface %d with traffic; GET /api/v1/exporters/%s/interfaces lists them", ex.Addr, ifIndex, ex.Addr)
		return
	}
	listObjects(w, r, flowSortKeys, s.deps.Rates().InterfacePorts, func(k rates.Key) bool {
		return k.Exporter == ex.Addr && k.IfIndex == ifIndex
	})
}
