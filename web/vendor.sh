#!/usr/bin/env bash
# Installs the front-end packages pinned in web/package-lock.json and copies
# the files the web UI uses into ui/static/vendor, which the binary embeds.
# The copies are committed (running the server needs no Node.js);
# TestVendoredAssets (package ui) installs the lock again and fails when
# they differ. Run it after changing web/package.json.
set -euo pipefail
cd "$(dirname "$0")"
npm ci --no-audit --no-fund --ignore-scripts
out=../ui/static/vendor
mkdir -p "$out"
# name in node_modules -> name in ui/static/vendor
while read -r from to; do
	cp "node_modules/$from" "$out/$to"
done <vendor.list
