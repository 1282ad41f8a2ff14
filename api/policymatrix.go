package api

import (
	"cmp"
	"encoding/json"
	"net/http"
	"net/netip"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/flowsentry/flowsentry/detect"
	"github.com/flowsentry/flowsentry/model"
	"github.com/flowsentry/flowsentry/policy"
	"github.com/flowsentry/flowsentry/rates"
	"github.com/flowsentry/flowsentry/store"
)

// Matrix is the answer of GET /api/v1/policy/matrix: the Policy page's
// table of every partition the user sees.
type Matrix struct {
	// Time is the time of the rate snapshot the rates come from.
	Time time.Time `json:"time"`
	// Partitions are the partitions, in configuration order.
	Partitions []MatrixPartition `json:"partitions"`
}

// MatrixPartition is one partition's section: its columns, its rows and
// a cell per row and column (Cells[row][column]); header rows have none.
type MatrixPartition struct {
	CID  uint32 `json:"cid"`
	Name string `json:"name"`
	// MayChange says whether the user may configure its policies.
	MayChange bool           `json:"may_change"`
	Columns   []MatrixColumn `json:"columns"`
	Rows      []MatrixRow    `json:"rows"`
	Cells     [][]MatrixCell `json:"cells"`
}

// The column kinds.
const (
	colGroups     = "groups"     // the "all traffic groups" template
	colInterfaces = "interfaces" // the "all interfaces" template
	colGroup      = "group"
	colInterface  = "interface"
)

// MatrixColumn is a column: a template column or one traffic group or
// exporter interface.
type MatrixColumn struct {
	// Kind is groups, interfaces (the template columns), group or
	// interface.
	Kind     string     `json:"kind"`
	Name     string     `json:"name"`
	Group    uint32     `json:"tgrp,omitempty"`
	Exporter netip.Addr `json:"exporter_addr,omitzero"`
	IfIndex  uint32     `json:"ifindex,omitempty"`
}

// MatrixRow is a row: a family's header, a family, or one threshold line
// (a counter, with a protocol and port for port lines).
type MatrixRow struct {
	// Key identifies the row within its partition.
	Key string `json:"key"`
	// Parent is the key of the row it folds under; "" for none.
	Parent string `json:"parent,omitempty"`
	// Kind is header (no cells), rate (threshold lines: cells show the
	// current rate) or alerts (cells show the alert counts).
	Kind   string `json:"kind"`
	Family string `json:"family"`
	Label  string `json:"label"`
	// Counter, Proto and Port are the line's threshold_type, proto and
	// port (rate rows).
	Counter string `json:"threshold_type,omitempty"`
	Proto   uint8  `json:"proto,omitempty"`
	Port    uint16 `json:"port,omitempty"`
}

// MatrixCell is one row on one column.
type MatrixCell struct {
	// Policy is the policy in force there; nil for none.
	Policy *CellPolicy `json:"policy"`
	// Rate is the current per-second rate of the row's counter (rate
	// rows of group and interface columns, the sum of the visible
	// objects on template columns); absent otherwise.
	Rate *float64 `json:"rate,omitempty"`
	// LastHour and PrevHour count the alerts active in the last hour and
	// in the hour before.
	LastHour int `json:"last_hour"`
	PrevHour int `json:"prev_hour"`
	// State is red (a policy fired there in the last hour), green (a
	// policy is in force and did not fire) or "" (none).
	State string `json:"state"`
}

// CellPolicy is the policy in force in a cell.
type CellPolicy struct {
	ID   uint64 `json:"id"`
	Name string `json:"name"`
	// Kind is template, override (of the template on this object), mute
	// (an override of severity 0) or policy (bound to this object alone).
	Kind     string        `json:"kind"`
	Severity int           `json:"severity"`
	Source   policy.Source `json:"source,omitempty"`
	// Template is the ID of the template it overrides (or is); 0 for none.
	Template uint64 `json:"template,omitempty"`
}

// rowPolicy is a policy with the line its parameters select.
type rowPolicy struct {
	p       *policy.Policy
	counter string
	proto   uint8
	port    uint16
}

