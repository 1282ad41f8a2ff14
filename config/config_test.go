package config

import (
	"bytes"
	"fmt"
	"github.com/flowsentry/flowsentry/alert"
	"github.com/flowsentry/flowsentry/annotate"
	"github.com/flowsentry/flowsentry/detect"
	_ "github.com/flowsentry/flowsentry/detect/all"
	"github.com/flowsentry/flowsentry/history"
	"github.com/flowsentry/flowsentry/plugin"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/flowsentry/flowsentry/api"
	"github.com/flowsentry/flowsentry/collector"
	"github.com/flowsentry/flowsentry/config/check"
	"github.com/flowsentry/flowsentry/model"
	"github.com/flowsentry/flowsentry/pipeline"
	"github.com/flowsentry/flowsentry/rates"
	"github.com/flowsentry/flowsentry/replay"
	"github.com/flowsentry/flowsentry/samples"
)

// inTempDir moves the test into a fresh folder, writes files there (name →
// content) and returns the folder.
func inTempDir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	t.Chdir(dir)
	for name, content := range files {
		if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestDefault(t *testing.T) {
	private := []string{"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"}
	want := Config{
		DataDir:   "./data",
		PluginDir: "./plugins",
		HTTP:      api.DefaultConfig(),
		Collector: collector.DefaultConfig(),
		Model: model.Config{
			Partitions:    []model.PartitionConfig{{CID: 0, Name: "default", Internal: private}},
			TrafficGroups: []model.TrafficGroupConfig{{ID: 1, Name: "internal", Partition: 0, CIDRs: private}},
		},
		Pipeline:    pipeline.DefaultConfig(),
		Rates:       rates.DefaultConfig(),
		Replay:      replay.DefaultConfig(),
		Admin:       AdminConfig{User: "admin"},
		Alerts:      alert.DefaultConfig(),
		Baselines:   detect.DefaultBaselineConfig(),
		Samples:     samples.DefaultConfig(),
		Plugins:     plugin.DefaultRunnerConfig(),
		Annotations: annotate.DefaultConfig(),
		History:     history.DefaultConfig(),
	}
	if diff := cmp.Diff(Default(), want, cmpopts.EquateComparable(netip.Addr{}, netip.Prefix{})); diff != "" {
		t.Errorf("Default() (-got +want):\n%s", diff)
	}
	if err := Default().Validate(); err != nil {
		t.Errorf("Default().Validate() = %v", err)
	}
	// The products' promise: no file means HTTP on 127.0.0.1:8080,
	// NetFlow/IPFIX on UDP 2055 and sFlow on UDP 6343.
	if got := Default().HTTP.Address; got != "127.0.0.1:8080" {
		t.Errorf("HTTP address %q", got)
	}
	wantListeners := []collector.ListenerConfig{{Address: ":2055", Protocol: "netflow"}, {Address: ":6343", Protocol: "sflow"}}
	if diff := cmp.Diff(Default().Collector.Listeners, wantListeners); diff != "" {
		t.Errorf("listeners (-got +want):\n%s", diff)
	}
}

func TestLoadErrors(t *testing.T) {
	const topKeys = "data_dir, plugin_dir, http, collector, partitions, traffic_groups, interfaces, blacklists, pipeline, rates, replay, admin, alerts, baselines, samples, plugins, actions, annotations, history, instances, policies"
	for _, tc := range []struct {
		name string
		yaml string
		want string // DIR stands for the test's folder
	}{
		{"unknown key", `
traffic_groups:
  - id: 1
    name: web
    partition: 0
    cidr: [10.0.0.0/8]
`, `flowsentry.yaml:6: unknown key "cidr" in traffic_groups[0]; valid keys: id, name, partition, cidrs`},
		{"unknown top-level key", "datadir: /var/lib/flowsentry\n",
			`flowsentry.yaml:1: unknown key "datadir" at the top level; valid keys: ` + topKeys},
		{"unknown key in a component", "http:\n  adress: :80\n",
			`flowsentry.yaml:2: unknown key "adress" in http; valid keys: address, tls_cert, tls_key, max_connections, max_connections_per_client, read_header_timeout, idle_timeout`},
		{"not an integer", `
traffic_groups:
  - name: web
    partition: 0
    id: one
`, `flowsentry.yaml:5: traffic_groups[0].id: "one" is not an integer`},
		{"negative", "partitions:\n  - cid: -1\n",
			`flowsentry.yaml:2: partitions[0].cid: "-1" is out of range; use an integer from 0 to 4294967295`},
		{"too large", "interfaces:\n  - ifindex: 4294967296\n",
			`flowsentry.yaml:2: interfaces[0].ifindex: "4294967296" is out of range; use an integer from 0 to 4294967295`},
		{"not a duration", "blacklists:\n  - refresh: 1 hour\n",
			`flowsentry.yaml:2: blacklists[0].refresh: "1 hour" is not a duration; write a number and a unit, e.g. "30s", "5m" or "1h"`},
		{"duration without unit", "rates:\n  window: 10\n",
			`flowsentry.yaml:2: rates.window: "10" is not a duration; write a number and a unit, e.g. "30s", "5m" or "1h"`},
		{"mapping for a list", "partitions: {cid: 0}\n",
			`flowsentry.yaml:1: partitions: expected a list, not a mapping; write each item on its own line after "- ", or [a, b]`},
		{"value for a mapping", "http: 127.0.0.1:80\n",
			`flowsentry.yaml:1: http: expected a mapping with the keys address, tls_cert, tls_key, max_connections, max_connections_per_client, read_header_timeout, idle_timeout, not "127.0.0.1:80"`},
		{"list for a value", "data_dir: [a, b]\n",
			`flowsentry.yaml:1: data_dir: expected a value, not a list`},
		{"top level not a mapping", "- data_dir\n",
			`flowsentry.yaml:1: top level: expected a mapping with the keys ` + topKeys + `, not a list`},
		{"repeated key", "data_dir: a\nplugin_dir: p\ndata_dir: b\n",
			`flowsentry.yaml:3: key "data_dir" is repeated at the top level (first on line 1); keep one`},
		{"complex key", "http:\n  ? [a]\n  : 1\n",
			`flowsentry.yaml:2: http: a key must be a name, not a list`},
		{"syntax error", "partitions:\n  - cid: 0\n   name: x\n",
			`flowsentry.yaml:2: invalid YAML: did not find expected '-' indicator`},
		{"syntax error from the scanner", "partitions:\n  - cid: 0\n    name: x: y\n",
			`flowsentry.yaml:3: invalid YAML: mapping values are not allowed in this context`},
		{"syntax error at the end", "partitions: [\n",
			`flowsentry.yaml:1: invalid YAML: did not find expected node content`},
		{"unknown alias", "data_dir: *nowhere\n",
			`flowsentry.yaml:1: invalid YAML: unknown anchor 'nowhere' referenced`},
		{"two documents", "data_dir: a\n---\ndata_dir: b\n",
			`flowsentry.yaml:2: a second YAML document begins here; a configuration file holds one document, so remove this "---"`},
		{"validation errors at their lines", `
traffic_groups:
  - id: 1
    name: web
    partition: 3
    cidrs:
      - 10.0.0.0/8
      - 10.1.2.3/8
`, `flowsentry.yaml:5: traffic_groups[0].partition: partition 3 is not configured; use a cid listed under partitions: 0
flowsentry.yaml:8: traffic_groups[0].cidrs[1]: "10.1.2.3/8" has host bits set; write "10.0.0.0/8"`},
		{"missing key at its parent's line", `
traffic_groups:
  - id: 1
    partition: 0
    cidrs: [10.0.0.0/8]
`, `flowsentry.yaml:3: traffic_groups[0].name: is empty; give the traffic group a name`},
		{"component validation", `
collector:
  listeners:
    - address: ":2055"
      protocol: netflow
    - address: ":6343"
      protocol: netflw
`, `flowsentry.yaml:7: collector.listeners[1].protocol: "netflw" is not a protocol; use netflow (NetFlow v5, v9 and IPFIX) or sflow`},
		{"error in a default value", "partitions:\n  - cid: 1\n    name: tenant\n",
			`flowsentry.yaml: traffic_groups[0].partition (a default, not set in the file): partition 0 is not configured; use a cid listed under partitions: 1`},
		{"blacklist file relative to the config file", "blacklists:\n  - id: 1\n    name: drop\n    file: missing.txt\n",
			`flowsentry.yaml:4: blacklists[0].file: open DIR/missing.txt: no such file or directory; give a readable file of addresses and CIDRs`},
		{"several errors in line order", `
replay:
  max_flows: lots
bogus: 1
data_dir: [x]
`, `flowsentry.yaml:3: replay.max_flows: "lots" is not an integer
flowsentry.yaml:4: unknown key "bogus" at the top level; valid keys: ` + topKeys + `
flowsentry.yaml:5: data_dir: expected a value, not a list`},
		{"several validation errors in line order", `
plugin_dir: ""
data_dir: ""
`, `flowsentry.yaml:2: plugin_dir: is empty; give the folder holding one subfolder per plugin, e.g. ./plugins
flowsentry.yaml:3: data_dir: is empty; give the folder for the database and state, e.g. ./data`},
		{"merge key with an unknown key", `
partitions:
  - &p {cid: 0, name: default, zone: x}
  - <<: *p
    cid: 1
`, `flowsentry.yaml:3: unknown key "zone" in partitions[0]; valid keys: cid, name, internal, allow
flowsentry.yaml:3: unknown key "zone" in partitions[1]; valid keys: cid, name, internal, allow`},
		{"alias expansion", aliasBomb(8),
			`flowsentry.yaml:2: partitions[4].cid: aliases expand to too many values; write the values out or use fewer aliases`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := inTempDir(t, map[string]string{"flowsentry.yaml": tc.yaml})
			cfg, err := Load("flowsentry.yaml")
			if err == nil {
				t.Fatalf("Load succeeded")
			}
			want := strings.ReplaceAll(tc.want, "DIR", dir)
			if diff := cmp.Diff(err.Error(), want); diff != "" {
				t.Errorf("Load error (-got +want):\n%s", diff)
			}
			for _, e := range check.Flatten(err) {
				if _, ok := e.(*Error); !ok {
					t.Errorf("%q is a %T, want a *config.Error", e, e)
				}
			}
			if diff := cmp.Diff(cfg, Config{}, cmpopts.EquateComparable(netip.Addr{}, netip.Prefix{})); diff != "" {
				t.Errorf("Load returned a config with its error (-got +want):\n%s", diff)
			}
		})
	}
	t.Run("missing file", func(t *testing.T) {
		inTempDir(t, nil)
		_, err := Load("flowsentry.yaml")
		want := "read configuration: open flowsentry.yaml: no such file or directory; give an existing file, or no file to run on the defaults"
		if err == nil || err.Error() != want {
			t.Errorf("Load error = %v, want %s", err, want)
		}
	})
}

