package model

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/flowsentry/flowsentry/config/check"
)

// Config is the network model as written in the configuration file, where
// its keys sit at the top level. Addresses and CIDRs are kept as written so
// that validation can quote them.
type Config struct {
	// Partitions are the tenants; at least one is required.
	Partitions []PartitionConfig `yaml:"partitions"`
	// TrafficGroups are named sets of CIDRs, each in one partition. They may
	// overlap: an address belongs to every group holding it.
	TrafficGroups []TrafficGroupConfig `yaml:"traffic_groups"`
	// Interfaces name exporter interfaces; unnamed interfaces are shown by
	// their ifIndex.
	Interfaces []InterfaceConfig `yaml:"interfaces"`
	// Blacklists are lists of addresses and CIDRs read from files.
	Blacklists []BlacklistConfig `yaml:"blacklists"`
}

// PartitionConfig is one partition.
type PartitionConfig struct {
	// CID is the partition's numeric ID, unique.
	CID uint32 `yaml:"cid"`
	// Name is the display name, unique and not empty.
	Name string `yaml:"name"`
	// Internal are the partition's internal (INT) blocks: canonical CIDRs,
	// or addresses taken as /32 or /128. Empty means no address is internal.
	Internal []string `yaml:"internal"`
	// Allow are remote blocks that never count toward a security detector
	// of the partition (speed-test servers, CDNs, one's own scanners):
	// canonical CIDRs, or addresses taken as /32 or /128. Empty allows
	// nothing.
	Allow []string `yaml:"allow,omitempty"`
}

// TrafficGroupConfig is one traffic group.
type TrafficGroupConfig struct {
	// ID is the numeric traffic group ID, unique and above 0.
	ID uint32 `yaml:"id"`
	// Name is the display name, not empty and unique within the partition.
	Name string `yaml:"name"`
	// Partition is the CID of the partition the group belongs to.
	Partition uint32 `yaml:"partition"`
	// CIDRs are the group's canonical CIDRs, or addresses taken as /32 or
	// /128; at least one.
	CIDRs []string `yaml:"cidrs"`
}

// InterfaceConfig names one exporter interface.
type InterfaceConfig struct {
	// Exporter is the exporter's IP address.
	Exporter string `yaml:"exporter"`
	// IfIndex is the interface's SNMP ifIndex, above 0.
	IfIndex uint32 `yaml:"ifindex"`
	// Name is the name shown for the interface, not empty.
	Name string `yaml:"name"`
}

// BlacklistConfig is one blacklist. Its file holds one address or CIDR a
// line; "#" and ";" start comments (a whole line or the end of one) and
// blank lines are skipped. A bad line makes loading fail: at start-up and on
// reload that is an error, on a refresh the previous list stays in use.
type BlacklistConfig struct {
	// ID is the blacklist's numeric ID, unique and above 0.
	ID uint32 `yaml:"id"`
	// Name is the display name, unique and not empty.
	Name string `yaml:"name"`
	// File is the path of the list; config.Load takes a relative path as
	// relative to the configuration file's folder.
	File string `yaml:"file"`
	// Refresh is how often the file is re-read, at least 1s; 0 means never.
	Refresh time.Duration `yaml:"refresh"`
}

// privateBlocks are the RFC 1918 and RFC 4193 blocks: the default INT blocks
// and the default "internal" traffic group.
var privateBlocks = []string{"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"}

// maxGroups is how many traffic groups lookups can tell apart.
const maxGroups = math.MaxUint16 + 1

// DefaultConfig returns partition 0 "default" with traffic group 1
// "internal" holding the private blocks, which are also its INT blocks.
func DefaultConfig() Config {
	return Config{
		Partitions: []PartitionConfig{
			{CID: 0, Name: "default", Internal: slices.Clone(privateBlocks)},
		},
		TrafficGroups: []TrafficGroupConfig{
			{ID: 1, Name: "internal", Partition: 0, CIDRs: slices.Clone(privateBlocks)},
		},
	}
}

// Validate checks c, including that every blacklist file can be read. The
// errors are *check.Error values with key paths such as
// "traffic_groups[2].cidrs[0]", joined.
func (c Config) Validate() error {
	_, err := c.compile()
	return err
}

