#!/bin/sh
# Records each call for action/runner_test.go.
{
	echo "== $1"
	env | sort
} >>"$RECORD_FILE"
echo "called with $1"
if [ "$1" = "$FAIL_ON" ]; then
	exit 3
fi
