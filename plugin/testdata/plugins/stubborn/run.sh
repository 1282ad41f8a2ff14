#!/bin/sh
# Ignores SIGTERM (and so does sleep, which inherits it): only SIGKILL
# stops it. Writes its process group to $PIDFILE, if set.
trap "" TERM
[ -n "${PIDFILE:-}" ] && echo $$ > "$PIDFILE"
echo "ignoring SIGTERM"
sleep 3600