// aliasBomb returns a configuration whose partitions expand tenfold at
// each of levels levels of aliases.
func aliasBomb(levels int) string {
	var b strings.Builder
	b.WriteString("partitions:\n  - &l0 {cid: 0, name: x}\n")
	for i := 1; i < levels; i++ {
		fmt.Fprintf(&b, "  - &l%d {<<: [%s]}\n", i, strings.TrimSuffix(strings.Repeat(fmt.Sprintf("*l%d, ", i-1), 10), ", "))
	}
	return b.String()
}

func TestLoad(t *testing.T) {
	for _, tc := range []struct {
		name  string
		yaml  string
		files map[string]string
		want  func(dir string, c *Config) // changes to Default() with its paths resolved
	}{
		{"empty file", "", nil, func(string, *Config) {}},
		{"comments only", "# nothing set\n", nil, func(string, *Config) {}},
		{"null document", "~\n", nil, func(string, *Config) {}},
		{"traffic groups replace the default groups, partitions stay", `
traffic_groups:
  - id: 7
    name: dc
    partition: 0
    cidrs: [10.20.0.0/16, 2001:db8::/32]
`, nil, func(_ string, c *Config) {
			c.Model.TrafficGroups = []model.TrafficGroupConfig{{ID: 7, Name: "dc", Partition: 0, CIDRs: []string{"10.20.0.0/16", "2001:db8::/32"}}}
		}},
		{"a mapping sets only its keys", "collector:\n  workers: 3\n", nil, func(_ string, c *Config) {
			c.Collector.Workers = 3
		}},
		{"null keeps a section, empties a list", "collector:\ntraffic_groups:\npartitions:\n  - cid: 0\n    name: only\n", nil, func(_ string, c *Config) {
			c.Model.TrafficGroups = nil
			c.Model.Partitions = []model.PartitionConfig{{CID: 0, Name: "only"}}
		}},
		{"empty list", "replay:\n  sflow_ports: []\n", nil, func(_ string, c *Config) {
			c.Replay.SFlowPorts = nil
		}},
		{"integer forms", "interfaces:\n  - {exporter: 192.0.2.1, ifindex: 010, name: a}\n  - {exporter: 192.0.2.1, ifindex: 0x10, name: b}\n  - {exporter: 192.0.2.1, ifindex: \"+7\", name: c}\n", nil, func(_ string, c *Config) {
			c.Model.Interfaces = []model.InterfaceConfig{
				{Exporter: "192.0.2.1", IfIndex: 10, Name: "a"},
				{Exporter: "192.0.2.1", IfIndex: 16, Name: "b"},
				{Exporter: "192.0.2.1", IfIndex: 7, Name: "c"},
			}
		}},
		{"anchors and merge keys", `
partitions:
  - &base {cid: 0, name: default, internal: &int [10.0.0.0/8]}
  - <<: *base
    cid: 1
    name: tenant
traffic_groups:
  - {id: 1, name: internal, partition: 0, cidrs: *int}
`, nil, func(_ string, c *Config) {
			c.Model.Partitions = []model.PartitionConfig{
				{CID: 0, Name: "default", Internal: []string{"10.0.0.0/8"}},
				{CID: 1, Name: "tenant", Internal: []string{"10.0.0.0/8"}},
			}
			c.Model.TrafficGroups = []model.TrafficGroupConfig{{ID: 1, Name: "internal", Partition: 0, CIDRs: []string{"10.0.0.0/8"}}}
		}},
		{"relative and absolute folders", "data_dir: state\nplugin_dir: /opt/flowsentry/plugins\n", nil, func(dir string, c *Config) {
			c.DataDir, c.PluginDir = filepath.Join(dir, "state"), "/opt/flowsentry/plugins"
		}},
		{"relative blacklist file", "blacklists:\n  - {id: 1, name: drop, file: drop.txt, refresh: 90s}\n",
			map[string]string{"drop.txt": "192.0.2.1\n"}, func(dir string, c *Config) {
				c.Model.Blacklists = []model.BlacklistConfig{{ID: 1, Name: "drop", File: filepath.Join(dir, "drop.txt"), Refresh: 90 * time.Second}}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			files := map[string]string{"flowsentry.yaml": tc.yaml}
			for name, content := range tc.files {
				files[name] = content
			}
			dir := inTempDir(t, files)
			got, err := Load("flowsentry.yaml")
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			want := Default()
			want.DataDir, want.PluginDir = filepath.Join(dir, "data"), filepath.Join(dir, "plugins")
			tc.want(dir, &want)
			if diff := cmp.Diff(got, want, cmpopts.EquateComparable(netip.Addr{}, netip.Prefix{})); diff != "" {
				t.Errorf("Load (-got +want):\n%s", diff)
			}
		})
	}
}

