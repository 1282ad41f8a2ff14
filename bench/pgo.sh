#!/usr/bin/env bash
# Profile-guided optimisation: writes cmd/flowsentry/default.pgo, the CPU
# profile `go build` uses to build flowsentry (Go's -pgo=auto). The profile
# is merged from `flowsentry serve` under flowgen's loads: NetFlow v9 and
# IPFIX with the default policies and with every detector family
# (bench/peers/all-families.yaml), and sFlow with every family, each for
# SECONDS after a warm-up, the server on CPU 0 and flowgen on CPU 1 as in
# bench/peers.sh. Regenerate it when the record path changes much, then
# compare the two builds with bench/peers.sh.
#
#   bench/pgo.sh              # about 1.5 minutes
#
# Environment: SECONDS_EACH seconds profiled per load (8); RATE NetFlow
# records per second offered (2500000); SFLOW_RATE sFlow samples per second
# (1000000).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
need curl curl taskset util-linux

SECONDS_EACH=${SECONDS_EACH:-8}
RATE=${RATE:-2500000}
SFLOW_RATE=${SFLOW_RATE:-1000000}
tmp=$(mktemp -d /tmp/pgo.XXXXXX)
spid=""
cleanup() {
	[ -z "$spid" ] || stop "$spid"
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
log() { echo "pgo: $*" >&2; }

log "building flowsentry (without a profile) and flowgen"
go build -pgo=off -o "$tmp/flowsentry" ./cmd/flowsentry
go build -o "$tmp/flowgen" ./cmd/flowgen
password=pgo-$RANDOM$RANDOM

# profile NAME FAMILIES PROTOCOL FLOWGEN_PROTO RATE writes $tmp/NAME.prof.
profile() {
	local dir="$tmp/$1" port mport
	mkdir -p "$dir"
	port=$(free_port)
	mport=$port
	while [ "$mport" = "$port" ]; do mport=$(free_port); done
	flowsentry_config "$port" "$mport" "$dir" 33554432 "$2" "$password" "$3" >"$dir/flowsentry.yaml"
	$(pin 0) "$tmp/flowsentry" serve --config "$dir/flowsentry.yaml" >"$dir/serve.log" 2>&1 &
	spid=$!
	wait_url "http://127.0.0.1:$mport/metrics" "$spid"
	log "$1: $4 at $5 records/s"
	$(pin 1) "$tmp/flowgen" -proto "$4" -to "127.0.0.1:$port" -rate "$5" \
		-duration "$((SECONDS_EACH + 4))s" >/dev/null &
	local gen=$!
	sleep 2
	curl -fsS -u "admin:$password" -o "$tmp/$1.prof" \
		"http://127.0.0.1:$mport/debug/pprof/profile?seconds=$SECONDS_EACH"
	wait "$gen"
	stop "$spid"
	spid=""
}

profile v9-default "" netflow v9 "$RATE"
profile v9-all all netflow v9 "$RATE"
profile ipfix-default "" netflow ipfix "$RATE"
profile ipfix-all all netflow ipfix "$RATE"
profile sflow-all all sflow sflow "$SFLOW_RATE"

go tool pprof -proto "$tmp"/*.prof >cmd/flowsentry/default.pgo 2>/dev/null
log "wrote cmd/flowsentry/default.pgo ($(wc -c <cmd/flowsentry/default.pgo) bytes)"
