package sdnotify

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestJournalHandler(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(NewJournalHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})).With("component", "test")
	log.Debug("d")
	log.Info("i", "n", 1)
	log.Warn("w")
	log.WithGroup("g").Error("e", "err", "boom")
	want := `<7>level=DEBUG msg=d component=test
<6>level=INFO msg=i component=test n=1
<4>level=WARN msg=w component=test
<3>level=ERROR msg=e component=test g.err=boom
`
	if got := buf.String(); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

func TestOnJournal(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, stream string
		want         bool
	}{
		{"unset", "", false},
		{"this file", fmt.Sprintf("%d:%d", st.Dev, st.Ino), true},
		{"another inode", fmt.Sprintf("%d:%d", st.Dev, st.Ino+1), false},
		{"malformed", "journal", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("JOURNAL_STREAM", tc.stream)
			if got := OnJournal(f); got != tc.want {
				t.Errorf("OnJournal with JOURNAL_STREAM=%q = %v, want %v", tc.stream, got, tc.want)
			}
		})
	}
}