// decodeKinds holds every kind of value the decoder handles beyond those
// Config uses today.
type decodeKinds struct {
	Small  int8           `yaml:"small"`
	Ratio  float64        `yaml:"ratio"`
	Flags  decodeFlags    `yaml:",inline"`
	Ptr    *decodeFlags   `yaml:"ptr"`
	Net    netip.Prefix   `yaml:"net"`
	Labels map[string]int `yaml:"labels"`
	Any    any            `yaml:"any"`
	NoTag  string
	Skip   string `yaml:"-"`
}

type decodeFlags struct {
	On bool `yaml:"on"`
}

func TestDecodeKinds(t *testing.T) {
	for _, tc := range []struct {
		name string
		yaml string
		want decodeKinds
		err  string
	}{
		{"every kind", `
small: -128
ratio: 0.5
on: true
ptr: {on: TRUE}
net: 10.0.0.0/8
labels: {a: 1, b: 2}
any: [x, 1]
notag: n
`, decodeKinds{
			Small: -128, Ratio: 0.5, Flags: decodeFlags{On: true}, Ptr: &decodeFlags{On: true},
			Net: netip.MustParsePrefix("10.0.0.0/8"), Labels: map[string]int{"a": 1, "b": 2},
			Any: []any{"x", 1}, NoTag: "n",
		}, ""},
		{"errors", `
small: 128
ratio: half
on: yes
net: 10.0.0.0/33
labels: {a: x, a: 2}
skip: s
`, decodeKinds{}, `f.yaml:2: small: "128" is out of range; use an integer from -128 to 127
f.yaml:3: ratio: "half" is not a number
f.yaml:4: on: "yes" is not valid; use true or false
f.yaml:5: net: "10.0.0.0/33" is not valid: netip.ParsePrefix("10.0.0.0/33"): prefix length out of range
f.yaml:6: labels.a: "x" is not an integer
f.yaml:6: key "a" is repeated in labels (first on line 6); keep one
f.yaml:7: unknown key "skip" at the top level; valid keys: small, ratio, on, ptr, net, labels, any, notag`},
		{"wrong shapes", "net: [a]\nlabels: [a]\nany: {a: [}\n", decodeKinds{}, `f.yaml:3: invalid YAML: did not find expected node content`},
		{"wrong shapes, valid YAML", "net: [a]\nlabels: [a]\nptr: 1\n", decodeKinds{},
			`f.yaml:1: net: expected a value, not a list
f.yaml:2: labels: expected a mapping, not a list
f.yaml:3: ptr: expected a mapping with the keys on, not "1"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got decodeKinds
			_, err := decodeFile("f.yaml", []byte(tc.yaml), &got)
			gotErr := ""
			if err != nil {
				gotErr = err.Error()
			}
			if diff := cmp.Diff(gotErr, tc.err); diff != "" {
				t.Errorf("error (-got +want):\n%s", diff)
			}
			if err != nil {
				return
			}
			if diff := cmp.Diff(got, tc.want, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
				t.Errorf("decoded (-got +want):\n%s", diff)
			}
		})
	}
}

func TestLocate(t *testing.T) {
	const file = `collector:
  listeners:
    - address: ":2055"
    - address: ":6343"
      protocol: netflw
partitions:
  - cid: 0
    name: default
`
	d, err := decodeFile("f.yaml", []byte(file), new(Config))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		err  error
		want string
	}{
		{check.Prefix("collector", check.Errorf("listeners[1].protocol", "bad")), "f.yaml:5: collector.listeners[1].protocol: bad"},
		{check.Prefix("collector", check.Errorf("listeners[0].protocol", "missing")), "f.yaml:3: collector.listeners[0].protocol: missing"},
		{check.Prefix("collector", check.Errorf("workers", "bad")), "f.yaml:1: collector.workers: bad"},
		{check.Errorf("partitions[0].internal", "empty"), "f.yaml:7: partitions[0].internal: empty"},
		{check.Errorf("partitions", "bad"), "f.yaml:6: partitions: bad"},
		{check.Errorf("http.address", "bad"), "f.yaml: http.address (a default, not set in the file): bad"},
		{check.Errorf("", "whole"), "f.yaml: whole"},
		{fmt.Errorf("not a check error"), "f.yaml: not a check error"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			d.errs = nil
			d.locate(tc.err)
			if got := d.joined().Error(); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestDumpRoundTrip(t *testing.T) {
	example, err := Load("testdata/example.yaml")
	if err != nil {
		t.Fatalf("Load example: %v", err)
	}
	// An empty file is the defaults with their paths made absolute.
	defaults, err := parse("empty.yaml", nil)
	if err != nil {
		t.Fatalf("Load of an empty file: %v", err)
	}
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"default", defaults},
		{"example", example},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := Dump(&buf, tc.cfg); err != nil {
				t.Fatalf("Dump: %v", err)
			}
			got, err := parse("dump.yaml", buf.Bytes())
			if err != nil {
				t.Fatalf("Load of the dump: %v\n%s", err, buf.String())
			}
			if diff := cmp.Diff(got, tc.cfg, cmpopts.EquateComparable(netip.Addr{}, netip.Prefix{})); diff != "" {
				t.Errorf("Load(Dump(cfg)) (-got +want):\n%s", diff)
			}
		})
	}
}

func TestExample(t *testing.T) {
	data, err := os.ReadFile("testdata/example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	d, err := decodeFile("example.yaml", data, new(Config))
	if err != nil {
		t.Fatal(err)
	}
	// Every key, with lists at their first item, must be in the example.
	var missing []string
	for _, p := range keyPaths(reflect.TypeFor[Config](), "") {
		if _, ok := d.lines[p]; !ok {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		t.Errorf("testdata/example.yaml does not set %s", strings.Join(missing, ", "))
	}

	cfg, err := Load("testdata/example.yaml")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	abs, err := filepath.Abs("testdata/drop.txt")
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Model.Blacklists[0].File; got != abs {
		t.Errorf("blacklist file %q, want %q", got, abs)
	}
	m, err := model.Build(cfg.Model)
	if err != nil {
		t.Fatalf("model.Build: %v", err)
	}
	for _, tc := range []struct {
		addr       string
		groups     []string
		blacklists []uint32
	}{
		{"10.20.99.1", []string{"datacenter", "internal"}, nil},
		{"198.51.100.7", []string{"web"}, nil},
		{"192.0.2.9", nil, []uint32{1}},
		{"2001:db8:bad::1", nil, []uint32{1}},
	} {
		addr := netip.MustParseAddr(tc.addr)
		var groups []string
		for _, i := range m.GroupsOf(addr) {
			groups = append(groups, m.Groups[i].Name)
		}
		slices.Sort(groups)
		if diff := cmp.Diff(groups, tc.groups); diff != "" {
			t.Errorf("%s groups (-got +want):\n%s", tc.addr, diff)
		}
		if diff := cmp.Diff(m.Blacklisted(addr), tc.blacklists); diff != "" {
			t.Errorf("%s blacklists (-got +want):\n%s", tc.addr, diff)
		}
	}
	if got := m.InterfaceName(netip.MustParseAddr("192.0.2.1"), 3); got != "uplink-transit" {
		t.Errorf("interface name %q", got)
	}
}

// keyPaths lists the key paths of t, list items as their first item.
func keyPaths(t reflect.Type, prefix string) []string {
	var out []string
	for _, f := range fields(t) {
		p := f.key
		if prefix != "" {
			p = prefix + "." + f.key
		}
		out = append(out, p)
		ft := t.FieldByIndex(f.index).Type
		if ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct {
			p += "[0]"
			ft = ft.Elem()
		}
		if ft.Kind() == reflect.Struct && ft != reflect.TypeFor[time.Duration]() {
			out = append(out, keyPaths(ft, p)...)
		}
	}
	return out
}

// TestReload checks what the SIGHUP handler relies on: a reload that fails
// at config.Load or at model.Build leaves the model in use untouched.
func TestReload(t *testing.T) {
	const good = "blacklists:\n  - {id: 1, name: drop, file: drop.txt}\n"
	inTempDir(t, map[string]string{"flowsentry.yaml": good, "drop.txt": "192.0.2.1\n"})
	reload := func(h *model.Holder) error {
		cfg, err := Load("flowsentry.yaml")
		if err != nil {
			return err
		}
		m, err := model.Build(cfg.Model)
		if err != nil {
			return err
		}
		h.Store(m)
		return nil
	}
	h := new(model.Holder)
	if err := reload(h); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, config, list string
		wantErr            string
	}{
		{"bad config", "traffic_groups: 1\n", "192.0.2.1\n",
			`flowsentry.yaml:1: traffic_groups: expected a list, not "1"; write each item on its own line after "- ", or [a, b]`},
		{"bad blacklist line", good, "192.0.2.1\nnot-an-address\n",
			`blacklist drop: DIR/drop.txt:2: "not-an-address" is not an IP address or CIDR`},
		{"good again", good, "198.51.100.1\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for name, content := range map[string]string{"flowsentry.yaml": tc.config, "drop.txt": tc.list} {
				if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			dir, _ := os.Getwd()
			old := h.Load()
			err := reload(h)
			gotErr := ""
			if err != nil {
				gotErr = err.Error()
			}
			if want := strings.ReplaceAll(tc.wantErr, "DIR", dir); gotErr != want {
				t.Errorf("reload error %q, want %q", gotErr, want)
			}
			if kept := h.Load() == old; kept != (err != nil) {
				t.Errorf("model kept = %v with error %v", kept, err)
			}
			if err != nil && old.Blacklisted(netip.MustParseAddr("192.0.2.1")) == nil {
				t.Error("the old model lost its entries")
			}
		})
	}
	if h.Load().Blacklisted(netip.MustParseAddr("198.51.100.1")) == nil {
		t.Error("the last good reload is not in use")
	}
}

// FuzzLoad checks that any file either fails with errors naming the file
// and a line within it, or loads a configuration that validates and that
// Dump writes back unchanged.
func FuzzLoad(f *testing.F) {
	example, err := os.ReadFile("testdata/example.yaml")
	if err != nil {
		f.Fatal(err)
	}
	var dump bytes.Buffer
	if err := Dump(&dump, Default()); err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{
		string(example),
		dump.String(),
		"",
		"traffic_groups:\n  - id: one\n    cidr: [1]\n",
		"partitions: {cid: 0}\n",
		"a: 1\n---\nb: 2\n",
		aliasBomb(3),
		"partitions:\n  - &p {cid: 0, name: a}\n  - {<<: *p, cid: 1}\n",
	} {
		f.Add(s)
	}
	const file = "testdata/fuzz.yaml" // drop.txt resolves to testdata/drop.txt
	f.Fuzz(func(t *testing.T, content string) {
		cfg, err := parse(file, []byte(content))
		if err != nil {
			lines := max(countLines([]byte(content)), 1)
			for _, e := range check.Flatten(err) {
				ce, ok := e.(*Error)
				if !ok || ce.File != file || ce.Line < 0 || ce.Line > lines || ce.Msg == "" {
					t.Fatalf("error %#v does not point into the file of %d lines", e, lines)
				}
			}
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("loaded config does not validate: %v", err)
		}
		var buf bytes.Buffer
		if err := Dump(&buf, cfg); err != nil {
			t.Fatalf("Dump: %v", err)
		}
		again, err := parse(file, buf.Bytes())
		if err != nil {
			t.Fatalf("Load of the dump: %v\n%s", err, buf.String())
		}
		if diff := cmp.Diff(again, cfg, cmpopts.EquateComparable(netip.Addr{}, netip.Prefix{})); diff != "" {
			t.Fatalf("Load(Dump(cfg)) (-got +want):\n%s", diff)
		}
	})
}
