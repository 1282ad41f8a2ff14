// Package newserver is the New Server and New Client detector families
// (ALERT_TYPE new_server and new_client): a policy on a traffic group
// learns the services its hosts offer — (server address, protocol, port)
// — and the clients of each service, and raises an alert the first time
// a new service is connected to (new_server) and the first time a client
// address connects to a service (new_client; the first client of a new
// service is new too, so both alerts come together when both policies
// are set).
//
// # What counts
//
// Only likely successful connections count, so that scans create neither
// servers nor clients. A session (TCP, UDP or SCTP five-tuple, both
// directions) counts when it is bilateral: at least one packet each way,
// and at least four each way when either direction carries RST (a SYN
// answered by RST, a probe reset by the scanner). TCP sessions must also
// carry ACK in both directions when the exporter reports flags: a SYN
// answered by SYN-ACK and never acknowledged (a half-open SYN scan, as
// in synscan.pcap) does not count. Packets are counted as sampled (an
// sFlow sample is one packet), not scaled by the sampling rate.
//
// The server is the side that answered: for TCP the side whose first
// packet came later when both sent SYN (the SYN-ACK follows the SYN), or
// the side without SYN when only one sent it; else, and for UDP, the
// side with the service-like port: a well-known port (below 1024) before
// a registered one (below 49152) before an ephemeral one, then the lower
// port, then the later first packet, then the lower address. The server
// must be in a traffic group on which a policy of the family is in force;
// a client on the policy's or partition's allow-list never counts.
//
// A client is an address (CLIENT_IP), not a block: the alerting manual
// speaks of remote blocks, but the plugin contract names CLIENT_IP and a
// block would hide the second client of a /24.
//
// # Where the state lives
//
// Both directions of a session reach the shard that owns the record as a
// whole (model.OwnRecord): each shard keeps a fixed table of the sessions
// it waits on (one direction seen, or not yet qualifying), evicted after
// a minute without records, and turns a qualifying session into
// candidates (policy, server, protocol, port, client) for the policies in
// force on the server's groups. A server's sessions may land in several
// shards (with internal clients, the record belongs to the shard of the
// lower address), so the learned sets are shared: the stage of the whole
// owns them and writes them only at its tick, while every shard waits,
// deciding on the candidates of every shard; the shards only read them
// between ticks, without locks.
//
// # Cost per record
//
// Under a load of new sessions never answered (bench/peers.sh: every
// record of cmd/flowgen opens a session) every record reaches the session
// table, so the record path is built for that (BenchmarkNewServer, case
// flowgen):
//
//   - Early exits before any hashing: a side of the record must be in a
//     traffic group with a policy of either family (a flag per group,
//     computed when the policies change); and for protocols other than
//     TCP, where different ports alone make the server (see What counts),
//     the side the ports make the server must be. Both exits are exact:
//     such a session would bring no candidate.
//   - Known service and client: one hash of the server address per side,
//     then per policy one 64-bit hash probed in a flat open-addressing set
//     (learned servers, then learned clients); nothing allocates.
//   - A batch at a time (AddBatch, as the pipeline hands them over): the
//     records to track are found and hashed first, then tracked in two
//     steps: a record's session is placed in its bucket while the
//     processor fetches the bucket of the one 8 records later, which a
//     new session's lookup would otherwise wait for, and the record is
//     counted into its session 4 records later, once the session's line,
//     asked for at the placing, has come (BenchmarkNewServer flowgen:
//     about 36 ns a record, serve with every family at 3 M offered: 5 %
//     more records a second than one record at a time; the second step
//     took BenchmarkPipeline with every family, 10,000 sources to 10,000
//     hosts, from 593-931 to 515-729 ns a record, four alternations).
//   - The session table: a power-of-two array of 65,536 slots in buckets
//     of 4 whose hashes, idle stamps, states and TCP flags fill one cache
//     line, beside the sessions' counts (one cache line each); 80 bytes a
//     slot, 5 MiB a shard, allocated at the first tracked session. A
//     session is keyed by the 64-bit hash of its normalised five-tuple
//     (lower endpoint first) alone: two sessions of one shard with the
//     same hash would be merged, a chance of about 2^-64 per pair of
//     sessions pending together (at most 65,536), negligible. A lookup
//     reads one bucket line; a hit or an insertion writes one session
//     line. A new session takes a free slot of its bucket, else the slot
//     idle the longest — unless every slot of the bucket was used since
//     the current tick, and then the new session is not tracked: a flood
//     of new sessions cannot flush a session pending since the last tick,
//     and costs one bucket read a record. Both are counted
//     (ShardStats.PendingDropped, and flowsentry_detect_dropped_total
//     with reason max_sessions, added at each tick). A lost pending
//     session only delays an alert until the service's or client's next
//     session.
//   - Idle stamps are the tick time in milliseconds modulo 2^32 (exact
//     while the shard ticks at least every 49 days); eviction scans the
//     bucket lines at each tick (1 MiB), skipping empty buckets.
//
// The session hash has a fixed key, so that what an overflowing table
// forgets is the same from run to run (replays are reproducible); crafted
// sessions can only fill their own bucket. The learned sets' hashes have
// a key drawn per process, as probing there is unbounded.
//
// # Learning and persistence
//
// A policy learns silently for learning_period (default 1h; 0 alerts
// from the start) after it first applies to a traffic group. The learned
// servers and pairs, and the start of each learning period, are kept
// through a Store (the SQLite database in serve; memory in replay):
// loaded at Start, new entries saved in the background after the tick
// that learned them, never on the record path. A policy remembers at
// most max_learned entries; past it new entries are neither learned nor
// alerted, and are counted (Stats). In memory a learned entry is its
// 64-bit hash of (policy, server, protocol, port[, client]) in an
// open-addressing set kept at most 3/4 full (about 17 bytes an entry): a
// new service or client whose hash equals a learned one's would be taken
// as known, a chance of n·2^-64 for n entries (below 10^-11 at the
// largest max_learned), negligible.
//
// # Alerts
//
// An alert is an event: its condition is observed once, when the service
// or the client is first seen, so the alert engine creates it and ends
// it after the quiet period. The alert key is SERVER/PROTO/PORT, and
// SERVER/PROTO/PORT/CLIENT for new_client. Fields, in the manual's order:
// SERVER_IP, SERVER_TG, SERVER_TG_NAME, PROTO, SERVER_PORT (and
// CLIENT_IP). The values are the per-second rates of the first
// qualifying session (in = toward the server).
package newserver

