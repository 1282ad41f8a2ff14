#!/bin/sh
# Example FlowTraq plugin for flowsentry, with the gui.json of the manual's
# "Send Email" example. Instead of sending mail it appends every call to a
# log file: the operation, then the environment (the alert's variables and
# the configuration), with EMAIL_PASSWORD and the annotation token hidden.
# On UPDATE it annotates the alert with the current rates that gui.json's
# update_fields graph: the outgoing packet rate as udp_egress_packets ("UDP
# Egress Packets") and the incoming byte rate as ip_rcv ("IPv4 Bytes
# Received"). A rate whose integer part is 0 is left out, since ftnbi -val
# takes positive integers only: an inbound alert has no outgoing packets.
#
# The log file is $LOG if set, else calls.log in the plugin folder (the
# working folder of every call).
set -u

op=${1:-}
log=${LOG:-calls.log}

case $op in
CREATE | UPDATE | DELETE | TEST) ;;
*)
	echo "usage: $0 CREATE|UPDATE|DELETE|TEST" >&2
	exit 2
	;;
esac

{
	echo "=== $(date -u +%Y-%m-%dT%H:%M:%SZ) $op"
	env | sort | sed -e 's/^EMAIL_PASSWORD=.*/EMAIL_PASSWORD=(hidden)/' -e 's/^TKN=.*/TKN=(hidden)/'
} >>"$log" || {
	echo "cannot append to $log" >&2
	exit 1
}

case $op in
UPDATE)
	# positive NAME RATE prints NAME=N for the integer part N of RATE when
	# N is a positive integer, and nothing otherwise.
	positive() {
		n=${2%%.*}
		case $n in
		'' | *[!0-9]*) ;;         # not a count: nothing to annotate
		*[1-9]*) echo "$1=$n" ;; # no arithmetic: rates may exceed the shell's integers
		esac
	}
	vals=$(
		positive udp_egress_packets "${CUR_PACKETS_OUT:-0}"
		positive ip_rcv "${CUR_BYTES_IN:-0}"
	)
	[ -n "$vals" ] || exit 0
	if ! command -v ftnbi >/dev/null 2>&1; then
		echo "ftnbi is not on the PATH; cannot annotate alert ${ID:-?}" >&2
		exit 1
	fi
	# shellcheck disable=SC2086 # one KEY=VALUE per word
	ftnbi -val $vals
	;;
TEST)
	echo "email plugin: configuration received, mail port ${EMAIL_MAILPORT:-587}"
	;;
esac
