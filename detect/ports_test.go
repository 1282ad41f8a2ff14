package detect_test

import (
	"slices"
	"testing"

	"github.com/flowsentry/flowsentry/detect"
)

func TestPorts(t *testing.T) {
	cases := []struct {
		name       string
		a, b, want uint16
		rankA      int
	}{
		{"well-known before ephemeral", 443, 51000, 443, detect.RankWellKnown},
		{"service before ephemeral", 5432, 40000, 5432, detect.RankService},
		{"service before registered", 3306, 20000, 3306, detect.RankService},
		{"registered before ephemeral", 25565, 50000, 25565, detect.RankRegistered},
		{"two ephemeral: the lower", 60000, 33000, 33000, detect.RankEphemeral},
		{"port 0 is client-like", 0, 80, 80, detect.RankEphemeral},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := detect.ServerPort(tc.a, tc.b); got != tc.want {
				t.Errorf("ServerPort(%d, %d) = %d, want %d", tc.a, tc.b, got, tc.want)
			}
			if got := detect.ServerPort(tc.b, tc.a); got != tc.want {
				t.Errorf("ServerPort(%d, %d) = %d, want %d", tc.b, tc.a, got, tc.want)
			}
			if got := detect.PortRank(tc.a); got != tc.rankA {
				t.Errorf("PortRank(%d) = %d, want %d", tc.a, got, tc.rankA)
			}
		})
	}
}

// TestAdditionalPorts checks the tally of a grouped alert's later server
// ports: the first port and repeats are not counted, and only the first
// detect.MaxListedPorts are listed while TOTAL_PORTS counts them all.
func TestAdditionalPorts(t *testing.T) {
	var a detect.AdditionalPorts
	for _, p := range []uint16{443, 80, 80, 22, 443} {
		a.Add(p, 443)
	}
	if f := a.Fields(); f[0].Value != "2" || !slices.Equal(f[1].List, []string{"80", "22"}) {
		t.Errorf("fields %+v, want TOTAL_PORTS 2 and 80 22", f)
	}
	for p := range uint16(300) {
		a.Add(1000+p, 443)
	}
	if f := a.Fields(); f[0].Value != "302" || len(f[1].List) != detect.MaxListedPorts {
		t.Errorf("TOTAL_PORTS %s with %d listed, want 302 and %d", f[0].Value, len(f[1].List), detect.MaxListedPorts)
	}
}
