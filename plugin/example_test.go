package plugin

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/flowsentry/flowsentry/alert"
)

// TestExampleEmail runs the example plugin of examples/email on every
// operation, with a stand-in ftnbi that records how it was called: UPDATE
// annotates the rates that are not 0 and succeeds when none is.
func TestExampleEmail(t *testing.T) {
	cases := []struct {
		name     string
		counters []string
		ftnbi    string // the calls of ftnbi, one a line
	}{
		{
			name:     "outbound alert",
			counters: []string{"CUR_PACKETS_IN=" + Number(0), "CUR_PACKETS_OUT=" + Number(4361.75), "CUR_BYTES_IN=" + Number(0.5), "CUR_BYTES_OUT=" + Number(5e6)},
			ftnbi:    "feed 1004 7 -val udp_egress_packets=4361\n",
		},
		{
			name:     "inbound alert",
			counters: []string{"CUR_PACKETS_IN=" + Number(4361.75), "CUR_PACKETS_OUT=" + Number(0), "CUR_BYTES_IN=" + Number(5234567.25), "CUR_BYTES_OUT=" + Number(0)},
			ftnbi:    "feed 1004 7 -val ip_rcv=5234567\n",
		},
		{
			name:     "both directions",
			counters: []string{"CUR_PACKETS_OUT=" + Number(12), "CUR_BYTES_IN=" + Number(1e15)},
			ftnbi:    "feed 1004 7 -val udp_egress_packets=12 ip_rcv=1000000000000000\n",
		},
		{
			name:     "rates below 1",
			counters: []string{"CUR_PACKETS_IN=" + Number(0.75), "CUR_PACKETS_OUT=" + Number(0.25), "CUR_BYTES_IN=" + Number(0), "CUR_BYTES_OUT=" + Number(0)},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "email")
			if err := os.CopyFS(dir, os.DirFS("../examples/email")); err != nil {
				t.Fatal(err)
			}
			bin := t.TempDir()
			// Like the real ftnbi, the stand-in takes positive integers only.
			ftnbi := `#!/bin/sh
for kv in "$@"; do
	case ${kv#*=} in
	-val) ;;
	'' | *[!0-9]* | 0*) echo "not a positive integer: $kv" >&2; exit 1 ;;
	esac
done
echo "$TKN $ID $AID $*" >> "$(dirname "$0")/ftnbi.log"
`
			if err := os.WriteFile(filepath.Join(bin, "ftnbi"), []byte(ftnbi), 0o755); err != nil {
				t.Fatal(err)
			}
			p := LoadDir(dir)
			if p.Err != nil {
				t.Fatal(p.Err)
			}
			cfg, err := p.ValidateValues(map[string]string{"EMAIL_PASSWORD": "secret"})
			if err != nil {
				t.Fatal(err)
			}
			r := testRunner(t, 2)
			r.cfg.Timeout = 10 * time.Second
			for _, op := range []alert.Op{alert.OpCreate, alert.OpUpdate, alert.OpDelete} {
				extra := append([]string{"ID=1004", "AID=7", "TKN=feed", Path(bin, "/usr/bin:/bin")}, c.counters...)
				if res := r.Call(context.Background(), p, op, Env(cfg, extra...)); !res.OK() {
					t.Fatalf("%s: %+v (%s)", op, res, res.Output)
				}
			}
			calls, err := os.ReadFile(filepath.Join(bin, "ftnbi.log"))
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				t.Fatal(err)
			}
			if diff := cmp.Diff(string(calls), c.ftnbi); diff != "" {
				t.Errorf("ftnbi calls (-got +want):\n%s", diff)
			}
			log, err := os.ReadFile(filepath.Join(dir, "calls.log"))
			if err != nil {
				t.Fatal(err)
			}
			heads := regexp.MustCompile(`(?m)^=== \S+ (\w+)$`).FindAllStringSubmatch(string(log), -1)
			var ops []string
			for _, h := range heads {
				ops = append(ops, h[1])
			}
			if diff := cmp.Diff(ops, []string{"CREATE", "UPDATE", "DELETE"}); diff != "" {
				t.Errorf("calls logged (-got +want):\n%s", diff)
			}
			for _, want := range append([]string{"EMAIL_PASSWORD=(hidden)", "TKN=(hidden)", "EMAIL_MAILPORT=587", "ID=1004"}, c.counters...) {
				if !strings.Contains(string(log), "\n"+want+"\n") {
					t.Errorf("the log lacks %q:\n%s", want, log)
				}
			}
			if strings.Contains(string(log), "secret") || strings.Contains(string(log), "feed") {
				t.Errorf("the log shows a secret:\n%s", log)
			}
		})
	}
}
