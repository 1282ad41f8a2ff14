package alertindex

import (
	"cmp"
	"strconv"
	"strings"

	"github.com/flowsentry/flowsentry/alert"
)

// description is what the index computes from an alert's fields once per
// transition.
type description struct {
	object, reason, sources, search string
	// blacklists are the blacklist IDs of a blacklisted_ip alert
	// (CLIENT_BLACKLIST, SERVER_BLACKLIST), 0 left out.
	blacklists []string
}

// maxSources is how many SOURCES the result shows.
const maxSources = 5

// describe says what a is about, why it fired and from where, from its
// fields (see the plugin manual's variables of each type).
func describe(a *alert.Alert) description {
	f := map[string]*alert.Field{}
	for i := range a.Fields {
		f[a.Fields[i].Name] = &a.Fields[i]
	}
	val := func(name string) string {
		if x := f[name]; x != nil {
			return x.Value
		}
		return ""
	}
	in := func(ip, group string) string {
		if group != "" {
			return ip + " in " + group
		}
		return ip
	}
	var d description
	switch {
	case val("TARGET_IP") != "":
		d.object = in(val("TARGET_IP"), val("TARGET_TG_NAME"))
	case val("CLIENT_IP") != "" && val("SERVER_IP") != "":
		d.object = val("CLIENT_IP") + " → " + val("SERVER_IP")
		if p := val("SERVER_PORT"); p != "" && p != "0" {
			d.object += " port " + p
		}
	case val("SENDER_IP") != "":
		d.object = val("SENDER_IP") + " → " + val("RECEIVER_IP")
	case val("SCANNER_IP") != "":
		d.object = "scanner " + val("SCANNER_IP")
	case val("IP") != "":
		d.object = in(val("IP"), val("TGRP_NAME"))
	case val("TGRP_NAME") != "":
		d.object = val("TGRP_NAME")
	case val("EXPORTER_ADDR") != "":
		d.object = "exporter " + val("EXPORTER_ADDR") + " interface " + val("IFINDEX")
	default:
		d.object = a.Key
	}
	if p := val("PORT"); p != "" && p != "0" && !strings.Contains(d.object, " port ") {
		d.object += " port " + p
	}
	d.reason = reason(a, val("THRESHOLD_TYPE"), val("THRESHOLD_VALUE"))
	if a.Type == "blacklisted_ip" {
		var names []string
		for _, side := range []string{"CLIENT", "SERVER"} {
			if id := val(side + "_BLACKLIST"); id != "" && id != "0" {
				d.blacklists = append(d.blacklists, id)
				names = append(names, cmp.Or(val(side+"_BL_NAME"), "blacklist "+id))
			}
		}
		if len(names) > 0 {
			d.reason = "on " + strings.Join(names, " and ")
		}
	}
	if s := f["SOURCES"]; s != nil && len(s.List) > 0 {
		list := s.List[:min(len(s.List), maxSources)]
		d.sources = strings.Join(list, ", ")
		if total, err := strconv.Atoi(val("TOTAL_SOURCES")); err == nil && total > len(list) {
			d.sources += " (" + strconv.Itoa(total) + " in all)"
		}
	}
	var b strings.Builder
	b.WriteString(d.object)
	for _, s := range []string{a.Key, a.CIDName, a.Type} {
		b.WriteString("\n" + s)
	}
	for _, x := range a.Fields {
		if x.Value != "" {
			b.WriteString("\n" + x.Value)
		}
		for _, item := range x.List {
			b.WriteString("\n" + item)
		}
	}
	d.search = strings.ToLower(b.String())
	return d
}

// reason says why a fired: the compared counter's current rate against
// the threshold (threshold_exceeded), or the threshold alone.
func reason(a *alert.Alert, counter, threshold string) string {
	limit, err := strconv.ParseFloat(threshold, 64)
	if threshold == "" || err != nil {
		return ""
	}
	cur, ok := counterOf(a.Cur, counter)
	if !ok {
		return "over the threshold of " + human(limit)
	}
	return counter + " " + human(cur) + "/s > " + human(limit) + "/s"
}

// counterOf returns the value of a THRESHOLD_TYPE counter.
func counterOf(v alert.Values, counter string) (float64, bool) {
	switch counter {
	case "packets_in":
		return v.PacketsIn, true
	case "packets_out":
		return v.PacketsOut, true
	case "bytes_in":
		return v.BytesIn, true
	case "bytes_out":
		return v.BytesOut, true
	case "new_conn":
		return v.NewConn, true
	case "uniq_local_endpoint":
		return v.UniqLocalEndpoint, true
	case "uniq_remote_cidr":
		return v.UniqRemoteCIDR, true
	}
	return 0, false
}

// human formats v with an SI prefix and 3 significant digits: 12.4 k.
func human(v float64) string {
	prefixes := []string{"", " k", " M", " G", " T", " P"}
	i := 0
	for v >= 1000 && i < len(prefixes)-1 {
		v /= 1000
		i++
	}
	return strconv.FormatFloat(v, 'g', 3, 64) + prefixes[i]
}
