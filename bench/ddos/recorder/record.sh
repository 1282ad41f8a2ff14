#!/bin/bash
# Records one plugin call as a line "TIME OP ALERT_TYPE ADDRESS" appended to
# $RECORDER_LOG (a relative path is taken from the plugin's folder, the
# working folder of every call). TIME is the wall clock in Unix seconds
# (microseconds), read first; ADDRESS is TARGET_IP (DDoS alerts) or IP
# (TGRP+IP threshold alerts). One short write with O_APPEND, no fork.
t=${EPOCHREALTIME/,/.}
printf '%s %s %s %s\n' "$t" "${1:-}" "${ALERT_TYPE:--}" "${TARGET_IP:-${IP:--}}" >>"${RECORDER_LOG:-calls.log}"
