#!/usr/bin/env bash
# End-to-end ingestion benchmark on this machine: the records per second that
# `flowsentry serve`, nfdump's nfcapd, FastNetMon 1.2.4 (Debian's, connection
# tracking off: per-host counters and a threshold check every second, as
# flowsentry keeps rates and runs policies) and goflow2 v2.2.6 take in over UDP on
# 127.0.0.1 from the same NetFlow v9 load (flowgen, 30 records per datagram,
# paced by a sleeping token bucket), with the same socket receive buffer, at
# several offered loads. Kernel socket drops come from the drops column of
# /proc/net/udp, read while the collector still runs; application drops from
# each collector's own counters. Prints a table, then the ratios.
#
#   bench/peers.sh                      # 100k, 300k, 1M, 2M records/s, 5 s each
#   DURATION=10 bench/peers.sh 500000   # one load for 10 s
#
# Environment: DURATION seconds per run (5); RCVBUF receive buffer in bytes
# (33554432); PER_DATAGRAM records per datagram (30); COLLECTORS to run a
# subset ("flowsentry nfcapd fastnetmon goflow2"); PIN=0 not to pin the
# collectors to CPU 0 and flowgen to CPU 1 (the default on 2+ CPUs, so that
# the sender never starves the collector and every collector gets one core).
#
# Needs root (or sudo): it installs nfdump and fastnetmon when missing, and raises
# net.core.rmem_max (nfcapd -B is capped by it) and net.core.rmem_default
# (goflow2 has no buffer option) only while that collector opens its socket,
# restoring them at once. Everything it starts is killed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
export PATH="$PATH:/usr/sbin:/sbin"

DURATION=${DURATION:-5}
RCVBUF=${RCVBUF:-33554432}
PER_DATAGRAM=${PER_DATAGRAM:-30}
PIN=${PIN:-1}
FAMILIES=${FAMILIES:-}
if [ "$#" -gt 0 ]; then loads=("$@"); else loads=(100000 300000 1000000 2000000); fi
read -r -a collectors <<<"${COLLECTORS:-flowsentry nfcapd fastnetmon goflow2}"

sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"
tmp=$(mktemp -d /tmp/peers.XXXXXX)
pids=()            # every process started here
declare -A ingested # "collector load" -> records/s


