#!/usr/bin/env bash
# Alert storm, end to end: HOSTS destination hosts of one traffic group cross
# a TGRP+IP packets_in threshold at the same tick while flowgen offers RATE
# NetFlow v9 records/s, with the SQLite store and a real plugin
# (bench/alerts/recorder, which appends "OP ID AID TIME" to a log). Passes
# when every host's CREATE was persisted and delivered to the plugin and no
# record was dropped; reports how long the commits and the deliveries took.
#
#   bench/alerts.sh                          # 10,000 hosts, 1 M records/s for 5 s
#   HOSTS=2000 RATE=300000 bench/alerts.sh   # a smaller storm
#
# Environment: HOSTS destinations (10000), each its own alert; RATE records/s
# (1000000); DURATION seconds of load (5); THRESHOLD packets/s per host (20:
# a host gets RATE/HOSTS records/s of 1-64 packets, each spread over its
# 0-30 s, and the rate compared is the packets of the last 10 closed seconds
# over 10, so a second of load puts every host several times over 20);
# MAX_CONCURRENT plugin calls (32); TIMEOUT seconds to wait for the
# deliveries (120); KEEP=1 keeps the temp dir (kept anyway on failure).
#
# The load starts right after a pipeline tick, so that the next tick sees
# every host over the threshold: one tick, one commit of HOSTS CREATEs. The
# times reported: the tick is the alerts' earliest_utc; the server logs
# "alert transition" (op=CREATE) as the action dispatcher takes each
# committed event, so tick -> first such line covers the commit; the
# plugin's log has each call's end, so first -> last line is the delivery.
#
# Everything runs on 127.0.0.1 from a temp dir under /tmp; everything it
# starts is killed on exit. Run as root so that the 32 MiB receive buffer is
# granted whatever net.core.rmem_max says. Needs go, curl and jq.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

HOSTS=${HOSTS:-10000}
RATE=${RATE:-1000000}
DURATION=${DURATION:-5}
THRESHOLD=${THRESHOLD:-20}
MAX_CONCURRENT=${MAX_CONCURRENT:-32}
TIMEOUT=${TIMEOUT:-120}
KEEP=${KEEP:-0}
PASSWORD=bench-$RANDOM$RANDOM

usage() {
	echo "usage: [HOSTS=10000] [RATE=1000000] [DURATION=5] [THRESHOLD=20] [MAX_CONCURRENT=32] [TIMEOUT=120] [KEEP=1] bench/alerts.sh" >&2
	exit 2
}
[ "$#" -eq 0 ] || usage
for v in HOSTS RATE DURATION THRESHOLD MAX_CONCURRENT TIMEOUT; do
	if ! [[ ${!v} =~ ^[0-9]+$ ]] || [ "${!v}" -eq 0 ]; then
		echo "alerts: $v=${!v} is not a positive integer" >&2
		usage
	fi
done
for tool in go curl jq; do
	command -v "$tool" >/dev/null || { echo "alerts: $tool is missing; install it (apt-get install $tool)" >&2; exit 1; }
done

tmp=$(mktemp -d /tmp/alerts.XXXXXX)
pids=() # every process started here
ok=0

log() { echo "alerts: $*" >&2; }


