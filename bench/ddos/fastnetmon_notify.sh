#!/bin/bash
# FastNetMon's notify script for bench/ddos.sh: FastNetMon runs it with
# IP DIRECTION PPS ACTION (ban, unban, attack_details). It appends
# "TIME ACTION IP DIRECTION PPS" to fastnetmon.calls beside itself, TIME
# (the wall clock in Unix seconds, microseconds) read first, then reads the
# attack details FastNetMon writes to its stdin on ban (it expects them
# read).
t=${EPOCHREALTIME/,/.}
printf '%s %s %s %s %s\n' "$t" "${4:--}" "${1:--}" "${2:--}" "${3:--}" >>"${0%/*}/fastnetmon.calls"
[ "${4:-}" = unban ] || cat >/dev/null
