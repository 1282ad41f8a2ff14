package netflow

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"net/netip"

	"github.com/netsampler/goflow2/v2/decoders/netflow"
	"github.com/netsampler/goflow2/v2/decoders/netflowlegacy"

	"github.com/flowsentry/flowsentry/flow"
)

// reference is the oracle of the differential tests. goflow2 v2.2.6 does
// the parsing: headers, template and options template sets, its template
// cache, data and options data sets, variable-length fields, padding. The
// fields goflow2 decoded are then mapped into flow.Record by the rules this
// package documents, written the plain way: a map of the record's fields
// and a switch, no compiled plan. The mapping is ours rather than goflow2's
// producer because the producer does not read what this package must (per
// sampler rates, PSAMP rates, total counts, sysUpTime in IPFIX, fragment
// flags, absolute times in v9) and does not scale counts.
type reference struct {
	exporters map[netip.Addr]*refExporter
}

// refExporter is what the reference keeps per exporter.
type refExporter struct {
	templates *loggedTemplates
	domains   map[refKey]*refDomain
}

type refKey struct {
	version uint16
	domain  uint32
}

type refDomain struct {
	rate       uint32
	samplers   map[uint64]uint32
	sysInit    uint64
	sysInitSet bool
}

// refResult is what the reference made of one datagram.
type refResult struct {
	records   []flow.Record
	noAddress int
	// partial is set when goflow2 stopped before the end of a NetFlow v9
	// datagram because it trusts the header count as a number of sets.
	partial bool
}

// loggedTemplates wraps goflow2's template cache: it logs the template of
// every data set goflow2 decodes, so that the reference can tell a record
// goflow2 read past the end of its set, and hides templates whose records
// take no bytes, on which goflow2 would loop forever.
type loggedTemplates struct {
	netflow.NetFlowTemplateSystem
	used []any
}

func (l *loggedTemplates) GetTemplate(version uint16, domain uint32, id uint16) (any, error) {
	tpl, err := l.NetFlowTemplateSystem.GetTemplate(version, domain, id)
	if err != nil {
		return nil, err
	}
	var fields []netflow.Field
	switch tpl := tpl.(type) {
	case netflow.TemplateRecord:
		fields = tpl.Fields
	case netflow.NFv9OptionsTemplateRecord:
		fields = append(append(fields, tpl.Scopes...), tpl.Options...)
	case netflow.IPFIXOptionsTemplateRecord:
		fields = append(append(fields, tpl.Scopes...), tpl.Options...)
	}
	size := 0
	for _, f := range fields {
		size += int(f.Length) // a variable-length field counts 65535
	}
	if size == 0 {
		return nil, netflow.ErrorTemplateNotFound
	}
	l.used = append(l.used, tpl)
	return tpl, nil
}

func newReference() *reference {
	return &reference{exporters: make(map[netip.Addr]*refExporter)}
}

// decode decodes one datagram.
func (rf *reference) decode(exporter netip.Addr, payload []byte) (res refResult, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("goflow2 panicked: %v", p)
		}
	}()
	if len(payload) < 2 {
		return res, fmt.Errorf("short datagram")
	}
	version := binary.BigEndian.Uint16(payload)
	if version == 5 {
		return refV5(exporter, payload)
	}
	ex := rf.exporters[exporter]
	if ex == nil {
		ex = &refExporter{
			templates: &loggedTemplates{NetFlowTemplateSystem: netflow.CreateTemplateSystem()},
			domains:   make(map[refKey]*refDomain),
		}
		rf.exporters[exporter] = ex
	}
	ex.templates.used = ex.templates.used[:0]
	buf := bytes.NewBuffer(payload)
	var v9 netflow.NFv9Packet
	var ipfix netflow.IPFIXPacket
	if err := netflow.DecodeMessageVersion(buf, ex.templates, &v9, &ipfix); err != nil {
		return res, err
	}
	m := refMsg{version: version, exporter: exporter}
	var sets []any
	var domain uint32
	if version == 9 {
		m.exportNs = int64(v9.UnixSeconds) * 1e9
		m.uptime = v9.SystemUptime
		domain, sets = v9.SourceId, v9.FlowSets
		res.partial = buf.Len() > 0
	} else {
		m.exportNs = int64(ipfix.ExportTime) * 1e9
		domain, sets = ipfix.ObservationDomainId, ipfix.FlowSets
	}
	dm := ex.domains[refKey{version, domain}]
	if dm == nil {
		dm = &refDomain{samplers: make(map[uint64]uint32)}
		ex.domains[refKey{version, domain}] = dm
	}
	used := ex.templates.used
	for _, set := range sets {
		switch set := set.(type) {
		case netflow.DataFlowSet:
			fields := used[0].(netflow.TemplateRecord).Fields
			used = used[1:]
			for _, rec := range set.Records {
				if !complete(fields, rec.Values) {
					break
				}
				r, ok := m.dataRecord(dm, rec.Values)
				if !ok {
					res.noAddress++
					continue
				}
				res.records = append(res.records, r)
			}
		case netflow.OptionsDataFlowSet:
			var scopes, options []netflow.Field
			switch tpl := used[0].(type) {
			case netflow.NFv9OptionsTemplateRecord:
				scopes, options = tpl.Scopes, tpl.Options
			case netflow.IPFIXOptionsTemplateRecord:
				scopes, options = tpl.Scopes, tpl.Options
			}
			used = used[1:]
			for _, rec := range set.Records {
				if !complete(scopes, rec.ScopesValues) || !complete(options, rec.OptionsValues) {
					break
				}
				m.optionsRecord(dm, rec.ScopesValues, rec.OptionsValues)
			}
		}
	}
	return res, nil
}

