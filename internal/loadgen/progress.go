package loadgen

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// progressWriter rewrites one status line in place, with a carriage
// return, once a second.
type progressWriter struct {
	w        io.Writer
	total    int // events to send, 0 for a timed run
	duration time.Duration
	start    time.Time
	width    int // of the longest line written, to blank it out
}

const progressEvery = time.Second

// report writes a line every progressEvery until done is closed. The rate
// it shows is over the last interval.
func (p *progressWriter) report(st *stats, done <-chan struct{}) {
	t := time.NewTicker(progressEvery)
	defer t.Stop()
	lastAcked, lastAt := 0, p.start
	for {
		select {
		case <-done:
			return
		case now := <-t.C:
			pr := st.progress()
			rate := float64(pr.acked-lastAcked) / now.Sub(lastAt).Seconds()
			lastAcked, lastAt = pr.acked, now
			p.line(pr, rate, now)
		}
	}
}

// finish writes the last line, with the rate over the whole run, and ends
// it.
func (p *progressWriter) finish(st *stats, rate float64) {
	p.line(st.progress(), rate, time.Now())
	fmt.Fprintln(p.w)
}

func (p *progressWriter) line(pr progress, rate float64, now time.Time) {
	var b strings.Builder
	if p.total > 0 {
		fmt.Fprintf(&b, "  sent %d/%d events", pr.sent, p.total)
	} else {
		fmt.Fprintf(&b, "  sent %d events in %s/%s", pr.sent,
			now.Sub(p.start).Round(100*time.Millisecond), p.duration)
	}
	fmt.Fprintf(&b, "  %.0f ev/s  p50 %s  errors %d", rate, formatLatency(pr.p50), pr.errors)
	s := b.String()
	pad := max(p.width-len(s), 0)
	p.width = max(p.width, len(s))
	fmt.Fprintf(p.w, "\r%s%s", s, strings.Repeat(" ", pad))
}