// lineParams reads the threshold_type, proto and port parameters of p, if
// its family has them, from its JSON document: the matrix knows no family.
func lineParams(p *policy.Policy) (counter string, proto uint8, port uint16) {
	doc, err := json.Marshal(p)
	if err != nil {
		return "", 0, 0
	}
	var v struct {
		Counter string `json:"threshold_type"`
		Proto   uint8  `json:"proto"`
		Port    uint16 `json:"port"`
	}
	_ = json.Unmarshal(doc, &v) // our own encoding; a missing key stays zero
	return v.Counter, v.Proto, v.Port
}

// rateFamily reports whether a family's policies are threshold lines: it
// compares a counter (its parameters have a threshold_type key) of the
// rate objects of traffic groups and interfaces (it watches interfaces).
func rateFamily(s policy.Spec) bool {
	return slices.Contains(s.Objects, policy.ObjectInterface) &&
		slices.ContainsFunc(familyParams(s), func(p ParamInfo) bool { return p.Key == "threshold_type" })
}

// counts are the alert counts of one policy by object.
type counts struct {
	byGroup map[uint32][2]int
	byIface map[ifaceKey][2]int
}

type ifaceKey struct {
	exporter netip.Addr
	ifIndex  uint32
}

// portKey identifies a port object of a group or an interface.
type portKey struct {
	obj   uint32 // traffic group ID, or the interface's index in ifaces
	iface ifaceKey
	proto uint8
	port  uint16
}

// matrixInput is what one matrix is computed from.
type matrixInput struct {
	model    *model.Model
	snap     *rates.Snapshot
	policies []policy.Policy
	counts   []store.AlertCount
	now      time.Time
}

// policyMatrix answers GET /api/v1/policy/matrix?cid=.
func (s *Server) policyMatrix(w http.ResponseWriter, r *http.Request, a *Alerting, p Principal) {
	m := s.deps.Model.Load()
	var only *uint32
	if raw := r.URL.Query().Get("cid"); raw != "" {
		cid, err := strconv.ParseUint(raw, 10, 32)
		if err != nil {
			writeError(w, http.StatusBadRequest, "cid=%q is not a number; use a partition's cid from GET /api/v1/partitions, or leave it out for every partition", raw)
			return
		}
		c := uint32(cid)
		if !p.may(c) || !slices.ContainsFunc(m.Partitions, func(pt model.Partition) bool { return pt.CID == c }) {
			writeError(w, http.StatusNotFound, "no partition %d that user %s may see; GET /api/v1/partitions lists them", c, p.Name)
			return
		}
		only = &c
	}
	in := matrixInput{model: m, snap: s.deps.Rates(), policies: a.Policies.List(), now: time.Now()}
	if a.AlertCounts != nil {
		var err error
		if in.counts, err = a.AlertCounts(r.Context(), in.now); err != nil {
			writeError(w, http.StatusInternalServerError, "counting the alerts of the last two hours: %v", err)
			return
		}
	}
	writeJSON(w, http.StatusOK, buildMatrix(in, p, only))
}

