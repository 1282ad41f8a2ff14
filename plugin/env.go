package plugin

import (
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Env returns the environment of a plugin call: one KEY=VALUE per
// configuration value of cfg (the instance's values with the policy's
// overrides applied), then the extra entries, already written KEY=VALUE
// (the alert's variables, TKN, ID, AID, FLOWSENTRY_URL, PATH). An extra
// entry replaces a configuration value of the same name. The result is
// sorted by name and holds nothing else: the server's own environment is
// not inherited.
func Env(cfg map[string]string, extra ...string) []string {
	byName := make(map[string]string, len(cfg)+len(extra))
	for k, v := range cfg {
		byName[k] = k + "=" + v
	}
	for _, kv := range extra {
		name, _, _ := strings.Cut(kv, "=")
		byName[name] = kv
	}
	env := make([]string, 0, len(byName))
	for _, name := range slices.Sorted(maps.Keys(byName)) {
		env = append(env, byName[name])
	}
	return env
}

// Number formats a counter or threshold as the plugin contract writes
// them: fixed point with two decimals, e.g. "4361.75". NaN and infinities,
// which no counter should produce, are written "0.00".
func Number(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		v = 0
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}

// Path returns the PATH entry of a call: the non-empty dirs joined with
// ":" in order. Put the folder holding ftnbi first so that plugins find
// it, e.g. Path(ftnbiDir, os.Getenv("PATH")).
func Path(dirs ...string) string {
	return "PATH=" + strings.Join(slices.DeleteFunc(slices.Clone(dirs), func(d string) bool { return d == "" }), ":")
}
