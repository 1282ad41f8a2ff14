#!/bin/sh
echo "cannot reach the mitigation device" >&2
exit 1