// parts is a validated configuration turned into model values; blacklists
// have no entries yet.
type parts struct {
	partitions []Partition
	groups     []TrafficGroup
	ifNames    map[InterfaceKey]string
	blacklists []Blacklist
}

// compile validates c and converts it, so that validation and Build parse
// every value the same way.
func (c Config) compile() (parts, error) {
	var (
		out  parts
		errs []error
	)
	fail := func(path, format string, args ...any) {
		errs = append(errs, check.Errorf(path, format, args...))
	}
	prefixes := func(path string, list []string) []netip.Prefix {
		ps := make([]netip.Prefix, 0, len(list))
		for i, s := range list {
			p, err := parsePrefix(s)
			if err != nil {
				fail(fmt.Sprintf("%s[%d]", path, i), "%v", err)
				continue
			}
			ps = append(ps, p)
		}
		return ps
	}

	if len(c.Partitions) == 0 {
		fail("partitions", "no partition is configured; add one, e.g. {cid: 0, name: default, internal: [10.0.0.0/8]}")
	}
	cids := make(map[uint32]int, len(c.Partitions))
	names := make(map[string]int, len(c.Partitions))
	for i, p := range c.Partitions {
		path := fmt.Sprintf("partitions[%d]", i)
		if j, dup := cids[p.CID]; dup {
			fail(path+".cid", "%d is already the cid of partitions[%d]; give each partition its own cid", p.CID, j)
		} else {
			cids[p.CID] = i
		}
		if strings.TrimSpace(p.Name) == "" {
			fail(path+".name", "is empty; give the partition a name")
		} else if j, dup := names[p.Name]; dup {
			fail(path+".name", "%q is already the name of partitions[%d]; give each partition its own name", p.Name, j)
		} else {
			names[p.Name] = i
		}
		out.partitions = append(out.partitions, Partition{
			CID:      p.CID,
			Name:     p.Name,
			Internal: prefixes(path+".internal", p.Internal),
			Allow:    prefixes(path+".allow", p.Allow),
		})
	}

	if len(c.TrafficGroups) > maxGroups {
		fail("traffic_groups", "%d groups are configured; at most %d are supported", len(c.TrafficGroups), maxGroups)
	}
	type groupName struct {
		cid  uint32
		name string
	}
	ids := make(map[uint32]int, len(c.TrafficGroups))
	groupNames := make(map[groupName]int, len(c.TrafficGroups))
	for i, g := range c.TrafficGroups {
		path := fmt.Sprintf("traffic_groups[%d]", i)
		checkID(fail, "traffic_groups", "traffic group", i, g.ID, ids)
		if strings.TrimSpace(g.Name) == "" {
			fail(path+".name", "is empty; give the traffic group a name")
		} else if j, dup := groupNames[groupName{g.Partition, g.Name}]; dup {
			fail(path+".name", "%q is already the name of traffic_groups[%d] in partition %d; names must be unique within a partition", g.Name, j, g.Partition)
		} else {
			groupNames[groupName{g.Partition, g.Name}] = i
		}
		if _, ok := cids[g.Partition]; !ok {
			fail(path+".partition", "partition %d is not configured; %s", g.Partition, knownCIDs(cids))
		}
		if len(g.CIDRs) == 0 {
			fail(path+".cidrs", "is empty; list the CIDRs the traffic group holds")
		}
		out.groups = append(out.groups, TrafficGroup{
			ID:    g.ID,
			Name:  g.Name,
			CID:   g.Partition,
			CIDRs: prefixes(path+".cidrs", g.CIDRs),
		})
	}

	ifaces := make(map[InterfaceKey]int, len(c.Interfaces))
	for i, ifc := range c.Interfaces {
		path := fmt.Sprintf("interfaces[%d]", i)
		addr, err := netip.ParseAddr(ifc.Exporter)
		validAddr := err == nil && addr.Zone() == ""
		if !validAddr {
			fail(path+".exporter", "%q is not an IP address; write the exporter's address, e.g. 192.0.2.1", ifc.Exporter)
		}
		if ifc.IfIndex == 0 {
			fail(path+".ifindex", "0 is not valid; use the interface's SNMP ifIndex, from 1 to %d", uint32(math.MaxUint32))
		}
		if strings.TrimSpace(ifc.Name) == "" {
			fail(path+".name", "is empty; give the interface a name")
		}
		if !validAddr || ifc.IfIndex == 0 {
			continue
		}
		key := InterfaceKey{Exporter: addr.Unmap(), IfIndex: ifc.IfIndex}
		if j, dup := ifaces[key]; dup {
			fail(path, "exporter %s ifindex %d is already named by interfaces[%d]; keep one", key.Exporter, key.IfIndex, j)
			continue
		}
		ifaces[key] = i
		if out.ifNames == nil {
			out.ifNames = make(map[InterfaceKey]string, len(c.Interfaces))
		}
		out.ifNames[key] = ifc.Name
	}

	listIDs := make(map[uint32]int, len(c.Blacklists))
	listNames := make(map[string]int, len(c.Blacklists))
	for i, b := range c.Blacklists {
		path := fmt.Sprintf("blacklists[%d]", i)
		checkID(fail, "blacklists", "blacklist", i, b.ID, listIDs)
		if strings.TrimSpace(b.Name) == "" {
			fail(path+".name", "is empty; give the blacklist a name")
		} else if j, dup := listNames[b.Name]; dup {
			fail(path+".name", "%q is already the name of blacklists[%d]; give each blacklist its own name", b.Name, j)
		} else {
			listNames[b.Name] = i
		}
		if err := checkReadable(b.File); err != nil {
			fail(path+".file", "%v", err)
		}
		switch {
		case b.Refresh < 0:
			fail(path+".refresh", "%s is negative; use at least 1s, or 0 to never refresh", b.Refresh)
		case b.Refresh > 0 && b.Refresh < time.Second:
			fail(path+".refresh", "%s is too short; use at least 1s, or 0 to never refresh", b.Refresh)
		}
		out.blacklists = append(out.blacklists, Blacklist{ID: b.ID, Name: b.Name, File: b.File, Refresh: b.Refresh})
	}
	if err := errors.Join(errs...); err != nil {
		return parts{}, err
	}
	return out, nil
}

