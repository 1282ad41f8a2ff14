#!/bin/sh
# Writes its process group to $PIDFILE, if set, and hangs.
[ -n "${PIDFILE:-}" ] && echo $$ > "$PIDFILE"
echo "hanging"
sleep 3600
