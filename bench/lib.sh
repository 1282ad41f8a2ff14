# Helpers shared by the benchmark scripts of bench/: source it.
# shellcheck shell=bash

# stop PID asks a process to end, then kills it after 10 s (goflow2 drains
# its queue, however long, before it honours SIGTERM).
stop() {
	local i
	kill -TERM "$1" 2>/dev/null || return 0
	for i in $(seq 100); do
		kill -0 "$1" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
}

# free_port prints a port nothing on this machine uses over TCP or UDP.
free_port() {
	local p hex
	while :; do
		p=$((20000 + RANDOM % 20000))
		hex=$(printf ':%04X ' "$p")
		if ! grep -qi -- "$hex" /proc/net/udp /proc/net/udp6 /proc/net/tcp /proc/net/tcp6; then
			echo "$p"
			return
		fi
	done
}

# udp_drops PORT prints the kernel's drop count summed over the UDP sockets
# bound to PORT (last column of /proc/net/udp and udp6).
udp_drops() {
	awk -v port="$(printf %04X "$1")" 'FNR > 1 {
		split($2, local, ":")
		if (toupper(local[2]) == port) s += $NF
	} END { print s + 0 }' /proc/net/udp /proc/net/udp6
}

# queued PORT prints the bytes waiting in the sockets bound to PORT.
queued() {
	ss -uanH "sport = :$1" | awk '{ s += $2 } END { print s + 0 }'
}

# need TOOL PACKAGE... exits, naming the Debian package to install, unless
# every TOOL (a command) is on PATH; arguments go in pairs.
need() {
	local missing=()
	while [ "$#" -ge 2 ]; do
		command -v "$1" >/dev/null || missing+=("$1 (apt-get install $2)")
		shift 2
	done
	if [ "${#missing[@]}" -gt 0 ]; then
		echo "$(basename "$0"): missing: ${missing[*]}" >&2
		exit 1
	fi
}

# wait_udp PORT [PID] waits until a UDP socket is bound to PORT (10 s at
# most); it fails early when PID is given and has exited.
wait_udp() {
	local _
	for _ in $(seq 200); do
		if grep -qi -- "$(printf ':%04X ' "$1")" /proc/net/udp /proc/net/udp6; then return 0; fi
		if [ -n "${2:-}" ] && ! kill -0 "$2" 2>/dev/null; then
			echo "process $2 exited before listening on UDP $1" >&2
			return 1
		fi
		sleep 0.05
	done
	echo "nothing listens on UDP $1 after 10 s" >&2
	return 1
}

# wait_url URL [PID] waits until URL answers (10 s at most); it fails early
# when PID is given and has exited.
wait_url() {
	local _
	for _ in $(seq 200); do
		if curl -fsS -o /dev/null "$1" 2>/dev/null; then return 0; fi
		if [ -n "${2:-}" ] && ! kill -0 "$2" 2>/dev/null; then
			echo "process $2 exited before $1 answered" >&2
			return 1
		fi
		sleep 0.05
	done
	echo "$1 does not answer after 10 s" >&2
	return 1
}

# median prints the median of the numbers on stdin, one a line ("-" is a
# missing value, counted as larger than any number); "-" when there are
# none or the median is missing.
median() {
	awk '{ v[NR] = ($1 == "-" ? 1e300 : $1 + 0) }
		END {
			if (!NR) { print "-"; exit }
			for (i = 2; i <= NR; i++) { x = v[i]; for (j = i - 1; j >= 1 && v[j] > x; j--) v[j + 1] = v[j]; v[j + 1] = x }
			m = (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2)
			if (m >= 1e299) print "-"; else printf "%.3f\n", m
		}'
}

# raise_sysctl KEY VALUE raises /proc/sys/KEY (e.g. net.core.rmem_default)
# to VALUE until restore_sysctls, through sudo when not root.
sysctl_restore=() # file, old value, ...
raise_sysctl() {
	local f=/proc/sys/${1//.//} old sudo=""
	[ "$(id -u)" = 0 ] || sudo="sudo"
	old=$(cat "$f")
	if [ "$old" -lt "$2" ]; then
		echo "$2" | $sudo tee "$f" >/dev/null
		sysctl_restore+=("$f" "$old")
	fi
}

# restore_sysctls puts back what raise_sysctl changed.
restore_sysctls() {
	local sudo=""
	[ "$(id -u)" = 0 ] || sudo="sudo"
	while [ "${#sysctl_restore[@]}" -ge 2 ]; do
		echo "${sysctl_restore[1]}" | $sudo tee "${sysctl_restore[0]}" >/dev/null
		sysctl_restore=("${sysctl_restore[@]:2}")
	done
}

# rcvbuf PORT prints the receive buffer of the first socket on PORT as ss
# shows it (the kernel's figure: twice what SO_RCVBUF asked for).
rcvbuf() {
	ss -uamnH "sport = :$1" | grep -o 'rb[0-9]*' | head -1 | tr -d rb
}

# pin CPU prints the prefix that runs a command on CPU alone: with PIN=1
# (the default) on a machine of 2 or more CPUs, so that a collector and the
# load generator each get one core.
pin() {
	if [ "${PIN:-1}" = 1 ] && [ "$(nproc)" -ge 2 ]; then echo "taskset -c $1"; fi
}

# flowsentry_config PORT MPORT DIR RCVBUF [FAMILIES] [PASSWORD] [PROTOCOL]
# prints the configuration of the throughput benchmarks: a PROTOCOL listener
# (netflow, the default, or sflow) on 127.0.0.1:PORT, HTTP
# on MPORT, data in DIR/data, the socket buffer RCVBUF; with FAMILIES=all,
# every detector family as a template on the default traffic group
# (bench/peers/all-families.yaml) and a blacklist of 100,000 addresses that
# flowgen never uses (written to DIR/blacklist.txt); with PASSWORD, the
# administrator's password.
flowsentry_config() {
	cat <<-EOF
		http: {address: "127.0.0.1:$2"}
		collector:
		  listeners: [{address: "127.0.0.1:$1", protocol: ${7:-netflow}}]
		  receive_buffer: $4
		data_dir: $3/data
	EOF
	if [ -n "${6:-}" ]; then
		printf 'admin: {user: admin, password: "%s"}\n' "$6"
	fi
	if [ "${5:-}" = all ]; then
		seq 0 99999 | awk '{ printf "100.%d.%d.%d\n", 64 + int($1 / 65536), int($1 / 256) % 256, $1 % 256 }' >"$3/blacklist.txt"
		printf 'blacklists: [{id: 1, name: bench, file: %s}]\n' "$3/blacklist.txt"
		cat bench/peers/all-families.yaml
	fi
}
