#!/bin/sh
# Appends "CALL <op>" and the exact environment of the call to $LOG_FILE; on
# UPDATE it annotates the alert through ftnbi (found on the PATH the server
# gives) and records ftnbi's exit status. With SLOW_CREATE set, CREATE
# touches $LOG_FILE.started, sleeps that many seconds, then annotates.
{
	echo "CALL $1 ARGC $#"
	tr "\0" "\n" < /proc/$$/environ | sort
	if [ "$1" = UPDATE ]; then
		ftnbi -val packets_seen=42 && ftnbi -val packets_seen=43
		echo "FTNBI $?"
	fi
	if [ "$1" = CREATE ] && [ -n "${SLOW_CREATE:-}" ]; then
		: > "$LOG_FILE.started"
		sleep "$SLOW_CREATE"
		ftnbi -val packets_seen=7
		echo "FTNBI $?"
	fi
	echo "END"
} >> "$LOG_FILE" 2>&1
