package target

// Reflectors are the UDP source ports of the services amplification
// attacks reflect off, with their names: traffic from these ports to one
// address is what ddos_amp watches, and what the scan family must not take
// for a scan of the victim by the reflectors.
var Reflectors = map[uint16]string{
	17:    "qotd",
	19:    "chargen",
	53:    "dns",
	69:    "tftp",
	111:   "portmap",
	123:   "ntp",
	137:   "netbios",
	161:   "snmp",
	389:   "cldap",
	520:   "rip",
	1900:  "ssdp",
	3283:  "ard",
	3702:  "ws-discovery",
	4500:  "ipsec-nat-t",
	5353:  "mdns",
	10001: "ubiquiti",
	11211: "memcached",
	37810: "dvr",
	47808: "bacnet",
}

// reflectorBits has bit p set for every port of Reflectors: a look-up on
// the hot path without hashing.
var reflectorBits [1024]uint64

func init() {
	for p := range Reflectors {
		reflectorBits[p>>6] |= 1 << (p & 63)
	}
}

// IsReflector reports whether UDP source port p is a reflector's.
func IsReflector(p uint16) bool {
	return reflectorBits[p>>6]&(1<<(p&63)) != 0
}
