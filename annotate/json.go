package annotate

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"

	"github.com/flowsentry/flowsentry/alert"
)

// Alert is an alert in the JSON format of the manual's alert retrieval
// (`ftnbi -alert -j`), member for member and in the same order:
//
//	"version" : 1, "earliest_utc" and "latest_utc" (seconds with 6
//	decimals), "id", "CID", "severity", "alert_type",
//	then the alert's Fields named in lower case (or by their JSON name;
//	"-" leaves one out), in order: lists as
//	arrays, Number fields as JSON numbers (and their list items too),
//	others as strings,
//	then "threshold_value" (2 decimals) when the alert has a
//	THRESHOLD_VALUE field,
//	then "current_values", "peak_values", "average_values", each with
//	packets_in, packets_out, bytes_in, bytes_out, new_conn and, when Uniq,
//	uniq_local_endpoint and uniq_remote_cidr, per second with 2 decimals.
//
// A field named like one of the fixed members is left out, and a Number
// field whose value is not a number is written as a string, so the output
// is always valid JSON.
type Alert alert.Alert

// fixed are the members MarshalJSON writes itself, in lower case.
var fixed = map[string]bool{
	"version": true, "earliest_utc": true, "latest_utc": true, "id": true, "cid": true,
	"severity": true, "alert_type": true, "current_values": true, "peak_values": true, "average_values": true,
}

// MarshalJSON writes the manual's format.
func (a Alert) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, 1024)
	b = append(b, `{"version":1,"earliest_utc":`...)
	b = append(b, alert.UTC(a.Earliest)...)
	b = append(b, `,"latest_utc":`...)
	b = append(b, alert.UTC(a.Latest)...)
	b = append(b, `,"id":`...)
	b = strconv.AppendUint(b, a.ID, 10)
	b = append(b, `,"CID":`...)
	b = strconv.AppendUint(b, uint64(a.CID), 10)
	b = append(b, `,"severity":`...)
	b = strconv.AppendInt(b, int64(a.Severity), 10)
	b = append(b, `,"alert_type":`...)
	b = appendString(b, a.Type)
	var threshold *alert.Field
	for i := range a.Fields {
		f := &a.Fields[i]
		name := strings.ToLower(f.Name)
		switch f.JSON {
		case "-":
			continue
		case "":
		default:
			name = f.JSON
		}
		if name == "threshold_value" {
			threshold = f
			continue
		}
		if fixed[name] {
			continue
		}
		b = append(b, ',')
		b = appendString(b, name)
		b = append(b, ':')
		b = appendField(b, f)
	}
	if threshold != nil {
		b = append(b, `,"threshold_value":`...)
		if v, err := strconv.ParseFloat(threshold.Value, 64); err == nil && !math.IsInf(v, 0) {
			b = appendFixed2(b, v)
		} else {
			b = appendString(b, threshold.Value)
		}
	}
	for _, set := range []struct {
		name string
		v    *alert.Values
	}{{"current_values", &a.Cur}, {"peak_values", &a.Peak}, {"average_values", &a.Avg}} {
		b = append(b, ',')
		b = appendString(b, set.name)
		b = append(b, ':')
		b = appendValues(b, set.v, a.Uniq)
	}
	return append(b, '}'), nil
}

// appendField writes a field's value.
func appendField(b []byte, f *alert.Field) []byte {
	one := func(b []byte, s string) []byte {
		if f.Number && isNumber(s) {
			return append(b, s...)
		}
		return appendString(b, s)
	}
	if !f.IsList && f.List == nil {
		return one(b, f.Value)
	}
	b = append(b, '[')
	for i, s := range f.List {
		if i > 0 {
			b = append(b, ',')
		}
		b = one(b, s)
	}
	return append(b, ']')
}

// appendValues writes one of the counter objects.
func appendValues(b []byte, v *alert.Values, uniq bool) []byte {
	b = append(b, `{"packets_in":`...)
	b = appendFixed2(b, v.PacketsIn)
	b = append(b, `,"packets_out":`...)
	b = appendFixed2(b, v.PacketsOut)
	b = append(b, `,"bytes_in":`...)
	b = appendFixed2(b, v.BytesIn)
	b = append(b, `,"bytes_out":`...)
	b = appendFixed2(b, v.BytesOut)
	b = append(b, `,"new_conn":`...)
	b = appendFixed2(b, v.NewConn)
	if uniq {
		b = append(b, `,"uniq_local_endpoint":`...)
		b = appendFixed2(b, v.UniqLocalEndpoint)
		b = append(b, `,"uniq_remote_cidr":`...)
		b = appendFixed2(b, v.UniqRemoteCIDR)
	}
	return append(b, '}')
}

// appendFixed2 writes v with two decimals, as the manual does; JSON has no
// NaN or infinity, so those are written as null.
func appendFixed2(b []byte, v float64) []byte {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return append(b, "null"...)
	}
	return strconv.AppendFloat(b, v, 'f', 2, 64)
}

// appendString writes s as a JSON string.
func appendString(b []byte, s string) []byte {
	q, _ := json.Marshal(s) // a string always marshals
	return append(b, q...)
}

// isNumber reports whether s is a JSON number literal.
func isNumber(s string) bool {
	return s != "" && (s[0] == '-' || s[0] >= '0' && s[0] <= '9') && json.Valid([]byte(s))
}
