package collector

import (
	"log/slog"
	"net/netip"
	"sync"
	"time"
)

// maxErrorKeys bounds the (exporter, reason) pairs errorLog remembers; past
// it, the memory is cleared, which at worst logs a few more lines.
const maxErrorKeys = 4096

// errorLog logs repeated errors sparingly: the first of each (exporter,
// reason) pair, then at most one per interval with the number suppressed
// since the last line. Every error is still counted in a metric by the
// caller. It is shared by the workers.
type errorLog struct {
	log   *slog.Logger
	every time.Duration
	mu    sync.Mutex
	seen  map[errorKey]*errorState
}

type errorKey struct {
	exporter netip.Addr
	reason   string
}

type errorState struct {
	last       time.Time
	suppressed int
}

func newErrorLog(log *slog.Logger, every time.Duration) *errorLog {
	return &errorLog{log: log, every: every, seen: make(map[errorKey]*errorState)}
}

// report logs err, of the given reason, from exporter (zero for errors of
// the socket), seen by worker at now, unless a line for the same pair was
// logged less than an interval before.
func (l *errorLog) report(msg, worker string, exporter netip.Addr, reason string, err error, now time.Time) {
	l.mu.Lock()
	key := errorKey{exporter, reason}
	st, ok := l.seen[key]
	if ok && now.Sub(st.last) < l.every {
		st.suppressed++
		l.mu.Unlock()
		return
	}
	if !ok {
		if len(l.seen) >= maxErrorKeys {
			clear(l.seen)
		}
		st = &errorState{}
		l.seen[key] = st
	}
	suppressed := st.suppressed
	st.last, st.suppressed = now, 0
	l.mu.Unlock()
	attrs := []any{"worker", worker, "reason", reason, "suppressed", suppressed, "err", err}
	if exporter.IsValid() {
		attrs = append(attrs, "exporter", exporter)
	}
	l.log.Warn(msg, attrs...)
}
