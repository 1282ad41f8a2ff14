#!/bin/sh
# Leaves a process behind that holds the output open for 3 seconds.
sleep 3 &
echo "done, but not quite"
