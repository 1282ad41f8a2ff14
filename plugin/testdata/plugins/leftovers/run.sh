#!/bin/sh
# Starts processes that outlive it and prints their PIDs: one in its
# process group, one that left it (setsid), one whose parent left it and
# is gone; then exits, or on UPDATE hangs.
( sleep 120 ) &
echo "$!"
setsid sleep 121 &
echo "$!"
setsid sh -c 'sleep 122 & echo "$!"'
[ "$1" = UPDATE ] && exec sleep 3600
exit 0
