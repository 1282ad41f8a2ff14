package rates

import (
	"encoding/json"
	"net/netip"
)

// Kind is the shape of an object, named as the OBJECT_TYPE of the plugin
// contract.
type Kind uint8

// The object kinds.
const (
	// KindGroup is a traffic group (OBJECT_TYPE=TGRP).
	KindGroup Kind = iota
	// KindGroupPort is a protocol and service port of a traffic
	// group (OBJECT_TYPE=TGRP+PROTO+PORT).
	KindGroupPort
	// KindHost is one address inside a traffic group (OBJECT_TYPE=TGRP+IP).
	KindHost
	// KindInterface is an exporter interface
	// (OBJECT_TYPE=EXPORTER_ADDR+IFINDEX).
	KindInterface
	// KindInterfacePort is a protocol and port seen on an exporter
	// interface (OBJECT_TYPE=EXPORTER_ADDR+IFINDEX+PROTO+PORT).
	KindInterfacePort

	// kindExporter is an exporter of the inventory; its objects only count
	// updates and never reach Each or Stats.
	kindExporter
	numKinds
)

var kindNames = [numKinds]string{
	KindGroup:         "TGRP",
	KindGroupPort:     "TGRP+PROTO+PORT",
	KindHost:          "TGRP+IP",
	KindInterface:     "EXPORTER_ADDR+IFINDEX",
	KindInterfacePort: "EXPORTER_ADDR+IFINDEX+PROTO+PORT",
	kindExporter:      "EXPORTER_ADDR",
}

// kindLabels are the "kind" label values of the metrics.
var kindLabels = [numKinds]string{
	KindGroup:         "group",
	KindGroupPort:     "group_port",
	KindHost:          "host",
	KindInterface:     "interface",
	KindInterfacePort: "interface_port",
	kindExporter:      "exporter",
}

// String returns the OBJECT_TYPE of the plugin contract.
func (k Kind) String() string {
	if k >= numKinds {
		return "UNKNOWN"
	}
	return kindNames[k]
}

// MarshalText writes the OBJECT_TYPE.
func (k Kind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// Counter names one per-object quantity; its String is the THRESHOLD_TYPE
// of the plugin contract.
type Counter uint8

// The counters. "In" is toward the object: into the traffic group, to the
// host, into the interface; "out" is away from it.
const (
	// PacketsIn is packets toward the object.
	PacketsIn Counter = iota
	// PacketsOut is packets away from the object.
	PacketsOut
	// BytesIn is layer-3 bytes toward the object.
	BytesIn
	// BytesOut is layer-3 bytes away from the object.
	BytesOut
	// NewConn is new connections toward the object: the plugin contract's
	// new_conn.
	NewConn
	// NewConnOut is new connections away from the object (an extension of
	// the contract, e.g. for hosts that open many connections).
	NewConnOut
	// Updates is flow records that touched the object.
	Updates
	// UniqLocalEndpoint is distinct local addresses a host sent flows to
	// (hosts only; see the package documentation).
	UniqLocalEndpoint
	// UniqRemoteCIDR is distinct remote /24 (IPv4) or /64 (IPv6) blocks a
	// host sent flows to (hosts only).
	UniqRemoteCIDR

	numCounters
)

// numFlow is the number of counters kept in per-second buckets: every
// counter before the unique counts.
const numFlow = int(UniqLocalEndpoint)

var counterNames = [numCounters]string{
	PacketsIn:         "packets_in",
	PacketsOut:        "packets_out",
	BytesIn:           "bytes_in",
	BytesOut:          "bytes_out",
	NewConn:           "new_conn",
	NewConnOut:        "new_conn_out",
	Updates:           "updates",
	UniqLocalEndpoint: "uniq_local_endpoint",
	UniqRemoteCIDR:    "uniq_remote_cidr",
}

// String returns the THRESHOLD_TYPE of the plugin contract.
func (c Counter) String() string {
	if c >= numCounters {
		return "unknown"
	}
	return counterNames[c]
}

// Key identifies an object. Only the fields of its Kind are set: Group for
// the TGRP kinds, IP for hosts, Exporter and IfIndex for the interface
// kinds, Proto and Port for the port kinds. Keys are comparable and stable
// across model reloads (traffic groups are keyed by ID), so detectors can
// keep state in maps keyed by Key. (The fields are ordered to pack into 64
// bytes.)
type Key struct {
	// IP is the host address (IP), never IPv4-mapped IPv6.
	IP netip.Addr
	// Exporter is the exporter address (EXPORTER_ADDR).
	Exporter netip.Addr
	// Group is the traffic group ID (TGRP).
	Group uint32
	// IfIndex is the interface index (IFINDEX).
	IfIndex uint32
	// Port is the service port (PORT, see the package documentation); for ICMP and
	// ICMPv6 it is type<<8|code.
	Port uint16
	// Proto is the IP protocol number (PROTO).
	Proto uint8
	// Kind is the object's shape.
	Kind Kind
}

// MarshalJSON writes the object type and the fields of its kind only, so
// that a zero traffic group ID or port is never confused with "not
// applicable".
func (k Key) MarshalJSON() ([]byte, error) {
	out := struct {
		Type     Kind        `json:"object_type"`
		Group    *uint32     `json:"tgrp,omitempty"`
		Exporter *netip.Addr `json:"exporter_addr,omitempty"`
		IfIndex  *uint32     `json:"ifindex,omitempty"`
		IP       *netip.Addr `json:"ip,omitempty"`
		Proto    *uint8      `json:"proto,omitempty"`
		Port     *uint16     `json:"port,omitempty"`
	}{Type: k.Kind}
	switch k.Kind {
	case KindGroup:
		out.Group = &k.Group
	case KindGroupPort:
		out.Group, out.Proto, out.Port = &k.Group, &k.Proto, &k.Port
	case KindHost:
		out.Group, out.IP = &k.Group, &k.IP
	case KindInterface:
		out.Exporter, out.IfIndex = &k.Exporter, &k.IfIndex
	case KindInterfacePort:
		out.Exporter, out.IfIndex, out.Proto, out.Port = &k.Exporter, &k.IfIndex, &k.Proto, &k.Port
	}
	return json.Marshal(out)
}
