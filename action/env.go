package action

import (
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/flowsentry/flowsentry/alert"
	"github.com/flowsentry/flowsentry/plugin"
)

// systemPath follows the folder holding ftnbi on the PATH of every call.
const systemPath = "/usr/local/bin:/usr/bin:/bin"

// counter is one counter of the plugin contract and where Values keeps it.
type counter struct {
	name string
	get  func(*alert.Values) float64
}

var counters = []counter{
	{"PACKETS_IN", func(v *alert.Values) float64 { return v.PacketsIn }},
	{"PACKETS_OUT", func(v *alert.Values) float64 { return v.PacketsOut }},
	{"BYTES_IN", func(v *alert.Values) float64 { return v.BytesIn }},
	{"BYTES_OUT", func(v *alert.Values) float64 { return v.BytesOut }},
	{"NEW_CONN", func(v *alert.Values) float64 { return v.NewConn }},
}

var uniqCounters = []counter{
	{"UNIQ_LOCAL_ENDPOINT", func(v *alert.Values) float64 { return v.UniqLocalEndpoint }},
	{"UNIQ_REMOTE_CIDR", func(v *alert.Values) float64 { return v.UniqRemoteCIDR }},
}

// env is the environment of a call (see plugin.Env: sorted by name, the
// contract's variables replacing configuration values of the same name):
// the common variables (ID, EARLIEST_UTC, LATEST_UTC, CID, CID_NAME,
// SEVERITY, ALERT_TYPE), the alert type's fields (lists joined with
// spaces), the counters PEAK_, AVG_ and CUR_ of packets, bytes and new
// connections (and the UNIQ_ ones when they apply) with two decimals, the
// instance's configuration values with the policy's overrides applied,
// and TKN, AID, FLOWSENTRY_URL and PATH (the folder holding ftnbi first).
func env(a *alert.Alert, aid uint64, token string, config, overrides map[string]string, url, binDir string) []string {
	vars := make([]string, 0, 12+len(a.Fields)+3*(len(counters)+len(uniqCounters)))
	vars = append(vars,
		"ID="+strconv.FormatUint(a.ID, 10),
		"EARLIEST_UTC="+alert.UTC(a.Earliest),
		"LATEST_UTC="+alert.UTC(a.Latest),
		"CID="+strconv.FormatUint(uint64(a.CID), 10),
		"CID_NAME="+a.CIDName,
		"SEVERITY="+strconv.Itoa(a.Severity),
		"ALERT_TYPE="+a.Type,
	)
	for _, f := range a.Fields {
		v := f.Value
		if f.IsList {
			v = strings.Join(f.List, " ")
		}
		vars = append(vars, f.Name+"="+v)
	}
	list := counters
	if a.Uniq {
		list = append(slices.Clip(counters), uniqCounters...)
	}
	for _, kind := range []struct {
		prefix string
		v      *alert.Values
	}{{"PEAK_", &a.Peak}, {"AVG_", &a.Avg}, {"CUR_", &a.Cur}} {
		for _, c := range list {
			vars = append(vars, kind.prefix+c.name+"="+plugin.Number(c.get(kind.v)))
		}
	}
	vars = append(vars,
		"TKN="+token,
		"AID="+strconv.FormatUint(aid, 10),
		"FLOWSENTRY_URL="+url,
		plugin.Path(binDir, systemPath),
	)
	values := maps.Clone(config)
	if values == nil {
		values = map[string]string{}
	}
	maps.Copy(values, overrides)
	return plugin.Env(values, vars...)
}
