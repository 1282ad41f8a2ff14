# Helpers shared by the benchmark scripts of bench/: source it.

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
