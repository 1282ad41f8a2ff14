#!/usr/bin/env bash
# DDoS detection latency, flowsentry beside FastNetMon 1.2.4 (Debian's): an
# sFlow flood (sampling 1, each flow sample one packet) from SOURCES
# addresses of 198.18.0.0/16 to one internal host, at each RATE packets/s,
# against a THRESHOLD of packets/s per target host on both. The latency of
# a run is the wall time from the launch of the flood (just before flowgen
# starts; its first datagram follows within milliseconds) to the first call
# of flowsentry's plugin (a FlowTraq recorder, bench/ddos/recorder) and of
# FastNetMon's notify script (bench/ddos/fastnetmon_notify.sh, action
# "ban") for that host: detection, alert commit and the start of the
# action. Both daemons run side by side and get the same flood at the same
# time (one flowgen each). Floods start at three phases of flowsentry's
# one-second tick (0, 1/3, 2/3 of a second after a tick; FastNetMon's
# one-second cycle has its own fixed offset to it, so it sees three phases
# too), REPS times each; every run floods a new host (10.0.0.10, .11, ...)
# so that each starts clean with no restart. Then a flood at 0.8x the
# threshold (QUIET_RATE) for QUIET_SECONDS must raise nothing on
# flowsentry. Prints each run, then a Markdown table of the medians.
#
#   bench/ddos.sh                             # ddos_flood, 4x and 20x, 3 runs per phase
#   POLICY=host_threshold bench/ddos.sh       # the TGRP+IP packets_in threshold instead
#   REPS=1 bench/ddos.sh 20000                # one rate, one run per phase
#
# Arguments: flood rates in packets/s (20000 100000). Environment: POLICY
# (ddos_flood: the DDoS flood family, TGRP; host_threshold: port_threshold
# TGRP+IP packets_in; each is bench/ddos/policy.$POLICY.yaml); THRESHOLD
# packets/s (5000); SOURCES flooding addresses (5000); REPS runs per phase
# (3); DURATION longest flood in seconds (6: a run ends as soon as both
# daemons alerted); QUIET_RATE (0.8 x THRESHOLD) and QUIET_SECONDS (10) of
# the no-false-alert run; FASTNETMON=0 to run flowsentry alone; KEEP=1 to
# keep the temp dir (kept anyway on failure).
#
# FastNetMon keeps Debian's /etc/fastnetmon.conf except: sFlow on its own
# port of 127.0.0.1, networks_list 10.0.0.0/24, threshold_pps THRESHOLD
# with ban_for_pps on and ban_for_bandwidth off (the flood would cross the
# 1000 Mbit/s default at 20x and alert for another reason), connection
# tracking and API off, Prometheus on its own port (readiness and the
# packet count), files in the temp dir. Its averaging
# (average_calculation_time 5 s) and check_period (1 s) are Debian's.
# flowsentry runs with its defaults (collector flush 100 ms, tick 1 s,
# poll 100 ms) and bench/ddos/flowsentry.yaml.tmpl.
#
# Everything runs on 127.0.0.1 from a temp dir under /tmp and is killed on
# exit; about 70-80 s with the defaults. Run as root so that both 32 MiB
# receive buffers are granted. Needs go, curl, jq and fastnetmon.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
export PATH="$PATH:/usr/sbin:/sbin"

POLICY=${POLICY:-ddos_flood}
THRESHOLD=${THRESHOLD:-5000}
SOURCES=${SOURCES:-5000}
REPS=${REPS:-3}
DURATION=${DURATION:-6}
QUIET_RATE=${QUIET_RATE:-$((THRESHOLD * 8 / 10))}
QUIET_SECONDS=${QUIET_SECONDS:-10}
FASTNETMON=${FASTNETMON:-1}
KEEP=${KEEP:-0}
PASSWORD=bench-$RANDOM$RANDOM
PHASES=(0 0.333 0.667)
if [ "$#" -gt 0 ]; then rates=("$@"); else rates=(20000 100000); fi