import (
	"context"
	"net/netip"
	"time"

	"github.com/flowsentry/flowsentry/detect"
	"github.com/flowsentry/flowsentry/policy"
)

// The two families of this package.
const (
	// ServerFamily raises new_server for a new (server, protocol, port).
	ServerFamily policy.Family = "new_server"
	// ClientFamily raises new_client for a new client of a service.
	ClientFamily policy.Family = "new_client"
)

// The ALERT_TYPEs.
const (
	ServerAlert = "new_server"
	ClientAlert = "new_client"
)

// Entry is one learned service (Client invalid) of a new_server policy,
// or one learned client of a service of a new_client policy.
type Entry struct {
	// Policy is the policy that learned it.
	Policy uint64
	// Server, Proto and Port are the service.
	Server netip.Addr
	Proto  uint8
	Port   uint16
	// Client is the client address; the zero Addr for a server entry.
	Client netip.Addr
	// Learned is when it was first seen.
	Learned time.Time
}

// Start is when a policy began learning on a traffic group.
type Start struct {
	Policy uint64
	Group  uint32
	Since  time.Time
}

// State is the learned state of both families.
type State struct {
	Entries []Entry
	Starts  []Start
}

// Store persists the learned state so that a restart does not alert on
// every service again. The SQLite store implements it; MemStore keeps it
// in memory.
type Store interface {
	// LearnedServices returns everything stored.
	LearnedServices(ctx context.Context) (State, error)
	// AddLearnedServices adds s to what is stored; an entry or start
	// already stored is kept as it is.
	AddLearnedServices(ctx context.Context, s State) error
}

// storeOf finds the Store among the stage's dependencies: the database
// serve passes as the baseline store implements it too; nil keeps the
// state in memory.
func storeOf(d detect.Deps) Store {
	if s, ok := d.LearnedStore.(Store); ok {
		return s
	}
	return nil
}

func init() {
	newParams := func() policy.Params { p := DefaultParams(); return &p }
	detect.Register(detect.Family{
		Policy: policy.Spec{Name: ServerFamily, Objects: []string{policy.ObjectGroup}, NewParams: newParams},
		// One stage per shard and one of the whole serve both
		// families, so that a session is tracked once.
		New:      func(d detect.Deps) (detect.Stage, error) { return New(d, storeOf(d)) },
		NewShard: func(d detect.Deps) (detect.ShardStage, error) { return NewShard(d), nil },
	})
	detect.Register(detect.Family{
		Policy: policy.Spec{Name: ClientFamily, Objects: []string{policy.ObjectGroup}, NewParams: newParams},
	})
}
