// Package scan is the Scan/Reconnaissance detector family: it "looks for
// large numbers of new connections being made or attempted, either by a
// local host or a remote netblock, and raises an alert when the total
// connection count exceeds the threshold given" (the FlowTraq manual).
//
// # Policies
//
// A scan policy (family scan) watches traffic groups, object type TGRP.
// Its parameters, flat beside the common keys:
//
//	threshold_type  new_conn (connection attempts per second) or
//	                uniq_endpoints (distinct endpoints — address, protocol,
//	                port — probed per second); default uniq_endpoints
//	threshold       the per-second rate, averaged over the window, above
//	                which a scanner alerts; default 100
//	direction       both (default), inbound (remote blocks probing the
//	                group) or outbound (hosts of the group probing anything,
//	                other groups included: a worm on the LAN)
//	window_seconds  the window the rate is averaged over, 1 to 10; default 2
//
// The policy's allow list (allow:) and its partition's exempt scanners:
// a record whose remote address (inbound: the source; outbound: the
// destination) or outbound source is allowed never counts.
//
// # What counts
//
// Only connection attempts, from the side that opens them, in the first
// record of a flow (Continued records never count):
//
//   - TCP with SYN and without ACK (SYN probes; nmap's SYN+RST too);
//     TCP without SYN, ACK and RST (NULL, FIN and Xmas probes, and the
//     records of exporters that report no flags); TCP with SYN and ACK
//     only as a client's whole connection in one record (NetFlow ORs the
//     flags of its packets: SYN, ACK, then PSH, FIN or RST): from a source
//     port above the destination port, and with PSH, FIN, RST or URG or
//     payload (more than 80 bytes a packet on average over IPv4, 100 over
//     IPv6: headers and 40 bytes of options). So neither the server's
//     side of a connection nor a server's SYN-ACKs count: the victim of a
//     two-way SYN flood answering tens of thousands of spoofed sources on
//     random ports with SYN-ACKs (SYN|ACK only, no payload, 1 to 6 packets
//     with Linux's retransmissions), nor the SYN-ACK backscatter of a
//     flood spoofing a local address. And a scanner's whole connections
//     count once per source port and second: whole connections from one
//     port to many endpoints are a server's side answering its clients
//     from its service port (a client opens each connection from a new
//     port; a rare reuse of a port by a client costs one attempt). A
//     port scanner's half-open probes (SYN only, masscan's from one fixed
//     port included) count in full. Other records with ACK or RST but no
//     SYN (replies, a closed port's RST-ACKs, RST backscatter, sessions
//     under way) never count, except ACK probes below.
//   - UDP, except from the reflector ports of target.IsReflector (DNS,
//     NTP, SNMP … replies flooding the victim of an amplification attack
//     come from thousands of reflectors to many ports of one victim:
//     counted, they would make each reflector block, or the victim
//     answering with ICMP, look like a scanner), and only to a port
//     below 1024 or not above the source port: a service answering its
//     client (QUIC from 443, STUN from 3478 to an ephemeral port) does
//     not count. A UDP scan from a high port still counts on every port
//     below it.
//   - ICMP echo, timestamp and address-mask requests; ICMPv6 echo
//     requests.
//   - ACK probes (nmap -PA host discovery): a record of exactly one
//     unsampled TCP packet with ACK and no SYN, FIN, RST, PSH or URG (ECE
//     and CWR aside), without payload (at most 60 bytes over IPv4: 40 of
//     headers and up to 20 of options; 80 over IPv6), toward a service
//     port (below 1024, or not above the source port). They count toward
//     the distinct endpoints, hosts and ports (uniq_endpoints,
//     UNIQUE_HOSTS) and the probe records, never toward the connection
//     attempts (new_conn, NEW_CONN, CONNECTION_COUNT): the lone ACKs of a
//     busy client's sessions outliving the exporter's inactive timeout are
//     no new connections. The port rule leaves out the lone ACKs a server
//     sends its clients' ephemeral ports; a sampled packet (SamplingRate
//     above 1) never counts, as most sampled bare ACKs are the middle of a
//     session. Limit: a host whose idle TCP sessions send keep-alive
//     probes (empty or 1-byte ACKs) less often than the exporter's
//     inactive timeout sends one lone ACK per session per interval; at
//     the default 100 endpoints per second it takes more than 4,500 idle
//     sessions to distinct servers at a 45 s interval (2 s window) — a NAT
//     gateway, proxy or load balancer in a traffic group could: allow-list
//     its address or raise its policy's threshold. Likewise at startup,
//     when every idle session is seen for the first time.
//
// A local host completing connections to many new servers a second — a
// worm spreading, but also a web crawler — is a scanner by this rule and
// alerts above the threshold: allow-list a known crawler's address or
// raise its policy's threshold.
//
// A UDP attempt that its endpoint answers counts neither toward the
// distinct endpoints nor toward the connection attempts (new_conn, NEW_CONN,
// CONNECTION_COUNT): a recursive DNS resolver querying hundreds of
// authoritative servers a second, each from a random port and each
// answering from port 53, is a client, like a web client whose TCP
// connections complete, while a scan mostly gets no answer or ICMP
// unreachable. (TCP has no such rule: a worm's attempts to open
// connections count, answered or not; only the server's side of a
// connection never does.) An answer is any UDP
// record from the probed address and port to the prober's address and
// port (only records whose reverse would be a probe are kept as answers); the shard counting the prober (the owner of the prober's address,
// or of the probed local host for an inbound scan) also owns the answer's
// destination (or source), the same address. Each shard keeps the hashes
// of the UDP socket pairs it saw this second and the previous one (at
// most 2^18 slots of 8 bytes each, 4 MiB a shard) and the distinct UDP
// endpoints it counted this second (at most 2^16, 16 bytes each); at the
// tick it takes the answered ones back from their scanner's counts. An
// answer reported in the second after its probe comes too late and the
// probe counts: the fraction of a second a round trip spans (5% of
// a busy resolver's queries at a 50 ms round trip). UNIQUE_HOSTS and
// UNIQUE_PORTS, the packets and bytes, and the 3 probe records a scanner
// needs still count answered attempts. Further attempts, beyond those
// bounds (2^16 UDP attempts a second a shard, 24 bytes each), count as
// unanswered (Shard.Stats).
//
// An attempt counts SamplingRate times (a sampled probe stands for that
// many); distinct endpoints are counted as seen, so under sampling
// uniq_endpoints sees a fraction of a scan: prefer new_conn there. A
// scanner alerts only with at least 3 probe records in the window, so
// that a single sampled packet, scaled by its rate, never does.
//
// A record whose source is in a traffic group counts toward that host
// (outbound); a record whose source is in no traffic group and whose
// destination is counts toward the source's remote block, its /24 or /64
// (inbound): several addresses of one block scanning together make one
// alert.
//
// # Window and sharding
//
// Each shard (Shard) counts, for the records it owns, per (policy,
// traffic group, direction, scanner), the attempts of the current second
// and their distinct endpoints, hosts and ports: exactly up to 1,024
// distinct endpoints of a scanner a second (an exact set of 64-bit hashes
// of the second's (scanner, endpoint) pairs, shared by all scanners,
// cleared at each tick, at most 2^20 slots — 8 MiB — a shard, and each
// scanner's list of its hashes, 8 MiB at most), then with three
// HyperLogLog sketches of the scanner (2,048 one-byte registers each, 6
// KiB; at most 2,048 scanners a second a shard, 12 MiB; the sketches
// start from the exact hashes). A scanner counted with sketches in a
// second starts with them the next. Past 1,024 endpoints the distinct
// counts (uniq_endpoints, UNIQUE_HOSTS, UNIQUE_PORTS) are estimates: a
// standard error of about 2.3% (under 1% up to a few thousand, by linear
// counting), so a scanner within about 7% of a threshold above 1,024
// endpoints a second may alert or not; the PORTS of such a scanner are
// sampled (the attempts to one endpoint in 8, by its hash). Sketches are
// not merged: a remote block's endpoints in different shards are
// disjoint and summed. A scanner whose sketches cannot be had (2,048 in
// use) stays exact, its new endpoints not counted once the pair set is
// full.
// A local scanner lives in the shard owning its address (model.OwnSrc); a
// remote block probing many local hosts reaches every shard (each local
// destination is counted by the shard owning it, model.OwnDst), and its
// endpoints in different shards are disjoint. At each tick the stage of
// the whole (Whole) sums the shards' seconds per scanner, keeps the last
// 10 seconds of each, averages over the policy's window and reports the
// scanners above the threshold: a scan alerts within window_seconds (2 s
// by default) of its start, and keeps its alert open while it stays
// above. A scanner idle for 10 s is forgotten. At most 2^15 scanners a
// second a shard and 2^16 tracked scanners (about 800 bytes each) are
// counted, remote blocks taking at most three quarters of each (the rest
// is kept for local hosts); the rest is dropped and counted (Shard.Stats,
// Whole.Dropped, flowsentry_detect_dropped_total).
//
// A remote block gets a place among a shard's scanners only at its second
// attempt in that shard within the current second and the previous one;
// its first attempt is kept aside until then (at most 2^16 first attempts
// a shard, 80 bytes each, 5 MiB; a full bucket of 4 evicts its oldest,
// counted in flowsentry_detect_dropped_total) and then counts too. A
// spoofed SYN flood — tens of thousands of random sources, each a /24 of
// its own sending one SYN — thus takes no place and cannot hide a scan of
// the same second. The price: in each shard, a remote block counts only
// once two of its attempts fall in the same second or in consecutive
// ones (a steady attempt a second counts in full, two at a time, a
// second late); slower, it is not seen. A sweep of many local hosts
// spreads over the S shards (one per core in serve), so an inbound sweep
// slower than about S attempts a second may go unseen: the minimum
// inbound threshold met reliably is about S per second (1 in replay with
// one shard). A source of a single probe could never alert anyway: an
// alert needs at least 3 probe records in the window.
//
// # Alerts
//
// ALERT_TYPE is scan; one alert per policy, scanner (a local host, or a
// remote /24 or /64) and traffic group. The fields, in this order:
//
//	SCANNER_IP        the scanner's address (for a block, the lowest seen)
//	SCANNER_CIDR      the block alerted on: the host's /32 or /128
//	                  (outbound), the remote /24 or /64 (inbound)
//	SCANNER_TG        the scanner's traffic group; 0 for a remote block
//	SCANNER_TG_NAME   its name; absent when SCANNER_TG is 0
//	DIRECTION         outbound (a local host scanning) or inbound
//	PROTO             the protocol of the probes; 0 when mixed
//	TARGET_TG         the traffic group probed (inbound); 0 for outbound
//	TARGET_TG_NAME    its name; absent when TARGET_TG is 0
//	UNIQUE_HOSTS      distinct addresses probed in the busiest second of
//	                  the window
//	UNIQUE_PORTS      distinct ports probed in the busiest second (for a
//	                  block probing several shards, the busiest shard's)
//	CONNECTION_COUNT  attempts since the scanner was first seen (it is
//	                  forgotten 10 s after its last attempt)
//	PORTS             the most probed ports, most probed first, space
//	                  separated (at most 8; ICMP has none)
//	THRESHOLD_TYPE    new_conn or uniq_endpoints
//	THRESHOLD_VALUE   the threshold crossed, per second
//
// The values are per-second rates over the window: NEW_CONN (attempts),
// PACKETS_IN / BYTES_IN of the probes of an inbound scan, PACKETS_OUT /
// BYTES_OUT of an outbound one; inbound alerts also carry
// UNIQ_LOCAL_ENDPOINT, the distinct local endpoints probed per second.
package scan

import (
	"github.com/flowsentry/flowsentry/detect"
	"github.com/flowsentry/flowsentry/policy"
)

// Family is the family's name, the policies' family key.
const Family policy.Family = "scan"

// AlertType is the ALERT_TYPE of every alert of the family.
const AlertType = "scan"

func init() {
	detect.Register(detect.Family{
		Policy: policy.Spec{Name: Family, Objects: []string{policy.ObjectGroup},
			NewParams: func() policy.Params { return NewParams() }},
		New:      func(d detect.Deps) (detect.Stage, error) { return NewWhole(d), nil },
		NewShard: func(d detect.Deps) (detect.ShardStage, error) { return NewShard(d), nil },
	})
}