usage() {
	echo "usage: [POLICY=ddos_flood|host_threshold] [THRESHOLD=5000] [SOURCES=5000] [REPS=3] [DURATION=6] [QUIET_RATE=4000] [QUIET_SECONDS=10] [FASTNETMON=0] [KEEP=1] bench/ddos.sh [RATE packets/s...]" >&2
	exit 2
}
for v in THRESHOLD SOURCES REPS DURATION QUIET_RATE QUIET_SECONDS; do
	if ! [[ ${!v} =~ ^[0-9]+$ ]] || [ "${!v}" -eq 0 ]; then
		echo "ddos: $v=${!v} is not a positive integer" >&2
		usage
	fi
done
for r in "${rates[@]}"; do
	if ! [[ $r =~ ^[0-9]+$ ]] || [ "$r" -eq 0 ]; then
		echo "ddos: rate $r is not a positive integer (packets/s)" >&2
		usage
	fi
done
[ -f "bench/ddos/policy.$POLICY.yaml" ] || {
	echo "ddos: POLICY=$POLICY unknown: use one of $(for f in bench/ddos/policy.*.yaml; do f=${f#*/policy.}; printf '%s ' "${f%.yaml}"; done)" >&2
	usage
}
need go golang-go curl curl jq jq
[ "$FASTNETMON" = 0 ] || need fastnetmon fastnetmon

tmp=$(mktemp -d /tmp/ddos.XXXXXX)
pids=() # every process started here
ok=0

log() { echo "ddos: $*" >&2; }

