package plugin

import (
	"context"
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
// operation, with a stand-in ftnbi that records how it was called.
func TestExampleEmail(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "email")
	if err := os.CopyFS(dir, os.DirFS("../examples/email")); err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	ftnbi := "#!/bin/sh\necho \"$TKN $ID $AID $*\" >> \"$(dirname \"$0\")/ftnbi.log\"\n"
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
		env := Env(cfg, "ID=1004", "AID=7", "TKN=feed", "CUR_PACKETS_OUT="+Number(4361.75), Path(bin, "/usr/bin:/bin"))
		if res := r.Call(context.Background(), p, op, env); !res.OK() {
			t.Fatalf("%s: %+v (%s)", op, res, res.Output)
		}
	}
	calls, err := os.ReadFile(filepath.Join(bin, "ftnbi.log"))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(calls), "feed 1004 7 -val udp_egress_packets=4361\n"); diff != "" {
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
	for _, want := range []string{"EMAIL_PASSWORD=(hidden)", "TKN=(hidden)", "EMAIL_MAILPORT=587", "CUR_PACKETS_OUT=4361.75", "ID=1004"} {
		if !strings.Contains(string(log), "\n"+want+"\n") {
			t.Errorf("the log lacks %q:\n%s", want, log)
		}
	}
	if strings.Contains(string(log), "secret") || strings.Contains(string(log), "feed") {
		t.Errorf("the log shows a secret:\n%s", log)
	}
}