// buildMatrix computes the matrix of the partitions p sees (only one when
// only is set).
func buildMatrix(in matrixInput, p Principal, only *uint32) Matrix {
	out := Matrix{Time: in.snap.Time, Partitions: []MatrixPartition{}}
	byPolicy := map[uint64]*counts{}
	for _, c := range in.counts {
		pc := byPolicy[c.Policy]
		if pc == nil {
			pc = &counts{byGroup: map[uint32][2]int{}, byIface: map[ifaceKey][2]int{}}
			byPolicy[c.Policy] = pc
		}
		if c.Exporter.IsValid() {
			k := ifaceKey{c.Exporter, c.IfIndex}
			v := pc.byIface[k]
			pc.byIface[k] = [2]int{v[0] + c.LastHour, v[1] + c.PrevHour}
		} else {
			v := pc.byGroup[c.Group]
			pc.byGroup[c.Group] = [2]int{v[0] + c.LastHour, v[1] + c.PrevHour}
		}
	}
	groupStats := make(map[uint32]*rates.Stats, len(in.snap.Groups))
	for i := range in.snap.Groups {
		groupStats[in.snap.Groups[i].Key.Group] = &in.snap.Groups[i]
	}
	portStats := map[portKey]*rates.Stats{}
	for i := range in.snap.GroupPorts {
		k := in.snap.GroupPorts[i].Key
		portStats[portKey{obj: k.Group, proto: k.Proto, port: k.Port}] = &in.snap.GroupPorts[i]
	}
	for i := range in.snap.InterfacePorts {
		k := in.snap.InterfacePorts[i].Key
		portStats[portKey{iface: ifaceKey{k.Exporter, k.IfIndex}, proto: k.Proto, port: k.Port}] = &in.snap.InterfacePorts[i]
	}
	var ifaces []*rates.Interface
	if p.Admin {
		ifaces = sendingInterfaces(in.snap)
	}
	for _, pt := range in.model.Partitions {
		if !p.may(pt.CID) || (only != nil && *only != pt.CID) {
			continue
		}
		mp := MatrixPartition{CID: pt.CID, Name: pt.Name, MayChange: p.mayChange(pt.CID)}
		mp.Columns = append(mp.Columns, MatrixColumn{Kind: colGroups, Name: "All traffic groups"}, MatrixColumn{Kind: colInterfaces, Name: "All interfaces"})
		for _, g := range in.model.Groups {
			if g.CID == pt.CID && p.seesGroup(g.CID, g.ID) {
				mp.Columns = append(mp.Columns, MatrixColumn{Kind: colGroup, Name: g.Name, Group: g.ID})
			}
		}
		for _, ifc := range ifaces {
			mp.Columns = append(mp.Columns, MatrixColumn{Kind: colInterface, Name: cmp.Or(ifc.Name, ifc.Key.Exporter.String()+"/"+strconv.FormatUint(uint64(ifc.Key.IfIndex), 10)),
				Exporter: ifc.Key.Exporter, IfIndex: ifc.Key.IfIndex})
		}
		var mine []policy.Policy
		for _, pol := range in.policies {
			if pol.CID == pt.CID {
				mine = append(mine, pol)
			}
		}
		rows, members := matrixRows(mine)
		mp.Rows = rows
		mp.Cells = make([][]MatrixCell, len(rows))
		ifaceStats := make(map[ifaceKey]*rates.Stats, len(ifaces))
		for _, ifc := range ifaces {
			ifaceStats[ifaceKey{ifc.Key.Exporter, ifc.Key.IfIndex}] = &ifc.Stats
		}
		for i, row := range rows {
			if row.Kind == "header" {
				continue
			}
			cells := make([]MatrixCell, len(mp.Columns))
			for j, col := range mp.Columns {
				cells[j] = matrixCell(row, col, members[row.Key], byPolicy, func(c MatrixColumn) *rates.Stats {
					switch {
					case c.Kind == colGroup && row.Proto == 0 && row.Port == 0:
						return groupStats[c.Group]
					case c.Kind == colGroup:
						return portStats[portKey{obj: c.Group, proto: row.Proto, port: row.Port}]
					case row.Proto == 0 && row.Port == 0:
						return ifaceStats[ifaceKey{c.Exporter, c.IfIndex}]
					default:
						return portStats[portKey{iface: ifaceKey{c.Exporter, c.IfIndex}, proto: row.Proto, port: row.Port}]
					}
				})
			}
			// The template columns show the sum of their objects' rates.
			if row.Kind == "rate" {
				for j := range cells {
					col := mp.Columns[j]
					if col.Kind != colGroup && col.Kind != colInterface {
						continue
					}
					tj := 0
					if col.Kind == colInterface {
						tj = 1
					}
					if cells[j].Rate != nil {
						sum := *cells[tj].Rate + *cells[j].Rate
						cells[tj].Rate = &sum
					}
				}
			}
			mp.Cells[i] = cells
		}
		out.Partitions = append(out.Partitions, mp)
	}
	return out
}

// sendingInterfaces are the exporter interfaces that sent in the last
// minute (or two rate windows, if longer) before the snapshot, by
// exporter and ifIndex.
func sendingInterfaces(snap *rates.Snapshot) []*rates.Interface {
	recent := max(time.Minute, 2*time.Duration(snap.WindowSeconds)*time.Second)
	var out []*rates.Interface
	for i := range snap.Exporters {
		for j := range snap.Exporters[i].Interfaces {
			ifc := &snap.Exporters[i].Interfaces[j]
			if snap.Time.Sub(ifc.LastSeen) <= recent {
				out = append(out, ifc)
			}
		}
	}
	slices.SortFunc(out, func(a, b *rates.Interface) int {
		return cmp.Or(a.Key.Exporter.Compare(b.Key.Exporter), cmp.Compare(a.Key.IfIndex, b.Key.IfIndex))
	})
	return out
}