cleanup() {
	local pid
	for pid in "${pids[@]}"; do stop "$pid"; done
	restore_sysctls
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { echo "peers: $*" >&2; }

# settle COLLECTOR PORT MPORT DIR waits until the sockets on PORT are
# drained (5 s at most), then, for collectors that count as they go, until
# their count stays put for a second (10 s at most): what a collector has
# not counted by then was not ingested.
settle() {
	local i last="" now
	for i in $(seq 50); do
		[ "$(queued "$2")" = 0 ] && break
		sleep 0.1
	done
	[ "$1" != nfcapd ] || return 0
	for i in $(seq 10); do
		sleep 1
		now=$("count_$1" "$3" "$4")
		[ "$now" != "$last" ] || return 0
		last=$now
	done
}

# metric URL NAME [MATCH] sums the samples of a Prometheus metric whose
# labels contain MATCH.
metric() {
	curl -fsS "$1" | awk -v name="$2" -v match_="${3:-}" '
		$1 == name || index($1, name "{") == 1 { if (index($1, match_)) s += $NF }
		END { printf "%.0f\n", s }'
}

# --- tools -----------------------------------------------------------------
need=()
command -v nfcapd >/dev/null && command -v nfdump >/dev/null || need+=(nfdump)
command -v fastnetmon >/dev/null || need+=(fastnetmon)
if [ "${#need[@]}" -gt 0 ]; then
	log "installing ${need[*]}"
	export DEBIAN_FRONTEND=noninteractive
	$sudo apt-get update -qq
	$sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
log "building flowsentry and flowgen; installing goflow2 v2.2.6"
go build -o "$tmp/flowsentry" ./cmd/flowsentry
go build -o "$tmp/flowgen" ./cmd/flowgen
GOBIN="$tmp" GOFLAGS= go install github.com/netsampler/goflow2/v2/cmd/goflow2@v2.2.6

# --- collectors --------------------------------------------------------------
# start_COLLECTOR PORT MPORT DIR starts it, sets cpid; stop_ and count_ follow.
start_flowsentry() {
	flowsentry_config "$1" "$2" "$3" "$RCVBUF" "$FAMILIES" >"$3/flowsentry.yaml"
	$(pin 0) "$tmp/flowsentry" serve --config "$3/flowsentry.yaml" >"$3/flowsentry.log" 2>&1 &
	cpid=$!
	pids+=("$cpid")
	wait_url "http://127.0.0.1:$2/metrics" "$cpid" || exit 1
}
start_nfcapd() {
	raise_sysctl net.core.rmem_max "$RCVBUF"
	mkdir -p "$3/flows"
	$(pin 0) nfcapd -b 127.0.0.1 -p "$1" -w "$3/flows" -t 3600 -B "$RCVBUF" >"$3/nfcapd.log" 2>&1 &
	cpid=$!
	pids+=("$cpid")
	wait_udp "$1" "$cpid" || exit 1
	restore_sysctls
}
start_goflow2() {
	# Without SO_RCVBUF, a socket's buffer is rmem_default, not doubled.
	raise_sysctl net.core.rmem_default $((2 * RCVBUF))
	raise_sysctl net.core.rmem_max $((2 * RCVBUF))
	$(pin 0) "$tmp/goflow2" -listen "netflow://127.0.0.1:$1" -addr "127.0.0.1:$2" \
		-transport.file /dev/null -loglevel warn >"$3/goflow2.log" 2>&1 &
	cpid=$!
	pids+=("$cpid")
	wait_udp "$1" "$cpid" || exit 1
	restore_sysctls
	wait_url "http://127.0.0.1:$2/metrics" "$cpid" || exit 1
}

start_fastnetmon() {
	# Debian's configuration with NetFlow on PORT, connection tracking off,
	# Prometheus on MPORT, and nothing that reaches outside the temp dir.
	# flowgen's sources; FastNetMon allocates counters for every address of it.
	echo 10.0.0.0/16 >"$3/networks_list"
	: >"$3/networks_whitelist"
	sed -e "s|^netflow = .*|netflow = on|" \
		-e "s|^netflow_port = .*|netflow_port = $1|" \
		-e "s|^netflow_host = .*|netflow_host = 127.0.0.1|" \
		-e "s|^enable_connection_tracking = .*|enable_connection_tracking = off|" \
		-e "s|^networks_list_path = .*|networks_list_path = $3/networks_list|" \
		-e "s|^white_list_path = .*|white_list_path = $3/networks_whitelist|" \
		-e "s|^notify_script_path = .*|notify_script_path = /bin/true|" \
		-e "s|^pid_path = .*|pid_path = $3/fastnetmon.pid|" \
		-e "s|^enable_api = .*|enable_api = off|" \
		-e "s|^prometheus = .*|prometheus = on|" \
		-e "s|^prometheus_port = .*|prometheus_port = $2|" \
		-e "s|^prometheus_host = .*|prometheus_host = 127.0.0.1|" \
		/etc/fastnetmon.conf >"$3/fastnetmon.conf"
	$(pin 0) fastnetmon --configuration_file "$3/fastnetmon.conf" --log_file "$3/fastnetmon.log" \
		--disable_pid_logic >"$3/fastnetmon.out" 2>&1 &
	cpid=$!
	pids+=("$cpid")
	wait_udp "$1" "$cpid" || exit 1
	wait_url "http://127.0.0.1:$2/metrics" "$cpid" || exit 1
}

# count_COLLECTOR MPORT DIR prints "received app_drops": records taken in
# (stored by nfcapd, decoded by goflow2, handed to the pipeline by
# flowsentry) and datagrams dropped by the application.
count_flowsentry() {
	# Decoded records that reached the shards: those dropped because every
	# shard queue was full (collector) or their shard's was (pipeline) do
	# not count.
	local url="http://127.0.0.1:$1/metrics"
	echo "$(($(metric "$url" flowsentry_collector_records_total) - $(metric "$url" flowsentry_collector_dropped_records_total) - $(metric "$url" flowsentry_pipeline_dropped_total)))" \
		"$(metric "$url" flowsentry_collector_drops_total queue_full)"
}
count_fastnetmon() {
	# Every NetFlow record is one "simple packet" to FastNetMon.
	echo "$(metric "http://127.0.0.1:$1/metrics" fastnetmon_total_simple_packets_processed)" 0
}
count_nfcapd() {
	# nfcapd has written its file on exit; it has no queue to drop from.
	echo "$(nfdump -R "$2/flows" -I | awk '/^Flows:/ { print $2 }')" 0
}
count_goflow2() {
	echo "$(metric "http://127.0.0.1:$1/metrics" goflow2_flow_process_nf_flowset_records_total DataFlowSet)" \
		"$(metric "http://127.0.0.1:$1/metrics" goflow2_flow_dropped_packets_total)"
}

# --- runs ------------------------------------------------------------------
printf '%-10s %9s %9s %6s %9s %10s %7s %11s %9s %9s %5s\n' \
	collector offered sent secs received ingested recv% kern_drops app_drops rcvbuf load1
for load in "${loads[@]}"; do
	for c in "${collectors[@]}"; do
		dir="$tmp/$c.$load"
		mkdir -p "$dir"
		port=$(free_port)
		mport=$port
		while [ "$mport" = "$port" ]; do mport=$(free_port); done
		log "$c at $load records/s"
		"start_$c" "$port" "$mport" "$dir"
		buf=$(rcvbuf "$port")
		summary=$($(pin 1) "$tmp/flowgen" -proto v9 -to "127.0.0.1:$port" -rate "$load" \
			-duration "${DURATION}s" -per-datagram "$PER_DATAGRAM")
		sent=$(jq -r .records <<<"$summary")
		secs=$(jq -r .seconds <<<"$summary")
		settle "$c" "$port" "$mport" "$dir"
		kdrops=$(udp_drops "$port")
		[ "$c" != nfcapd ] || stop "$cpid" # it writes its file on exit
		read -r received adrops <<<"$("count_$c" "$mport" "$dir")"
		[ "$c" = nfcapd ] || stop "$cpid"
		pids=() # stopped: never signal a reused PID
		rate=$(awk -v r="$received" -v s="$secs" 'BEGIN { printf "%.0f", r / s }')
		ingested["$c $load"]=$rate
		printf '%-10s %9s %9s %6.2f %9s %10s %6.1f%% %11s %9s %9s %5s\n' \
			"$c" "$load" "$sent" "$secs" "$received" "$rate" \
			"$(awk -v r="$received" -v s="$sent" 'BEGIN { printf "%.1f", 100 * r / s }')" \
			"$kdrops" "$adrops" "$buf" "$(cut -d' ' -f1 /proc/loadavg)"
	done
done

# Ratios against each peer that ran, when flowsentry ran.
[ -n "${ingested["flowsentry ${loads[0]}"]:-}" ] || exit 0
echo
echo "ratios of ingested records/s (flowsentry / peer):"
for load in "${loads[@]}"; do
	fs=${ingested["flowsentry $load"]}
	line=$(printf '  %9s rec/s offered:' "$load")
	for c in "${collectors[@]}"; do
		[ "$c" != flowsentry ] || continue
		line+=$(awk -v c="$c" -v a="$fs" -v b="${ingested["$c $load"]}" 'BEGIN { printf (b > 0 ? " vs %s %.2f" : " vs %s n/a"), c, a / (b > 0 ? b : 1) }')
	done
	echo "$line"
done
echo "drops are datagrams of $PER_DATAGRAM records; rcvbuf is the kernel's figure (2 x $RCVBUF asked)"
