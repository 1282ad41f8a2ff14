package buildinfo

import (
	"runtime/debug"
	"testing"
)

func TestGet(t *testing.T) {
	vcs := &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"},
		{Key: "vcs.time", Value: "2026-12-01T10:00:00Z"},
		{Key: "vcs.modified", Value: "true"},
	}}
	for _, tc := range []struct {
		name                  string
		version, commit, date string // stamped
		bi                    *debug.BuildInfo
		want                  Info
	}{
		{name: "nothing known", want: Info{"dev", "unknown", "unknown"}},
		{name: "go build in a checkout", bi: vcs,
			want: Info{"dev", "0123456789abcdef0123456789abcdef01234567-dirty", "2026-12-01T10:00:00Z"}},
		{name: "go install of a release", bi: &debug.BuildInfo{Main: debug.Module{Version: "v1.4.0"}},
			want: Info{"v1.4.0", "unknown", "unknown"}},
		{name: "stamped wins", version: "1.2.3", commit: "fedcba", date: "2026-12-06T20:00:00Z", bi: vcs,
			want: Info{"1.2.3", "fedcba", "2026-12-06T20:00:00Z"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			Version, Commit, Date = tc.version, tc.commit, tc.date
			t.Cleanup(func() { Version, Commit, Date = "", "", "" })
			if got := get(tc.bi); got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}