// knownCIDs tells which partitions a traffic group may name.
func knownCIDs(cids map[uint32]int) string {
	if len(cids) == 0 {
		return "configure it under partitions"
	}
	list := slices.Sorted(maps.Keys(cids))
	s := make([]string, len(list))
	for i, cid := range list {
		s[i] = fmt.Sprint(cid)
	}
	return "use a cid listed under partitions: " + strings.Join(s, ", ")
}

// checkReadable tells what keeps file from being read as a blacklist.
func checkReadable(file string) error {
	if file == "" {
		return errors.New("is empty; give the path of a file of addresses and CIDRs")
	}
	f, err := os.Open(file)
	if err != nil {
		return fmt.Errorf("%w; give a readable file of addresses and CIDRs", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("%w; give a readable file of addresses and CIDRs", err)
	}
	if st.IsDir() {
		return fmt.Errorf("%s is a folder; give a file of addresses and CIDRs", file)
	}
	return nil
}

// Build validates cfg, reads the blacklist files and builds the snapshot,
// with its prefix tables, once. It returns either a complete model or an
// error, so a failed reload leaves the model in use untouched.
func Build(cfg Config) (*Model, error) {
	p, err := cfg.compile()
	if err != nil {
		return nil, err
	}
	for i := range p.blacklists {
		b := &p.blacklists[i]
		if b.entries, err = readBlacklist(b.File); err != nil {
			return nil, fmt.Errorf("blacklist %s: %w", b.Name, err)
		}
	}
	return New(p.partitions, p.groups, p.ifNames).withBlacklists(p.blacklists), nil
}

// checkID reports an id of item i of list that is 0 or already used by an
// earlier item (seen maps ids to their item), and records it.
func checkID(fail func(path, format string, args ...any), list, what string, i int, id uint32, seen map[uint32]int) {
	path := fmt.Sprintf("%s[%d].id", list, i)
	if id == 0 {
		fail(path, "0 is not valid; use an integer from 1 to %d", uint32(math.MaxUint32))
	} else if j, dup := seen[id]; dup {
		fail(path, "%d is already the id of %s[%d]; give each %s its own id", id, list, j, what)
	} else {
		seen[id] = i
	}
}
