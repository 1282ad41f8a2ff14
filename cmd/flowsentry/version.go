package main

import "github.com/flowsentry/flowsentry/internal/buildinfo"

// versionString is what `flowsentry version` prints; packaging/build-deb.sh
// stamps the values (see internal/buildinfo).
func versionString() string {
	return buildinfo.String("flowsentry")
}