cleanup() {
	local pid
	for pid in "${pids[@]}"; do stop "$pid"; done
	restore_sysctls
	if [ "$ok" = 1 ] && [ "$KEEP" != 1 ]; then
		rm -rf "$tmp"
	else
		log "logs and configuration kept in $tmp"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ports N prints N distinct free ports.
ports() {
	local out=() p
	while [ "${#out[@]}" -lt "$1" ]; do
		p=$(free_port)
		[[ " ${out[*]} " == *" $p "* ]] || out+=("$p")
	done
	echo "${out[@]}"
}

# metric URL NAME sums the samples of a Prometheus metric.
metric() {
	curl -fsS "$1" | awk -v name="$2" '$1 == name || index($1, name "{") == 1 { s += $NF } END { printf "%.0f\n", s }'
}

# --- build and configure -----------------------------------------------------
log "building flowsentry and flowgen"
for cmd in flowsentry flowgen; do
	go build -o "$tmp/$cmd" "./cmd/$cmd" || { log "go build ./cmd/$cmd failed (see above)"; exit 1; }
done

read -r fs_http fs_sflow fn_sflow fn_prom <<<"$(ports 4)"
mkdir -p "$tmp/plugins" "$tmp/fastnetmon"
cp -rp bench/ddos/recorder "$tmp/plugins/recorder"
: >"$tmp/flowsentry.calls"
{
	cat bench/ddos/flowsentry.yaml.tmpl
	cat "bench/ddos/policy.$POLICY.yaml"
} | sed -e "s|@DIR@|$tmp|g" -e "s|@HTTP_PORT@|$fs_http|" -e "s|@SFLOW_PORT@|$fs_sflow|" \
	-e "s|@PASSWORD@|$PASSWORD|" -e "s|@THRESHOLD@|$THRESHOLD|" >"$tmp/flowsentry.yaml"
if ! "$tmp/flowsentry" serve --config "$tmp/flowsentry.yaml" --check >"$tmp/check.log" 2>&1; then
	cat "$tmp/check.log" >&2
	if grep -q ddos_flood "$tmp/check.log" && [ "$POLICY" = ddos_flood ]; then
		log "this flowsentry does not know the family ddos_flood (detect/ddos not registered in detect/all?); POLICY=host_threshold measures the TGRP+IP threshold"
	fi
	log "the configuration $tmp/flowsentry.yaml is not valid"
	exit 1
fi

# start_flowsentry starts the server and checks its plugin.
start_flowsentry() {
	log "starting flowsentry serve (HTTP 127.0.0.1:$fs_http, sFlow 127.0.0.1:$fs_sflow, policy $POLICY)"
	"$tmp/flowsentry" serve --config "$tmp/flowsentry.yaml" --log-level info >"$tmp/flowsentry.log" 2>&1 </dev/null &
	fs_pid=$!
	pids+=("$fs_pid")
	wait_url "http://127.0.0.1:$fs_http/healthz" "$fs_pid" || { tail -20 "$tmp/flowsentry.log" >&2; exit 1; }
	wait_udp "$fs_sflow" "$fs_pid" || exit 1
	local state
	state=$(curl -fsS -u "admin:$PASSWORD" "http://127.0.0.1:$fs_http/api/v1/plugins" |
		jq -r '[.[] | select(.name == "recorder")][0] // {error: "not found"} |
			if .error then "error: " + .error elif (.warnings | length) > 0 then "warnings: " + (.warnings | join("; ")) else "ok" end')
	[ "$state" = ok ] || { log "the recorder plugin is not clean ($state): see GET /api/v1/plugins"; exit 1; }
}

# start_fastnetmon starts FastNetMon with Debian's configuration adapted
# (see the top of this file).
start_fastnetmon() {
	local d="$tmp/fastnetmon"
	echo 10.0.0.0/24 >"$d/networks_list"
	: >"$d/networks_whitelist"
	cp -p bench/ddos/fastnetmon_notify.sh "$d/notify.sh"
	: >"$d/fastnetmon.calls"
	sed -e "s|^sflow = .*|sflow = on|" \
		-e "s|^netflow = .*|netflow = off|" \
		-e "s|^sflow_port = .*|sflow_port = $fn_sflow|" \
		-e "s|^sflow_host = .*|sflow_host = 127.0.0.1|" \
		-e "s|^enable_ban = .*|enable_ban = on|" \
		-e "s|^ban_for_pps = .*|ban_for_pps = on|" \
		-e "s|^threshold_pps = .*|threshold_pps = $THRESHOLD|" \
		-e "s|^ban_for_bandwidth = .*|ban_for_bandwidth = off|" \
		-e "s|^ban_for_flows = .*|ban_for_flows = off|" \
		-e "s|^enable_connection_tracking = .*|enable_connection_tracking = off|" \
		-e "s|^networks_list_path = .*|networks_list_path = $d/networks_list|" \
		-e "s|^white_list_path = .*|white_list_path = $d/networks_whitelist|" \
		-e "s|^notify_script_path = .*|notify_script_path = $d/notify.sh|" \
		-e "s|^pid_path = .*|pid_path = $d/fastnetmon.pid|" \
		-e "s|^cli_stats_file_path = .*|cli_stats_file_path = $d/fastnetmon.dat|" \
		-e "s|^cli_stats_ipv6_file_path = .*|cli_stats_ipv6_file_path = $d/fastnetmon_ipv6.dat|" \
		-e "s|^enable_api = .*|enable_api = off|" \
		-e "s|^prometheus = .*|prometheus = on|" \
		-e "s|^prometheus_port = .*|prometheus_port = $fn_prom|" \
		-e "s|^prometheus_host = .*|prometheus_host = 127.0.0.1|" \
		/etc/fastnetmon.conf >"$d/fastnetmon.conf"
	for key in "sflow = on" "sflow_port = $fn_sflow" "threshold_pps = $THRESHOLD" "notify_script_path = $d/notify.sh"; do
		grep -qx -- "$key" "$d/fastnetmon.conf" || { log "/etc/fastnetmon.conf has no line for \"${key%% =*}\": cannot configure FastNetMon (reinstall the Debian package fastnetmon)"; exit 1; }
	done
	log "starting FastNetMon $(fastnetmon --version 2>&1 | head -1 | tr -d '\n') (sFlow 127.0.0.1:$fn_sflow, Prometheus 127.0.0.1:$fn_prom)"
	# FastNetMon sets no SO_RCVBUF: give its socket flowsentry's 32 MiB
	# through rmem_default (not doubled, unlike SO_RCVBUF) while it opens it.
	raise_sysctl net.core.rmem_default 67108864
	raise_sysctl net.core.rmem_max 67108864
	fastnetmon --configuration_file "$d/fastnetmon.conf" --log_file "$d/fastnetmon.log" \
		--disable_pid_logic >"$d/fastnetmon.out" 2>&1 </dev/null &
	fn_pid=$!
	pids+=("$fn_pid")
	wait_udp "$fn_sflow" "$fn_pid" || { tail -20 "$d/fastnetmon.log" "$d/fastnetmon.out" >&2; exit 1; }
	restore_sysctls
	wait_url "http://127.0.0.1:$fn_prom/metrics" "$fn_pid" || exit 1
}

start_flowsentry
[ "$FASTNETMON" = 0 ] || start_fastnetmon

# Phase of flowsentry's tick: the wall-clock fraction of a second at which
# its tick counter moves (the ticker runs from the server's start).
tick_count() { metric "http://127.0.0.1:$fs_http/metrics" flowsentry_pipeline_tick_duration_seconds_count; }
t0=$(tick_count)
for _ in $(seq 300); do
	[ "$(tick_count)" = "$t0" ] || break
	sleep 0.005
done
tick_phase=$(awk -v t="$EPOCHREALTIME" 'BEGIN { sub(",", ".", t); printf "%.3f", t - int(t) }')
log "flowsentry ticks at .$(printf '%s' "${tick_phase#0.}") of each second"

# at_phase P sleeps until P seconds (0 <= P < 1) after a flowsentry tick,
# at least 0.2 s from now.
at_phase() {
	sleep "$(awk -v t="$EPOCHREALTIME" -v tick="$tick_phase" -v p="$1" 'BEGIN {
		sub(",", ".", t); w = (tick + p) - (t - int(t)); w -= int(w); if (w < 0) w += 1
		if (w < 0.2) w += 1; printf "%.3f", w }')"
}

# first_call FILE FIELD ADDRESS SINCE prints the time of the first line of
# FILE whose FIELD is ADDRESS and whose time ($1) is not before SINCE; for
# FastNetMon only "ban" calls count.
first_call() {
	awk -v f="$2" -v a="$3" -v s="$4" '$f == a && $1 >= s && ($2 == "CREATE" || $2 == "ban") { print $1; exit }' "$1"
}
fs_first() { first_call "$tmp/flowsentry.calls" 4 "$1" "$2"; }
fn_first() { [ "$FASTNETMON" = 0 ] || first_call "$tmp/fastnetmon/fastnetmon.calls" 3 "$1" "$2"; }

# flood RATE TARGET SECONDS [ALL] floods TARGET from SOURCES addresses at
# RATE packets/s for SECONDS, to both daemons at once, and sets fs_lat and
# fn_lat (seconds, or "-" for no alert). Unless ALL, it stops as soon as
# both alerted.
flood() {
	local rate=$1 target=$2 secs=$3 all=${4:-} start fn_start fs_t="" fn_t="" gens=() g deadline
	local args=(-proto sflow -sampling 1 -hosts "$SOURCES" -src 198.18.0.0/16 -remotes 1 -dst "$target/32"
		-rate "$rate" -duration "${secs}s")
	start=${EPOCHREALTIME/,/.}
	"$tmp/flowgen" "${args[@]}" -to "127.0.0.1:$fs_sflow" -seed "$RANDOM" >>"$tmp/flowgen.json" 2>>"$tmp/flowgen.err" &
	gens+=($!)
	fn_start=${EPOCHREALTIME/,/.}
	if [ "$FASTNETMON" != 0 ]; then
		"$tmp/flowgen" "${args[@]}" -to "127.0.0.1:$fn_sflow" -seed "$RANDOM" >>"$tmp/flowgen.json" 2>>"$tmp/flowgen.err" &
		gens+=($!)
	fi
	pids+=("${gens[@]}")
	deadline=$(awk -v s="$start" -v d="$secs" 'BEGIN { printf "%.3f", s + d + 1.5 }')
	while :; do
		[ -n "$fs_t" ] || fs_t=$(fs_first "$target" "$start")
		[ -n "$fn_t" ] || fn_t=$(fn_first "$target" "$fn_start")
		[ -n "$all" ] || [ -z "$fs_t" ] || { [ "$FASTNETMON" != 0 ] && [ -z "$fn_t" ]; } || break
		awk -v n="${EPOCHREALTIME/,/.}" -v d="$deadline" 'BEGIN { exit !(n < d) }' || break
		kill -0 "$fs_pid" 2>/dev/null || { tail -20 "$tmp/flowsentry.log" >&2; log "flowsentry serve exited"; exit 1; }
		[ "$FASTNETMON" = 0 ] || kill -0 "$fn_pid" 2>/dev/null || { log "FastNetMon exited; see $tmp/fastnetmon"; exit 1; }
		sleep 0.02
	done
	for g in "${gens[@]}"; do stop "$g"; done
	pids=("$fs_pid")
	[ "$FASTNETMON" = 0 ] || pids+=("$fn_pid")
	fs_lat=$(awk -v s="$start" -v t="$fs_t" 'BEGIN { if (t == "") print "-"; else printf "%.3f\n", t - s }')
	fn_lat=$(awk -v s="$fn_start" -v t="$fn_t" 'BEGIN { if (t == "") print "-"; else printf "%.3f\n", t - s }')
	[ "$FASTNETMON" != 0 ] || fn_lat=n/a
}

# --- no false alert: 0.8 x threshold -------------------------------------------
quiet_target=10.0.0.250
log "no-false-alert run: $QUIET_RATE packets/s to $quiet_target for ${QUIET_SECONDS}s"
at_phase 0
flood "$QUIET_RATE" "$quiet_target" "$QUIET_SECONDS" all
sleep 2 # a tick, a poll and a plugin call after the end
quiet_fs=$(awk -v a="$quiet_target" '$4 == a' "$tmp/flowsentry.calls" | wc -l)
quiet_fn=n/a
[ "$FASTNETMON" = 0 ] || quiet_fn=$(awk -v a="$quiet_target" '$3 == a && $2 == "ban"' "$tmp/fastnetmon/fastnetmon.calls" | wc -l)

# --- floods ----------------------------------------------------------------------
declare -A fs_runs fn_runs # rate -> latencies, one a line
printf '%-7s %4s %6s %-10s %12s %12s\n' rate run phase target flowsentry_s fastnetmon_s
n=10
for rate in "${rates[@]}"; do
	for rep in $(seq "$REPS"); do
		for phase in "${PHASES[@]}"; do
			target=10.0.0.$n
			n=$((n + 1))
			[ "$n" -lt 250 ] || { log "more than 240 runs: lower REPS or the number of rates"; exit 1; }
			at_phase "$phase"
			flood "$rate" "$target" "$DURATION"
			printf '%-7s %4s %6s %-10s %12s %12s\n' "$rate" "$rep" "$phase" "$target" "$fs_lat" "$fn_lat"
			fs_runs[$rate]+="$fs_lat"$'\n'
			fn_runs[$rate]+="$fn_lat"$'\n'
			sleep 0.5
		done
	done
done

# mean_max prints "MEAN, MAX" of the latencies on stdin, missed ones ("-")
# left out.
mean_max() {
	awk '$1 != "-" { s += $1; n++; if ($1 > m) m = $1 } END { if (n) printf "%.3f, %.3f\n", s / n, m; else print "-" }'
}

# --- figures ---------------------------------------------------------------------
fs_records=$(metric "http://127.0.0.1:$fs_http/metrics" flowsentry_collector_records_total)
fs_kdrops=$(udp_drops "$fs_sflow")
fs_buf=$(rcvbuf "$fs_sflow")
fn_buf=n/a
[ "$FASTNETMON" = 0 ] || fn_buf=$(rcvbuf "$fn_sflow")
sent=$(jq -s --arg to "127.0.0.1:$fs_sflow" '[.[] | select(.to == $to) | .records] | add // 0' "$tmp/flowgen.json")
fn_line=""
if [ "$FASTNETMON" != 0 ]; then
	fn_sent=$(jq -s --arg to "127.0.0.1:$fn_sflow" '[.[] | select(.to == $to) | .records] | add // 0' "$tmp/flowgen.json")
	fn_line=", FastNetMon $(metric "http://127.0.0.1:$fn_prom/metrics" fastnetmon_total_simple_packets_processed) of $fn_sent processed ($(udp_drops "$fn_sflow") kernel drops)"
fi

fn_desc="no FastNetMon"
[ "$FASTNETMON" = 0 ] || fn_desc="FastNetMon $(fastnetmon --version 2>&1 | head -1 | awk '{ print $NF }') threshold_pps $THRESHOLD"
policy_desc="ddos_flood (TGRP, threshold $THRESHOLD packets/s per target)"
[ "$POLICY" != host_threshold ] || policy_desc="port_threshold TGRP+IP packets_in $THRESHOLD"
echo
echo "sFlow flood, sampling 1, $SOURCES sources to one host; threshold $THRESHOLD packets/s; flowsentry policy $policy_desc; $fn_desc; latency from the flood's launch to the first plugin call / notify script ban call; $REPS run(s) at each of ${#PHASES[@]} phases of the one-second cycle"
echo
echo "| rate (packets/s) | x threshold | runs | flowsentry median (s) | FastNetMon median (s) | flowsentry / FastNetMon | flowsentry mean, max (s) | FastNetMon mean, max (s) | target (flowsentry median) |"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for rate in "${rates[@]}"; do
	x=$(awk -v r="$rate" -v t="$THRESHOLD" 'BEGIN { printf "%g", r / t }')
	fs_med=$(printf '%s' "${fs_runs[$rate]}" | median)
	fn_med=n/a
	ratio=n/a
	if [ "$FASTNETMON" != 0 ]; then
		fn_med=$(printf '%s' "${fn_runs[$rate]}" | median)
		ratio=$(awk -v a="$fs_med" -v b="$fn_med" 'BEGIN { if (a == "-" || b == "-" || b == 0) print "n/a"; else printf "%.2f", a / b }')
	fi
	goal=n/a
	[ "$x" != 4 ] || goal="≤ 1.0 s"
	[ "$x" != 20 ] || goal="≤ 0.5 s"
	misses=$(printf '%s' "${fs_runs[$rate]}" | grep -c '^-$' || true)
	fs_cell=$fs_med
	[ "$misses" = 0 ] || fs_cell="$fs_med ($misses missed)"
	if [ "$FASTNETMON" != 0 ]; then
		fn_misses=$(printf '%s' "${fn_runs[$rate]}" | grep -c '^-$' || true)
		[ "$fn_misses" = 0 ] || fn_med="$fn_med ($fn_misses missed)"
	fi
	fn_mm=n/a
	[ "$FASTNETMON" = 0 ] || fn_mm=$(printf '%s' "${fn_runs[$rate]}" | mean_max)
	echo "| $rate | $x× | $((REPS * ${#PHASES[@]})) | $fs_cell | $fn_med | $ratio | $(printf '%s' "${fs_runs[$rate]}" | mean_max) | $fn_mm | $goal |"
done
echo
echo "no-false-alert run, $QUIET_RATE packets/s ($(awk -v r="$QUIET_RATE" -v t="$THRESHOLD" 'BEGIN { printf "%g", r / t }')× threshold) for ${QUIET_SECONDS}s: flowsentry $quiet_fs alert(s), FastNetMon $quiet_fn ban(s)"
echo "received: flowsentry $fs_records of $sent records decoded ($fs_kdrops kernel drops)$fn_line"
echo "receive buffers (kernel's figure): flowsentry $fs_buf, FastNetMon $fn_buf"
echo "missed: no alert within ${DURATION}s of flood (+1.5 s)"

if [ "$quiet_fs" != 0 ]; then
	log "FAIL: flowsentry alerted at $QUIET_RATE packets/s, below the threshold of $THRESHOLD"
	exit 1
fi
ok=1
