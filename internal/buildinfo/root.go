// Package buildinfo tells which build of flowsentry and ftnbi is running:
// the version, commit and build date that packaging/build-deb.sh stamps
// with
//
//	-ldflags "-X github.com/flowsentry/flowsentry/internal/buildinfo.Version=1.2.3
//	          -X github.com/flowsentry/flowsentry/internal/buildinfo.Commit=0123abcd...
//	          -X github.com/flowsentry/flowsentry/internal/buildinfo.Date=2026-12-06T20:00:00Z"
//
// or, in a build without them (go build, go install), what the Go
// toolchain recorded from the module and version control.
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Stamped at link time; empty when not stamped.
var (
	// Version is the release, e.g. 1.2.3.
	Version string
	// Commit is the full git commit hash of the source.
	Commit string
	// Date is the build time, RFC 3339 in UTC.
	Date string
)

// Info is a build's identity; "unknown" stands for what neither the stamp
// nor the toolchain recorded.
type Info struct {
	Version, Commit, Date string
}

// Get returns the stamped values, completed from debug.ReadBuildInfo.
func Get() Info {
	bi, _ := debug.ReadBuildInfo()
	return get(bi)
}

func get(bi *debug.BuildInfo) Info {
	i := Info{Version: Version, Commit: Commit, Date: Date}
	if bi != nil {
		if i.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			i.Version = bi.Main.Version // go install ...@v1.2.3
		}
		dirty := ""
		for _, s := range bi.Settings {
			switch {
			case s.Key == "vcs.revision" && i.Commit == "":
				i.Commit = s.Value
			case s.Key == "vcs.time" && i.Date == "":
				i.Date = s.Value // the commit's time: the best date there is
			case s.Key == "vcs.modified" && s.Value == "true" && Commit == "":
				dirty = "-dirty"
			}
		}
		if i.Commit != "" {
			i.Commit += dirty
		}
	}
	for _, f := range []*string{&i.Version, &i.Commit, &i.Date} {
		if *f == "" {
			*f = "unknown"
		}
	}
	if i.Version == "unknown" {
		i.Version = "dev"
	}
	return i
}

// String returns the line `PROGRAM version` prints, e.g.
// "flowsentry 1.2.3 (commit 0123abcd..., built 2026-12-06T20:00:00Z, go1.26.8 linux/amd64)".
func String(program string) string {
	i := Get()
	return fmt.Sprintf("%s %s (commit %s, built %s, %s %s/%s)", program, i.Version, i.Commit, i.Date, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