// matrixRows lists the rows of a partition whose policies are pols, with
// the policies of each row by its key: a header and a line per distinct
// (threshold_type, proto, port) for the threshold families, a row per
// other family, DDoS subtypes folded under ddos_flood.
func matrixRows(pols []policy.Policy) ([]MatrixRow, map[string][]rowPolicy) {
	members := map[string][]rowPolicy{}
	var rows []MatrixRow
	for _, f := range detect.Families() {
		spec := f.Policy
		name := string(spec.Name)
		if !rateFamily(spec) {
			row := MatrixRow{Key: name, Kind: "alerts", Family: name, Label: name}
			if strings.HasPrefix(name, "ddos_") && spec.Name != ddosParent {
				row.Parent = string(ddosParent)
			}
			rows = append(rows, row)
			for i := range pols {
				if pols[i].Family == spec.Name {
					members[name] = append(members[name], rowPolicy{p: &pols[i]})
				}
			}
			continue
		}
		rows = append(rows, MatrixRow{Key: name, Kind: "header", Family: name, Label: name})
		var lines []MatrixRow
		for i := range pols {
			if pols[i].Family != spec.Name {
				continue
			}
			counter, proto, port := lineParams(&pols[i])
			line := MatrixRow{Key: lineKey(name, counter, proto, port), Parent: name, Kind: "rate", Family: name,
				Label: lineLabel(counter, proto, port), Counter: counter, Proto: proto, Port: port}
			if _, seen := members[line.Key]; !seen {
				lines = append(lines, line)
			}
			members[line.Key] = append(members[line.Key], rowPolicy{p: &pols[i], counter: counter, proto: proto, port: port})
		}
		slices.SortFunc(lines, func(a, b MatrixRow) int {
			return cmp.Or(cmp.Compare(a.Counter, b.Counter), cmp.Compare(a.Proto, b.Proto), cmp.Compare(a.Port, b.Port))
		})
		rows = append(rows, lines...)
	}
	// Move the DDoS subtypes right under their parent.
	var sorted []MatrixRow
	var subtypes []MatrixRow
	for _, r := range rows {
		if r.Parent == string(ddosParent) {
			subtypes = append(subtypes, r)
		}
	}
	for _, r := range rows {
		switch {
		case r.Parent == string(ddosParent):
		case r.Key == string(ddosParent):
			sorted = append(append(sorted, r), subtypes...)
		default:
			sorted = append(sorted, r)
		}
	}
	return sorted, members
}

// ddosParent is the family the DDoS subtypes (ddos_*) fold under.
const ddosParent policy.Family = "ddos_flood"

// lineKey identifies a threshold line.
func lineKey(family, counter string, proto uint8, port uint16) string {
	return family + "/" + counter + "/" + strconv.Itoa(int(proto)) + "/" + strconv.Itoa(int(port))
}

// lineLabel names a threshold line: "bytes_in" or "bytes_in 6/443".
func lineLabel(counter string, proto uint8, port uint16) string {
	if proto == 0 && port == 0 {
		return counter
	}
	return counter + " " + strconv.Itoa(int(proto)) + "/" + strconv.Itoa(int(port))
}

