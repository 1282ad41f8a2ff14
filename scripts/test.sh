#!/usr/bin/env bash
# Installs what the tests need and runs every test: the README's test command.
# Works on a fresh Debian machine as root (or with sudo).
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the integration tests drive: softflowd (NetFlow/IPFIX
# exporter), tshark (independent packet counts), pmacct (sFlow sfprobe),
# nfdump (nfcapd, the peer in bench/peers.sh), chromium (the web UI's
# browser tests) and npm (checks the vendored front-end files against
# web/package-lock.json), systemd (systemd-analyze verify and security
# on the unit of the Debian package; dpkg-deb comes with dpkg).
need=()
for pair in softflowd:softflowd tshark:tshark pmacctd:pmacct nfcapd:nfdump chromium:chromium npm:npm systemd-analyze:systemd; do
	command -v "${pair%%:*}" >/dev/null 2>&1 || [ -x "/usr/sbin/${pair%%:*}" ] || need+=("${pair##*:}")
done
if [ "${#need[@]}" -gt 0 ]; then
	sudo=""
	[ "$(id -u)" = 0 ] || sudo="sudo"
	echo "installing Debian packages: ${need[*]}" >&2
	export DEBIAN_FRONTEND=noninteractive
	$sudo apt-get update -qq
	$sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
export PATH="$PATH:/usr/sbin:/sbin"

go mod download
go vet ./...
go test -race -timeout 20m ./...
