package replay

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// Progress bar timing: nothing is drawn for short replays, and the line is
// redrawn at most 5 times a second.
const (
	progressDelay    = 2 * time.Second
	progressInterval = 200 * time.Millisecond
	progressBarWidth = 30
)

// progressBar draws a single progress line on a terminal. A nil writer
// makes every method a no-op.
type progressBar struct {
	w     io.Writer
	name  string
	size  int64
	now   func() time.Time
	start time.Time
	last  time.Time
	drawn int // length of the line on screen, 0 when none
}

func newProgressBar(w io.Writer, name string, size int64, now func() time.Time) *progressBar {
	b := &progressBar{w: w, name: name, size: size, now: now}
	if w != nil {
		b.start = now()
	}
	return b
}

// update redraws the line for off bytes read and packets replayed, when
// the replay has run long enough and the last draw is old enough.
func (b *progressBar) update(off int64, packets uint64) {
	if b.w == nil {
		return
	}
	t := b.now()
	elapsed := t.Sub(b.start)
	if elapsed < progressDelay || t.Sub(b.last) < progressInterval {
		return
	}
	b.last = t
	rate := float64(packets) / elapsed.Seconds()
	var line string
	if b.size > 0 {
		done := min(int(off*progressBarWidth/b.size), progressBarWidth)
		line = fmt.Sprintf("%s [%s%s] %3d%% %s / %s %.0f pkt/s", b.name,
			strings.Repeat("#", done), strings.Repeat("-", progressBarWidth-done),
			min(off*100/b.size, 100), megabytes(off), megabytes(b.size), rate)
	} else {
		line = fmt.Sprintf("%s %s %.0f pkt/s", b.name, megabytes(off), rate)
	}
	// Pad over a longer previous line.
	pad := max(b.drawn-len(line), 0)
	fmt.Fprintf(b.w, "\r%s%s", line, strings.Repeat(" ", pad))
	b.drawn = len(line) + pad
}

// clear erases the line, leaving the cursor where the line began.
func (b *progressBar) clear() {
	if b.w == nil || b.drawn == 0 {
		return
	}
	fmt.Fprintf(b.w, "\r%s\r", strings.Repeat(" ", b.drawn))
	b.drawn = 0
}

func megabytes(n int64) string {
	return fmt.Sprintf("%.1f MB", float64(n)/1e6)
}
