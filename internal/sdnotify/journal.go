package sdnotify

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"syscall"
)

// OnJournal tells whether f is the stream systemd connected to the journal:
// $JOURNAL_STREAM names its device and inode. Comparing them, rather than
// only seeing the variable set, keeps plain output when the service's
// standard error was redirected elsewhere (e.g. to a file by a wrapper).
func OnJournal(f *os.File) bool {
	stream := os.Getenv("JOURNAL_STREAM")
	if stream == "" {
		return false
	}
	var dev, ino uint64
	if n, err := fmt.Sscanf(stream, "%d:%d", &dev, &ino); err != nil || n != 2 {
		return false
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		return false
	}
	return uint64(st.Dev) == dev && st.Ino == ino
}

// NewJournalHandler returns a slog text handler for a standard error that
// goes to the journal: no time (the journal stamps every line itself) and
// each line prefixed with its syslog priority, "<3>" for errors to "<7>"
// for debug, which journald turns into the entry's PRIORITY (so
// `journalctl -p warning` works). opts.ReplaceAttr, if set, still applies.
func NewJournalHandler(w io.Writer, opts *slog.HandlerOptions) slog.Handler {
	o := slog.HandlerOptions{}
	if opts != nil {
		o = *opts
	}
	replace := o.ReplaceAttr
	o.ReplaceAttr = func(groups []string, a slog.Attr) slog.Attr {
		if len(groups) == 0 && a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		if replace != nil {
			return replace(groups, a)
		}
		return a
	}
	pw := &prefixWriter{w: w}
	return &journalHandler{inner: slog.NewTextHandler(pw, &o), pw: pw}
}

// journalHandler writes the priority prefix through prefixWriter: the text
// handler writes each record in one Write call, made while Handle holds
// the writer's lock with the record's prefix set.
type journalHandler struct {
	inner slog.Handler
	pw    *prefixWriter // shared by the handlers WithAttrs and WithGroup derive
}

type prefixWriter struct {
	mu     sync.Mutex
	w      io.Writer
	prefix string
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	if _, err := io.WriteString(p.w, p.prefix+string(b)); err != nil {
		return 0, err
	}
	return len(b), nil
}

// Enabled implements slog.Handler.
func (h *journalHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.inner.Enabled(ctx, l)
}

// Handle implements slog.Handler.
func (h *journalHandler) Handle(ctx context.Context, r slog.Record) error {
	h.pw.mu.Lock()
	defer h.pw.mu.Unlock()
	h.pw.prefix = priority(r.Level)
	return h.inner.Handle(ctx, r)
}

// WithAttrs implements slog.Handler.
func (h *journalHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &journalHandler{inner: h.inner.WithAttrs(attrs), pw: h.pw}
}

// WithGroup implements slog.Handler.
func (h *journalHandler) WithGroup(name string) slog.Handler {
	return &journalHandler{inner: h.inner.WithGroup(name), pw: h.pw}
}

// priority is the sd-daemon(3) prefix of a level: err, warning, info or
// debug.
func priority(l slog.Level) string {
	switch {
	case l >= slog.LevelError:
		return "<3>"
	case l >= slog.LevelWarn:
		return "<4>"
	case l >= slog.LevelInfo:
		return "<6>"
	default:
		return "<7>"
	}
}
