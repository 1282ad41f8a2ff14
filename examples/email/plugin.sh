#!/bin/sh
# Example FlowTraq plugin for flowsentry, with the gui.json of the manual's
# "Send Email" example. Instead of sending mail it appends every call to a
# log file: the operation, then the environment (the alert's variables and
# the configuration), with EMAIL_PASSWORD and the annotation token hidden.
# On UPDATE it annotates the alert with the current outgoing packet rate,
# graphed under "UDP Egress Packets" (update_fields in gui.json).
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
	# ftnbi -val takes positive integers: the integer part of the rate.
	packets=${CUR_PACKETS_OUT:-0}
	packets=${packets%%.*}
	if ! command -v ftnbi >/dev/null 2>&1; then
		echo "ftnbi is not on the PATH; cannot annotate alert ${ID:-?}" >&2
		exit 1
	fi
	ftnbi -val "udp_egress_packets=${packets:-0}"
	;;
TEST)
	echo "email plugin: configuration received, mail port ${EMAIL_MAILPORT:-587}"
	;;
esac
