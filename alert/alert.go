package alert

import (
	"slices"
	"strconv"
	"time"
)

// Op is what an action is told about an alert: the first argument of a
// plugin call.
type Op string

// The operations of the FlowTraq plugin contract.
const (
	OpCreate Op = "CREATE"
	OpUpdate Op = "UPDATE"
	OpDelete Op = "DELETE"
	OpTest   Op = "TEST"
)

// Values are per-second rates of the counters the plugin contract names.
// Uniq is true when the uniq_* counters apply (TGRP+IP objects).
type Values struct {
	PacketsIn         float64 `json:"packets_in"`
	PacketsOut        float64 `json:"packets_out"`
	BytesIn           float64 `json:"bytes_in"`
	BytesOut          float64 `json:"bytes_out"`
	NewConn           float64 `json:"new_conn"`
	UniqLocalEndpoint float64 `json:"uniq_local_endpoint,omitempty"`
	UniqRemoteCIDR    float64 `json:"uniq_remote_cidr,omitempty"`
}

// Field is one type-specific variable of an alert, named as in the plugin
// environment (upper case, e.g. "OBJECT_TYPE", "TGRP_NAME"). List holds
// the items of list-valued fields (SOURCES, ADDITIONAL_PORTS), which the
// environment joins with spaces and the JSON prints as arrays; Number
// marks fields printed as JSON numbers.
//
// JSON renames the field in the alert's JSON when the manual's JSON example
// names it otherwise than the environment (PORT is "server_port" in a
// DDoS alert); "-" leaves it out of the JSON.
type Field struct {
	Name   string   `json:"name"`
	JSON   string   `json:"json,omitempty"`
	Value  string   `json:"value,omitempty"`
	List   []string `json:"list,omitempty"`
	IsList bool     `json:"is_list,omitempty"`
	Number bool     `json:"number,omitempty"`
}

// Condition is what a detector reports at a tick for one object whose
// policy fired. The pair (Policy, Key) identifies the alert: the same
// condition seen again continues the same alert.
type Condition struct {
	// Policy is the ID of the policy that fired.
	Policy uint64
	// Key identifies the object within the policy, e.g. "TGRP/1" or
	// "TGRP+PROTO+PORT/1/6/80".
	Key string
	// Type is the ALERT_TYPE, e.g. "threshold_exceeded", "ddos_synflood".
	Type string
	// CID and CIDName are the partition.
	CID     uint32
	CIDName string
	// Severity is 1 and up (0 mutes and never reaches the engine).
	Severity int
	// Fields are the type-specific variables, in the manual's order.
	Fields []Field
	// Values are the object's current per-second rates.
	Values Values
	// Uniq says whether the uniq_* values apply.
	Uniq bool
}

// Alert is an open or ended alert. The engine owns it; readers get copies.
type Alert struct {
	// ID is the alert's numeric ID, unique for the life of the database.
	ID uint64 `json:"id"`
	// Policy and Key are the condition's identity.
	Policy uint64 `json:"policy"`
	Key    string `json:"key"`
	// Type, CID, CIDName, Severity and Fields are as in Condition (the
	// latest seen).
	Type     string  `json:"alert_type"`
	CID      uint32  `json:"cid"`
	CIDName  string  `json:"cid_name"`
	Severity int     `json:"severity"`
	Fields   []Field `json:"fields"`
	Uniq     bool    `json:"uniq,omitempty"`
	// Earliest is when the condition was first seen; Latest the last
	// time it was seen (EARLIEST_UTC, LATEST_UTC).
	Earliest time.Time `json:"earliest"`
	Latest   time.Time `json:"latest"`
	// LastCall is the time of the last CREATE or UPDATE.
	LastCall time.Time `json:"last_call"`
	// Ended is when the DELETE was issued; zero while open.
	Ended time.Time `json:"ended,omitempty"`
	// Cur, Avg and Peak are the current values, their average over the
	// alert's observations and their maximum.
	Cur  Values `json:"current_values"`
	Avg  Values `json:"average_values"`
	Peak Values `json:"peak_values"`
	// Samples is the number of observations Avg is averaged over.
	Samples uint64 `json:"samples"`
}

// Open reports whether the alert has not been deleted.
func (a *Alert) Open() bool { return a.Ended.IsZero() }

// UTC formats a time as the plugin contract's seconds.microseconds.
func UTC(t time.Time) string {
	us := t.UnixMicro()
	sec, frac := us/1e6, us%1e6
	if frac < 0 {
		sec, frac = sec-1, frac+1e6
	}
	return strconv.FormatInt(sec, 10) + "." + pad6(frac)
}

func pad6(n int64) string {
	s := strconv.FormatInt(n, 10)
	for len(s) < 6 {
		s = "0" + s
	}
	return s
}

// GroupFields are the fields that name the traffic group an alert is
// about.
var GroupFields = []string{"TGRP", "TARGET_TG", "SERVER_TG", "SENDER_TG", "SCANNER_TG", "CLIENT_TG", "RECEIVER_TG"}

// Group returns the traffic group the alert is about: the value of the
// first of its fields (in their order) that is one of GroupFields and not
// 0; 0 for none (an interface's alert). Users restricted to some traffic
// groups see only the alerts of those.
func (a *Alert) Group() uint32 {
	for _, f := range a.Fields {
		if !slices.Contains(GroupFields, f.Name) {
			continue
		}
		if id, err := strconv.ParseUint(f.Value, 10, 32); err == nil && id != 0 {
			return uint32(id)
		}
	}
	return 0
}
