package detect

import (
	"slices"
	"strconv"

	"github.com/flowsentry/flowsentry/alert"
)

// Port ranks, from server-like to client-like (see PortRank).
const (
	// RankWellKnown are the ports below 1024.
	RankWellKnown = iota
	// RankService are known server ports from 1024 up (databases, proxies,
	// brokers, alternative HTTP ports …).
	RankService
	// RankRegistered are the other ports below 32768.
	RankRegistered
	// RankEphemeral are the ports from 32768 up, where clients take their
	// source ports, and port 0.
	RankEphemeral
)

// services are known server ports from 1024 up.
var services = [...]uint16{1080, 1194, 1433, 1521, 1723, 1883, 2049, 2375, 2376, 3128, 3306, 3389, 5060, 5061, 5222,
	5432, 5671, 5672, 5900, 5938, 6379, 6443, 6667, 8000, 8008, 8080, 8081, 8443, 8883, 8888, 9000, 9092, 9200, 9418,
	11211, 27017}

// PortRank ranks a transport port from server-like to client-like, for
// the families that must tell a flow's server from its client without
// TCP flags.
func PortRank(port uint16) int {
	switch {
	case port == 0:
		return RankEphemeral
	case port < 1024:
		return RankWellKnown
	case port >= 32768:
		return RankEphemeral
	}
	for _, p := range services {
		if p == port {
			return RankService
		}
	}
	return RankRegistered
}

// ServerPort returns the more server-like of a session's two ports: the
// one of lower rank, else the lower port.
func ServerPort(a, b uint16) uint16 {
	ra, rb := PortRank(a), PortRank(b)
	switch {
	case ra < rb:
		return a
	case rb < ra:
		return b
	}
	return min(a, b)
}

// MaxListedPorts is how many additional server ports a grouped alert
// (blacklisted_ip, exfil) lists in ADDITIONAL_PORTS.
const MaxListedPorts = 100

// AdditionalPorts are the server ports of a grouped alert's later
// connections besides the first one's (its SERVER_PORT): TOTAL_PORTS
// counts them all, ADDITIONAL_PORTS lists the first MaxListedPorts.
type AdditionalPorts struct {
	total  uint64
	listed []uint16
}

// Add counts port, unless it is first (the alert's SERVER_PORT) or a port
// already listed.
func (a *AdditionalPorts) Add(port, first uint16) {
	if port == first || slices.Contains(a.listed, port) {
		return
	}
	a.total++
	if len(a.listed) < MaxListedPorts {
		a.listed = append(a.listed, port)
	}
}

// Fields returns TOTAL_PORTS and ADDITIONAL_PORTS.
func (a *AdditionalPorts) Fields() []alert.Field {
	list := make([]string, len(a.listed))
	for i, p := range a.listed {
		list[i] = strconv.Itoa(int(p))
	}
	return []alert.Field{
		{Name: "TOTAL_PORTS", Value: strconv.FormatUint(a.total, 10), Number: true},
		{Name: "ADDITIONAL_PORTS", IsList: true, List: list, Number: true},
	}
}
