package action

import (
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/flowsentry/flowsentry/alert"
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

// env is the environment of a call, in this order: the common variables
// (ID, EARLIEST_UTC, LATEST_UTC, CID, CID_NAME, SEVERITY, ALERT_TYPE), the
// alert type's fields (lists joined with spaces), the counters as the
// manual lists them (PEAK_, AVG_, CUR_ of packets, bytes and new
// connections, then the UNIQ_ ones when they apply) with two decimals, the
// instance's configuration values with the policy's overrides applied
// (sorted by key), and TKN, AID, FLOWSENTRY_URL and PATH. A configuration
// key that is also a variable of the contract is left out: the contract's
// value is what the plugin expects.
func env(a *alert.Alert, aid uint64, token string, config, overrides map[string]string, url, binDir string) []string {
	out := make([]string, 0, 16+len(a.Fields)+3*(len(counters)+len(uniqCounters))+len(config))
	out = append(out,
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
		out = append(out, f.Name+"="+v)
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
			out = append(out, kind.prefix+c.name+"="+strconv.FormatFloat(c.get(kind.v), 'f', 2, 64))
		}
	}
	tail := []string{
		"TKN=" + token,
		"AID=" + strconv.FormatUint(aid, 10),
		"FLOWSENTRY_URL=" + url,
		"PATH=" + searchPath(binDir),
	}
	contract := make(map[string]bool, len(out)+len(tail))
	for _, kv := range slices.Concat(out, tail) {
		contract[kv[:strings.IndexByte(kv, '=')]] = true
	}
	values := maps.Clone(config)
	if values == nil {
		values = map[string]string{}
	}
	maps.Copy(values, overrides)
	for _, k := range slices.Sorted(maps.Keys(values)) {
		if !contract[k] {
			out = append(out, k+"="+values[k])
		}
	}
	return append(out, tail...)
}

// searchPath is PATH for plugins: the folder holding ftnbi first.
func searchPath(binDir string) string {
	if binDir == "" {
		return systemPath
	}
	return binDir + ":" + systemPath
}
