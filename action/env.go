package action

import (
	"maps"
	"os"
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

// serverVars are the variables of the server's environment every call
// gets when they are set, besides those Deps.Env names: mail and other
// tools need HOME, messages and dates need LANG and TZ.
var serverVars = []string{"HOME", "LANG", "TZ"}

// shared is what the environment of every call of a server holds besides
// the alert's variables.
type shared struct {
	url    string   // FLOWSENTRY_URL
	binDir string   // the folder holding ftnbi, first on the PATH
	caFile string   // FTNBI_CA; "" sets none
	pass   []string // NAME=VALUE of the server's environment
}

// shared reads the server's variables passed to plugins: serverVars and
// those d.Env names, when set.
func (d *Deps) shared() shared {
	lookup := d.LookupEnv
	if lookup == nil {
		lookup = os.LookupEnv
	}
	sh := shared{url: d.URL, binDir: d.BinDir, caFile: d.CAFile}
	for _, name := range slices.Concat(serverVars, d.Env) {
		if v, ok := lookup(name); ok {
			sh.pass = append(sh.pass, name+"="+v)
		}
	}
	return sh
}

// env is the environment of a call (see plugin.Env: sorted by name, the
// contract's variables replacing configuration values of the same name):
// the common variables (ID, EARLIEST_UTC, LATEST_UTC, CID, CID_NAME,
// SEVERITY, ALERT_TYPE), the alert type's fields (lists joined with
// spaces), the counters PEAK_, AVG_ and CUR_ of packets, bytes and new
// connections (and the UNIQ_ ones when they apply) with two decimals, the
// instance's configuration values with the policy's overrides applied,
// TKN, AID, FLOWSENTRY_URL, FTNBI_CA (with TLS) and PATH (the folder
// holding ftnbi first), and the server's variables of sh.pass, which every
// other variable of the same name replaces. Nothing else of the server's
// environment is passed.
func env(a *alert.Alert, aid uint64, token string, config, overrides map[string]string, sh shared) []string {
	vars := make([]string, 0, 13+len(a.Fields)+3*(len(counters)+len(uniqCounters)))
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
		"FLOWSENTRY_URL="+sh.url,
		plugin.Path(sh.binDir, systemPath),
	)
	if sh.caFile != "" {
		vars = append(vars, "FTNBI_CA="+sh.caFile)
	}
	values := make(map[string]string, len(sh.pass)+len(config)+len(overrides))
	for _, kv := range sh.pass {
		name, v, _ := strings.Cut(kv, "=")
		values[name] = v
	}
	maps.Copy(values, config)
	maps.Copy(values, overrides)
	return plugin.Env(values, vars...)
}