// complete reports whether goflow2 read every fixed-length field whole: it
// reads a last record from a set's padding when the padding is at least as
// long as the record's fixed-length fields.
func complete(fields []netflow.Field, values []netflow.DataField) bool {
	if len(fields) != len(values) {
		return false
	}
	for i, f := range fields {
		v, _ := values[i].Value.([]byte)
		if f.Length != varLength && len(v) != int(f.Length) {
			return false
		}
	}
	return true
}

// refV5 decodes a NetFlow v5 datagram with goflow2's legacy decoder.
func refV5(exporter netip.Addr, payload []byte) (refResult, error) {
	var p netflowlegacy.PacketNetFlowV5
	if err := netflowlegacy.DecodeMessageVersion(bytes.NewBuffer(payload), &p); err != nil {
		return refResult{}, err
	}
	exportNs := int64(p.UnixSecs)*1e9 + int64(p.UnixNSecs)
	rate := uint32(p.SamplingInterval & 0x3fff)
	if rate == 0 {
		rate = 1
	}
	var res refResult
	for _, rec := range p.Records[:min(int(p.Count), (len(payload)-24)/48)] {
		r := flow.Record{
			Start:    exportNs - int64(int32(p.SysUptime-rec.First))*1e6,
			End:      exportNs - int64(int32(p.SysUptime-rec.Last))*1e6,
			Exporter: exporter,
			InIf:     uint32(rec.Input),
			OutIf:    uint32(rec.Output),
			Src:      addrFromUint32(uint32(rec.SrcAddr)),
			Dst:      addrFromUint32(uint32(rec.DstAddr)),
			SrcPort:  rec.SrcPort,
			DstPort:  rec.DstPort,
			Packets:  uint64(rec.DPkts),
			Bytes:    uint64(rec.DOctets),
			Proto:    rec.Proto,
			TCPFlags: rec.TCPFlags,
			Source:   flow.SourceNetFlowV5,
		}
		refFinish(&r, rate)
		res.records = append(res.records, r)
	}
	return res, nil
}

func addrFromUint32(v uint32) netip.Addr {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], v)
	return netip.AddrFrom4(b)
}

// refMsg is what the reference needs from a v9 / IPFIX header.
type refMsg struct {
	version  uint16
	exporter netip.Addr
	exportNs int64
	uptime   uint32
}

// fieldMap is a record's fields by element number, the last one winning,
// enterprise fields left out. Elements that give the same value share the
// number of the first: 139 (ICMPv6 type and code) is kept as 32, 178 and
// 179 (ICMPv6 type, code) as 176 and 177, 302 (selectorId) as 48.
type fieldMap map[uint16][]byte

var sameValue = map[uint16]uint16{139: 32, 178: 176, 179: 177, 302: 48}

func newFieldMap(values []netflow.DataField) fieldMap {
	f := fieldMap{}
	for _, df := range values {
		if df.PenProvided {
			continue
		}
		ie := df.Type
		if same, ok := sameValue[ie]; ok {
			ie = same
		}
		f[ie], _ = df.Value.([]byte)
	}
	return f
}

func (f fieldMap) has(ie uint16) bool {
	_, ok := f[ie]
	return ok
}

// first returns the first element of ies the record has.
func (f fieldMap) first(ies ...uint16) (uint16, []byte, bool) {
	for _, ie := range ies {
		if v, ok := f[ie]; ok {
			return ie, v, true
		}
	}
	return 0, nil, false
}

func num(v []byte) uint64 {
	var n uint64
	for _, c := range v {
		n = n<<8 | uint64(c)
	}
	return n
}

func allZero(v []byte) bool {
	return !bytes.ContainsFunc(v, func(r rune) bool { return r != 0 })
}

