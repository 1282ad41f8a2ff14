#!/bin/sh
# Notes how many calls run at once in $SLOTS, then takes 300 ms.
: > "$SLOTS/run.$$"
ls "$SLOTS" | grep -c "^run\." > "$SLOTS/seen.$$"
sleep 0.3
rm "$SLOTS/run.$$"
