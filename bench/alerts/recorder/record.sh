#!/bin/bash
# Records one plugin call as a line "OP ID AID TIME" (TIME in Unix seconds,
# microseconds) appended to $RECORDER_LOG, which a relative path names from
# the plugin's folder, the working folder of every call. One write(2) of
# one short line with O_APPEND, so concurrent calls never interleave; no
# fork, so the call costs little more than bash's start.
printf '%s %s %s %s\n' "$1" "${ID:-}" "${AID:-}" "${EPOCHREALTIME/,/.}" >>"${RECORDER_LOG:-calls.log}"