cleanup() {
	local pid
	for pid in "${pids[@]}"; do stop "$pid"; done
	if [ "$ok" = 1 ] && [ "$KEEP" != 1 ]; then
		rm -rf "$tmp"
	else
		log "logs, configuration and database kept in $tmp"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM




scrape() { curl -fsS "http://127.0.0.1:$http_port/metrics" >"$tmp/metrics.txt"; }

# metric NAME [MATCH] sums the samples of a metric in the last scrape whose
# labels contain MATCH.
metric() {
	awk -v name="$1" -v match_="${2:-}" '
		$1 == name || index($1, name "{") == 1 { if (index($1, match_)) s += $NF }
		END { printf "%.0f\n", s }' "$tmp/metrics.txt"
}

# metricf NAME prints a metric's value with its decimals.
metricf() {
	awk -v name="$1" '$1 == name { v = $NF } END { printf "%.6f\n", v }' "$tmp/metrics.txt"
}

# slow_ticks prints the ticks of the last scrape that took over 41 ms (the
# shards wait while the detectors and the alert engine run).
slow_ticks() {
	awk '$1 == "flowsentry_pipeline_tick_duration_seconds_bucket{le=\"0.04096\"}" { b = $NF }
		$1 == "flowsentry_pipeline_tick_duration_seconds_count" { n = $NF }
		END { printf "%.0f\n", n - b }' "$tmp/metrics.txt"
}

creates() { # CREATE lines in the plugin's log
	grep -c '^CREATE ' "$tmp/plugin.log" 2>/dev/null || true
}

# --- build and configure -----------------------------------------------------
log "building flowsentry, ftnbi and flowgen"
go build -o "$tmp/bin/" ./cmd/flowsentry ./cmd/ftnbi ./cmd/flowgen

http_port=$(free_port)
nf_port=$http_port
while [ "$nf_port" = "$http_port" ]; do nf_port=$(free_port); done
mkdir -p "$tmp/plugins"
cp -rp bench/alerts/recorder "$tmp/plugins/recorder"
: >"$tmp/plugin.log"
sed -e "s|@DIR@|$tmp|g" -e "s|@HTTP_PORT@|$http_port|" -e "s|@NETFLOW_PORT@|$nf_port|" \
	-e "s|@PASSWORD@|$PASSWORD|" -e "s|@THRESHOLD@|$THRESHOLD|" -e "s|@MAX_CONCURRENT@|$MAX_CONCURRENT|" \
	bench/alerts/flowsentry.yaml.tmpl >"$tmp/flowsentry.yaml"
"$tmp/bin/flowsentry" serve --config "$tmp/flowsentry.yaml" --check >"$tmp/check.log" 2>&1 || {
	cat "$tmp/check.log" >&2
	log "the configuration $tmp/flowsentry.yaml is not valid"
	exit 1
}

# --- run -----------------------------------------------------------------------
log "starting flowsentry serve (HTTP 127.0.0.1:$http_port, NetFlow 127.0.0.1:$nf_port)"
"$tmp/bin/flowsentry" serve --config "$tmp/flowsentry.yaml" --log-level info >"$tmp/serve.log" 2>&1 &
server=$!
pids+=("$server")
for i in $(seq 200); do
	curl -fsS -o /dev/null "http://127.0.0.1:$http_port/healthz" 2>/dev/null && break
	kill -0 "$server" 2>/dev/null || { tail -20 "$tmp/serve.log" >&2; log "flowsentry serve exited"; exit 1; }
	[ "$i" -lt 200 ] || { log "/healthz does not answer after 10 s"; exit 1; }
	sleep 0.05
done
plugin_state=$(curl -fsS -u "admin:$PASSWORD" "http://127.0.0.1:$http_port/api/v1/plugins" |
	jq -r '[.[] | select(.name == "recorder")][0] // {error: "not found"} |
		if .error then "error: " + .error elif (.warnings | length) > 0 then "warnings: " + (.warnings | join("; ")) else "ok" end')
[ "$plugin_state" = ok ] || { log "the recorder plugin is not clean ($plugin_state): see GET /api/v1/plugins"; exit 1; }

# Start the load just after a tick, so that every host has most of a second
# of traffic in its rates when the next tick evaluates the policy: the
# storm then comes from one tick.
scrape
ticks=$(metric flowsentry_pipeline_tick_duration_seconds_count)
for i in $(seq 300); do
	scrape
	[ "$(metric flowsentry_pipeline_tick_duration_seconds_count)" = "$ticks" ] || break
	sleep 0.01
done

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
records=$((RATE * DURATION))
log "flowgen: $records NetFlow v9 records at $RATE/s, $HOSTS sources in 198.18.0.0/16 to $HOSTS hosts in 10.0.0.0/16"
load_start=$(date +%s.%N)
"$tmp/bin/flowgen" -proto v9 -to "127.0.0.1:$nf_port" -rate "$RATE" -records "$records" \
	-hosts "$HOSTS" -src 198.18.0.0/16 -remotes "$HOSTS" -dst 10.0.0.0/16 >"$tmp/flowgen.json" 2>"$tmp/flowgen.err" &
flowgen=$!
pids+=("$flowgen")

deadline=$(($(date +%s) + DURATION + TIMEOUT))
last=-1
while :; do
	n=$(creates)
	if [ -n "$flowgen" ] && ! kill -0 "$flowgen" 2>/dev/null; then
		pids=("$server") # reaped: never signal a reused PID
		wait "$flowgen" || { cat "$tmp/flowgen.err" >&2; log "flowgen failed"; exit 1; }
		flowgen=""
	fi
	if [ "$n" != "$last" ] || [ $((SECONDS % 5)) = 0 ]; then
		scrape
		log "$(printf '%6.1fs  plugin CREATEs %5s  alerts committed %5s  calls ok %5s  outbox %s  queued calls %5s  records %8s  dropped datagrams %s  ticks over 41 ms %s' \
			"$(awk -v s="$load_start" -v n="$(date +%s.%N)" 'BEGIN { print n - s }')" "$n" \
			"$(metric flowsentry_alert_events_total 'op="CREATE"')" \
			"$(metric flowsentry_action_calls_total 'op="CREATE",result="ok"')" \
			"$(metric flowsentry_alert_outbox_transitions)" "$(metric flowsentry_action_calls_queued)" \
			"$(metric flowsentry_collector_records_total)" "$(metric flowsentry_collector_drops_total)" "$(slow_ticks)")"
		last=$n
	fi
	[ "$n" -lt "$HOSTS" ] || [ -n "$flowgen" ] || break
	[ "$(date +%s)" -lt "$deadline" ] || { log "timed out after ${TIMEOUT}s with $n CREATEs delivered"; break; }
	kill -0 "$server" 2>/dev/null || { tail -20 "$tmp/serve.log" >&2; log "flowsentry serve exited"; exit 1; }
	sleep 1
done
if [ -n "$flowgen" ]; then
	wait "$flowgen"
	pids=("$server")
fi

# Let the sockets drain and the pipeline count settle before counting.
for i in $(seq 50); do
	[ "$(queued "$nf_port")" = 0 ] && break
	sleep 0.1
done
prev=""
for i in $(seq 10); do
	scrape
	now=$(metric flowsentry_pipeline_records_total)
	[ "$now" != "$prev" ] || break
	prev=$now
	sleep 1
done

# --- figures -------------------------------------------------------------------
scrape
cp "$tmp/metrics.txt" "$tmp/metrics.final.txt"
sent=$(jq -r .records "$tmp/flowgen.json")
secs=$(jq -r .seconds "$tmp/flowgen.json")
decoded=$(metric flowsentry_collector_records_total)
piped=$(metric flowsentry_pipeline_records_total)
dropped_collector=$(metric flowsentry_collector_dropped_records_total)
dropped_pipeline=$(metric flowsentry_pipeline_dropped_total)
dropped_datagrams=$(metric flowsentry_collector_drops_total 'reason="queue_full"')
socket_drops=$(metric flowsentry_collector_drops_total 'reason="socket"')
kernel_drops=$(udp_drops "$nf_port")
hosts_seen=$(metric flowsentry_rates_objects 'kind="host"')
hosts_refused=$(metric flowsentry_rates_objects_refused_total 'kind="host"')
committed=$(metric flowsentry_alert_events_total 'op="CREATE"')
updates=$(metric flowsentry_alert_events_total 'op="UPDATE"')
calls_ok=$(metric flowsentry_action_calls_total 'op="CREATE",result="ok"')
calls_failed=$(metric flowsentry_action_calls_total 'op="CREATE",result="failed"')
commit_count=$(metric flowsentry_alert_commit_duration_seconds_count)
commit_sum=$(metricf flowsentry_alert_commit_duration_seconds_sum)
# The smallest bucket that holds every commit: the longest commit is below it.
commit_max=$(awk -v n="$commit_count" '
	index($1, "flowsentry_alert_commit_duration_seconds_bucket{") == 1 && $NF + 0 >= n + 0 && !done {
		match($1, /le="[^"]*"/); print substr($1, RSTART + 4, RLENGTH - 5); done = 1 }' "$tmp/metrics.txt")
# The longest pipeline tick (the shards wait while the detectors and the
# alert engine run): the smallest bucket holding every tick.
tick_count=$(metric flowsentry_pipeline_tick_duration_seconds_count)
tick_max=$(awk -v n="$tick_count" '
	index($1, "flowsentry_pipeline_tick_duration_seconds_bucket{") == 1 && $NF + 0 >= n + 0 && !done {
		match($1, /le="[^"]*"/); print substr($1, RSTART + 4, RLENGTH - 5); done = 1 }' "$tmp/metrics.txt")
tick_slow=$(slow_ticks)
outbox=$(metric flowsentry_alert_outbox_transitions)
deferred=$(metric flowsentry_alert_deferred_total)
store_errors=$(metric flowsentry_alert_store_errors_total)

curl -fsS -u "admin:$PASSWORD" "http://127.0.0.1:$http_port/api/v1/alerts" >"$tmp/alerts.json"
persisted=$(jq length "$tmp/alerts.json")
persisted_ids=$(jq '[.[].id] | unique | length' "$tmp/alerts.json")
"$tmp/bin/ftnbi" -s "127.0.0.1:$http_port" -un admin -up "$PASSWORD" -alert -tn -10m -j >"$tmp/ftnbi.json"
ftnbi_count=$(jq length "$tmp/ftnbi.json")

delivered=$(creates)
delivered_ids=$(awk '$1 == "CREATE" { print $2 }' "$tmp/plugin.log" | sort -u | wc -l)
delivered_aids=$(awk '$1 == "CREATE" { print $3 }' "$tmp/plugin.log" | sort -u | wc -l)
other_calls=$(grep -vc '^CREATE ' "$tmp/plugin.log" || true)

# Times: the tick is the alerts' earliest_utc (the evaluation time of the
# tick that saw the condition first); "alert transition" lines are logged
# as the action dispatcher takes each committed event; the plugin log has
# each call's end.
tick_s=$(jq -r '[.[].earliest_utc] | min // empty' "$tmp/alerts.json")
ticks_n=$(jq '[.[].earliest_utc] | unique | length' "$tmp/alerts.json")
tick=""
[ -z "$tick_s" ] || tick="$(date -u -d "@$tick_s" +%H:%M:%S.%3N) UTC, CREATEs from $ticks_n tick(s)"
read -r log_first log_last log_n <<<"$(awk '/msg="alert transition"/ && / op=CREATE / {
	match($0, /time=[^ ]*/); t = substr($0, RSTART + 5, RLENGTH - 5)
	if (n == 0) first = t; last = t; n++ } END { print (n ? first " " last : "- -"), n + 0 }' "$tmp/serve.log")"
epoch() { if [ "$1" != - ]; then date -d "$1" +%s.%N; fi; }
log_first_s=$(epoch "$log_first")
log_last_s=$(epoch "$log_last")
read -r plugin_first plugin_last <<<"$(awk '$1 == "CREATE" { if (!n++ || $4 < f) f = $4; if ($4 > l) l = $4 }
	END { print (n ? f " " l : "") }' "$tmp/plugin.log")"
span() { # span A B prints B - A in seconds, or n/a
	if [ -n "$1" ] && [ -n "$2" ]; then awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f s", b - a }'; else echo n/a; fi
}

# Plugin call durations from the "plugin call" log lines (Go durations).
read -r call_p50 call_p99 call_max <<<"$(awk '/msg="plugin call"/ && / op=CREATE / {
	match($0, /duration=[0-9.]+(ns|µs|us|ms|s)/); d = substr($0, RSTART + 9, RLENGTH - 9)
	v = d + 0; u = d; sub(/^[0-9.]+/, "", u)
	print v * (u == "s" ? 1000 : u == "ms" ? 1 : u == "ns" ? 1e-6 : 1e-3) }' "$tmp/serve.log" |
	sort -g | awk '{ v[NR] = $1 } END {
		if (NR) printf "%.2f %.2f %.2f\n", v[int((NR + 1) / 2)], v[int((NR * 99 + 99) / 100)], v[NR]; else print "n/a n/a n/a" }')"

row() { printf '  %-52s %s\n' "$1" "$2"; }
echo
echo "alert storm: $HOSTS hosts over $THRESHOLD packets/s (TGRP+IP packets_in), flowgen $RATE records/s offered, SQLite store"
row "load average at start / end" "$load_before / $(cut -d' ' -f1-3 /proc/loadavg)"
row "records sent by flowgen (in s, rate)" "$sent ($secs s, $(awk -v r="$sent" -v s="$secs" 'BEGIN { printf "%.0f/s", r / s }'))"
row "records decoded (collector)" "$decoded"
row "records processed (pipeline shards)" "$piped"
row "dropped: kernel socket (datagrams: /proc/net/udp, metric)" "$kernel_drops, $socket_drops"
row "dropped: collector queue full (datagrams / records)" "$dropped_datagrams / $dropped_collector"
row "dropped: pipeline queue (records)" "$dropped_pipeline"
row "host objects (refused)" "$hosts_seen ($hosts_refused)"
row "CREATEs committed (alert_events_total)" "$committed"
row "UPDATEs committed" "$updates"
row "alerts persisted (GET /api/v1/alerts, max 10,000; IDs)" "$persisted ($persisted_ids)"
row "alerts created in the last 10 min (ftnbi -alert -tn -10m)" "$ftnbi_count"
row "CREATEs delivered (plugin log; distinct IDs, AIDs)" "$delivered ($delivered_ids, $delivered_aids)"
row "plugin CREATE calls ok / failed (metrics); other calls" "$calls_ok / $calls_failed; $other_calls"
row "plugin CREATE call ms: p50, p99, max (serve log)" "$call_p50, $call_p99, $call_max"
row "commits: count, total time, longest below" "$commit_count, $(awk -v s="$commit_sum" 'BEGIN { printf "%.3f s", s }'), ${commit_max:-?} s"
row "pipeline ticks: count, longest below, over 41 ms" "$tick_count, ${tick_max:-?} s, $tick_slow"
row "outbox left, deferred transitions, store errors" "$outbox, $deferred, $store_errors"
row "tick (alerts' earliest_utc)" "${tick:-n/a}"
row "tick -> first CREATE logged (after its commit)" "$(span "$tick_s" "$log_first_s")"
row "tick -> last CREATE logged (after its commit)" "$(span "$tick_s" "$log_last_s")"
row "first -> last CREATE logged ($log_n lines)" "$(span "$log_first_s" "$log_last_s")"
row "first -> last CREATE delivered (plugin log)" "$(span "$plugin_first" "$plugin_last")"
row "tick -> last CREATE delivered" "$(span "$tick_s" "$plugin_last")"
row "load start -> last CREATE delivered" "$(span "$load_start" "$plugin_last")"

fail=()
[ "$delivered_ids" -ge "$HOSTS" ] || fail+=("only $delivered_ids of $HOSTS CREATEs delivered")
[ "$delivered" = "$delivered_ids" ] || fail+=("$delivered CREATE calls for $delivered_ids alerts: some delivered twice")
# GET /api/v1/alerts lists 10,000 alerts at most; the commit counter has them all.
[ "$committed" -ge "$HOSTS" ] || fail+=("only $committed of $HOSTS CREATEs committed")
[ "$persisted_ids" -ge "$((HOSTS < 10000 ? HOSTS : 10000))" ] || fail+=("only $persisted_ids of $HOSTS alerts read back")
[ "$((kernel_drops + socket_drops + dropped_datagrams + dropped_collector + dropped_pipeline))" = 0 ] || fail+=("records or datagrams dropped")
[ "$decoded" = "$sent" ] || fail+=("$decoded records decoded of $sent sent")
if [ "${#fail[@]}" -gt 0 ]; then
	log "FAIL: $(IFS=';'; echo "${fail[*]}")"
	exit 1
fi
ok=1
echo "PASS"