// dataRecord maps a data record; ok is false when it has no source and
// destination address of one family.
func (m refMsg) dataRecord(dm *refDomain, values []netflow.DataField) (r flow.Record, ok bool) {
	r = flow.Record{Start: m.exportNs, End: m.exportNs, Exporter: m.exporter, Source: flow.SourceNetFlowV9}
	if m.version == 10 {
		r.Source = flow.SourceIPFIX
	}
	f := newFieldMap(values)
	v4 := f.has(8) && f.has(12)
	v6 := f.has(27) && f.has(28)
	switch {
	case v6 && (!v4 || !allZero(f[27]) || !allZero(f[28])):
		r.Src, r.Dst = netip.AddrFrom16([16]byte(f[27])), netip.AddrFrom16([16]byte(f[28]))
	case v4:
		r.Src, r.Dst = netip.AddrFrom4([4]byte(f[8])), netip.AddrFrom4([4]byte(f[12]))
	default:
		return r, false
	}
	r.SrcPort = uint16(num(f[7]))
	r.DstPort = uint16(num(f[11]))
	r.Proto = uint8(num(f[4]))
	r.TCPFlags = uint8(num(f[6]))
	if f.has(32) {
		r.ICMPType, r.ICMPCode = uint8(num(f[32])>>8), uint8(num(f[32]))
	}
	if f.has(176) {
		r.ICMPType = uint8(num(f[176]))
	}
	if f.has(177) {
		r.ICMPCode = uint8(num(f[177]))
	}
	r.Fragment = (f.has(197) && f[197][0]&0x20 != 0) || num(f[88]) != 0
	if _, v, ok := f.first(1, 85, 23); ok {
		r.Bytes = num(v)
	}
	if _, v, ok := f.first(2, 86, 24); ok {
		r.Packets = num(v)
	}
	if _, v, ok := f.first(10, 252); ok {
		r.InIf = uint32(num(v))
	}
	if _, v, ok := f.first(14, 253); ok {
		r.OutIf = uint32(num(v))
	}
	if ie, v, ok := f.first(156, 154, 152, 150, 158, 22); ok {
		r.Start = m.time(dm, f, ie, num(v), r.Start)
	}
	if ie, v, ok := f.first(157, 155, 153, 151, 159, 21); ok {
		r.End = m.time(dm, f, ie, num(v), r.End)
	}
	rate := refRate(f)
	if rate == 0 && f.has(48) {
		rate = dm.samplers[num(f[48])]
	}
	if rate == 0 {
		rate = dm.rate
	}
	if rate == 0 {
		rate = 1
	}
	refFinish(&r, rate)
	return r, true
}

// time converts a time field; otherwise is kept when an IPFIX sysUpTime
// offset has no system init time to count from.
func (m refMsg) time(dm *refDomain, f fieldMap, ie uint16, v uint64, otherwise int64) int64 {
	switch ie {
	case 150, 151:
		return int64(v) * 1e9
	case 152, 153:
		return int64(v) * 1e6
	case 154, 155, 156, 157:
		secs := int64(v>>32) - 2208988800
		return secs*1e9 + int64((v&0xffffffff)*1e9/(1<<32))
	case 158, 159:
		return m.exportNs - int64(v)*1000
	}
	if m.version == 9 {
		return m.exportNs - int64(int32(m.uptime-uint32(v)))*1e6
	}
	switch {
	case f.has(160):
		return int64(num(f[160])+v) * 1e6
	case dm.sysInitSet:
		return int64(dm.sysInit+v) * 1e6
	}
	return otherwise
}

// optionsRecord applies an options data record to the domain. NetFlow v9
// scope fields are not read: their types are not elements.
func (m refMsg) optionsRecord(dm *refDomain, scopes, options []netflow.DataField) {
	values := options
	if m.version == 10 {
		values = append(append([]netflow.DataField(nil), scopes...), options...)
	}
	f := newFieldMap(values)
	if rate := refRate(f); rate > 0 {
		if f.has(48) {
			dm.samplers[num(f[48])] = rate
		} else {
			dm.rate = rate
		}
	}
	if m.version == 10 && f.has(160) {
		dm.sysInit, dm.sysInitSet = num(f[160]), true
	}
}

// refRate is the sampling rate a record's fields give, 0 for none.
func refRate(f fieldMap) uint32 {
	interval, space := num(f[305]), num(f[306])
	var r uint64
	switch {
	case num(f[310]) > 0 && num(f[309]) > 0:
		r = num(f[310]) / num(f[309])
	case interval > 0 && f.has(306):
		r = (interval + space) / interval
	case interval > 0:
		r = interval
	case num(f[34]) > 0:
		r = num(f[34])
	default:
		r = num(f[50])
	}
	if r > math.MaxUint32 {
		return math.MaxUint32
	}
	return uint32(r)
}

// refFinish applies the ICMP rule and the sampling rate.
func refFinish(r *flow.Record, rate uint32) {
	if r.Proto == 1 || r.Proto == 58 {
		if r.ICMPType == 0 && r.ICMPCode == 0 && r.SrcPort == 0 {
			r.ICMPType, r.ICMPCode = uint8(r.DstPort>>8), uint8(r.DstPort&0xff)
		}
		r.SrcPort, r.DstPort = 0, 0
	}
	r.SamplingRate = rate
	r.Packets = refScale(r.Packets, rate)
	r.Bytes = refScale(r.Bytes, rate)
}

func refScale(n uint64, rate uint32) uint64 {
	if rate > 0 && n > math.MaxUint64/uint64(rate) {
		return math.MaxUint64
	}
	return n * uint64(rate)
}
