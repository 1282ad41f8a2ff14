package plugin

import (
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestEnv(t *testing.T) {
	cases := []struct {
		name  string
		cfg   map[string]string
		extra []string
		want  []string
	}{
		{name: "empty", want: []string{}},
		{
			name:  "sorted, configuration and extra",
			cfg:   map[string]string{"EMAIL_TO": "ops", "EMAIL_BODY": "a=b c"},
			extra: []string{"ID=1004", "AID=7", "TKN=abc", "EARLIEST_UTC=1466615162.000123"},
			want:  []string{"AID=7", "EARLIEST_UTC=1466615162.000123", "EMAIL_BODY=a=b c", "EMAIL_TO=ops", "ID=1004", "TKN=abc"},
		},
		{
			name:  "an alert variable wins over a configuration key",
			cfg:   map[string]string{"TGRP": "mine"},
			extra: []string{"TGRP=1"},
			want:  []string{"TGRP=1"},
		},
		{
			name:  "the later extra wins",
			extra: []string{"PATH=/a", "PATH=/b"},
			want:  []string{"PATH=/b"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if diff := cmp.Diff(Env(c.cfg, c.extra...), c.want); diff != "" {
				t.Errorf("(-got +want):\n%s", diff)
			}
		})
	}
}

func TestNumber(t *testing.T) {
	for _, c := range []struct {
		in   float64
		want string
	}{
		{4361.75, "4361.75"}, {0, "0.00"}, {100000, "100000.00"}, {1.005, "1.00"}, {2.675, "2.67"},
		{0.125, "0.12"}, {1e15, "1000000000000000.00"}, {math.NaN(), "0.00"}, {math.Inf(1), "0.00"},
	} {
		if got := Number(c.in); got != c.want {
			t.Errorf("Number(%v) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestPath(t *testing.T) {
	for _, c := range []struct {
		dirs []string
		want string
	}{
		{[]string{"/opt/flowsentry/bin", "/usr/bin:/bin"}, "PATH=/opt/flowsentry/bin:/usr/bin:/bin"},
		{[]string{"/opt/flowsentry/bin", ""}, "PATH=/opt/flowsentry/bin"},
		{nil, "PATH="},
	} {
		if got := Path(c.dirs...); got != c.want {
			t.Errorf("Path(%q) = %q, want %q", c.dirs, got, c.want)
		}
	}
}