// matrixCell computes one cell from the row's policies (members), the
// alert counts by policy, and the stats of the column's object (stats
// returns nil for none).
func matrixCell(row MatrixRow, col MatrixColumn, members []rowPolicy, byPolicy map[uint64]*counts, stats func(MatrixColumn) *rates.Stats) MatrixCell {
	var c MatrixCell
	target := policy.TargetGroups
	if col.Kind == colInterfaces || col.Kind == colInterface {
		target = policy.TargetInterfaces
	}
	var template, bound *policy.Policy
	for _, m := range members {
		pol := m.p
		if pol.Target != target {
			continue
		}
		if pc := byPolicy[pol.ID]; pc != nil {
			var n [2]int
			switch col.Kind {
			case colGroups:
				for _, v := range pc.byGroup {
					n = [2]int{n[0] + v[0], n[1] + v[1]}
				}
			case colInterfaces:
				for _, v := range pc.byIface {
					n = [2]int{n[0] + v[0], n[1] + v[1]}
				}
			case colGroup:
				n = pc.byGroup[col.Group]
			default:
				n = pc.byIface[ifaceKey{col.Exporter, col.IfIndex}]
			}
			c.LastHour += n[0]
			c.PrevHour += n[1]
		}
		switch {
		case pol.Template():
			if template == nil {
				template = pol
			}
		case col.Kind == colGroup && pol.Group == col.Group,
			col.Kind == colInterface && pol.Exporter == col.Exporter && pol.IfIndex == col.IfIndex:
			if bound == nil {
				bound = pol
			}
		}
	}
	if row.Kind == "rate" {
		rate := 0.0
		if col.Kind == colGroup || col.Kind == colInterface {
			if st := stats(col); st != nil {
				rate = counterRate(st.Cur, row.Counter)
			}
		}
		c.Rate = &rate
	}
	switch {
	case bound != nil:
		kind := "policy"
		if bound.Override != 0 {
			kind = "override"
		}
		if bound.Severity == 0 {
			kind = "mute"
		}
		c.Policy = &CellPolicy{ID: bound.ID, Name: bound.Name, Kind: kind, Severity: bound.Severity, Source: bound.Source, Template: bound.Override}
	case template != nil:
		c.Policy = &CellPolicy{ID: template.ID, Name: template.Name, Kind: "template", Severity: template.Severity, Source: template.Source, Template: template.ID}
	}
	switch {
	case c.LastHour > 0:
		c.State = "red"
	case c.Policy != nil && c.Policy.Severity > 0:
		c.State = "green"
	}
	return c
}

// counterRate is the current rate of a threshold_type; 0 for an unknown
// one.
func counterRate(r rates.Rates, counter string) float64 {
	i := slices.IndexFunc(hostSortKeys, func(k sortKey) bool { return k.name == counter })
	if i < 0 {
		return 0
	}
	return hostSortKeys[i].rate(r)
}

// FamilyInfo is a detector family as GET /api/v1/families lists it.
type FamilyInfo struct {
	Name string `json:"name"`
	// Objects are the object types its policies may watch.
	Objects []string `json:"object_types"`
	// Lines says whether its policies are threshold lines (they have a
	// threshold_type); the Policy page shows them as rate rows.
	Lines  bool        `json:"lines"`
	Params []ParamInfo `json:"params"`
}

// ParamInfo is one parameter of a family.
type ParamInfo struct {
	// Key is the policy's JSON key.
	Key string `json:"key"`
	// Type is number, string, bool, list or object.
	Type string `json:"type"`
	// Default is the value a policy that leaves it out gets.
	Default any `json:"default"`
}

// familyParams lists the parameters of a family with their defaults, read
// from its NewParams struct.
func familyParams(s policy.Spec) []ParamInfo {
	v := reflect.ValueOf(s.NewParams()).Elem()
	t := v.Type()
	var out []ParamInfo
	for i := range t.NumField() {
		f := t.Field(i)
		key, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if !f.IsExported() || key == "-" {
			continue
		}
		out = append(out, ParamInfo{Key: cmp.Or(key, f.Name), Type: kindName(f.Type), Default: v.Field(i).Interface()})
	}
	return out
}

// kindName is the JSON type of a Go type.
func kindName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Bool:
		return "bool"
	case reflect.String:
		return "string"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return "number"
	case reflect.Slice, reflect.Array:
		return "list"
	default:
		return "object"
	}
}

// listFamilies answers GET /api/v1/families: every registered detector
// family with its object types and parameters.
func (s *Server) listFamilies(w http.ResponseWriter, _ *http.Request, _ *Alerting, _ Principal) {
	out := []FamilyInfo{}
	for _, spec := range policy.Families() {
		out = append(out, FamilyInfo{Name: string(spec.Name), Objects: spec.Objects, Lines: rateFamily(spec), Params: familyParams(spec)})
	}
	writeJSON(w, http.StatusOK, out)
}
