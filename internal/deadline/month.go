package deadline

import "time"

// Due returns the legal due date of a request received at received: one
// calendar month later, at the same clock time in the same location. If
// the target month has no such day the last day of that month is used, so
// 31 January is due on 28 February, or 29 February in a leap year. See
// AddMonths for clock times that a daylight-saving change skips or repeats.
func Due(received time.Time) time.Time {
	return AddMonths(received, 1)
}

// AddMonths returns t moved by n calendar months (n may be negative): the
// same day of the month, clamped to the last day of the target month, at
// the same clock time in t's location.
//
// Where the clocks of that location never show the resulting date and
// time, because a daylight-saving change skips it, or show it twice,
// because a change repeats it, AddMonths returns the first instant at
// which the local clock reads that date and time or later: a skipped 02:30
// becomes the 03:00 the clocks jump to, and a repeated 02:30 is its first
// occurrence. So a deadline is never later than any reading of the clock
// suggests. (time.Date leaves this choice unspecified and in practice makes
// it differently east and west of Greenwich.)
func AddMonths(t time.Time, n int) time.Time {
	y, m, d := t.Date()
	// Day 1 never overflows, so this is the target month itself.
	first := time.Date(y, m+time.Month(n), 1, 0, 0, 0, 0, time.UTC)
	ty, tm, _ := first.Date()
	// Day 0 of the next month is the last day of this one.
	last := time.Date(ty, tm+1, 0, 0, 0, 0, 0, time.UTC).Day()
	hh, mm, ss := t.Clock()
	return firstAtOrAfter(ty, tm, min(d, last), hh, mm, ss, t.Nanosecond(), t.Location())
}

// firstAtOrAfter returns the first instant at which the clocks of loc read
// the given date and time or later.
//
// Within one zone period (a span with one UTC offset) the clock reads the
// instant plus the offset, so the first instant of a period from at on
// whose reading is at least wall is max(at, wall-offset), if that is
// before the period ends. Scanning periods in order from an instant at
// which every clock still reads earlier than wall, the first period with
// such an instant holds the answer.
func firstAtOrAfter(y int, m time.Month, d, hh, mm, ss, ns int, loc *time.Location) time.Time {
	wall := time.Date(y, m, d, hh, mm, ss, ns, time.UTC)
	// UTC offsets lie between -12h and +14h (LMT aside, within ±16h), so
	// 26 hours before wall every clock still reads earlier, and 26 hours
	// after, every clock reads later: the loop ends within a few periods.
	at := wall.Add(-26 * time.Hour)
	for {
		lt := at.In(loc)
		_, offset := lt.Zone()
		_, end := lt.ZoneBounds()
		cand := wall.Add(-time.Duration(offset) * time.Second)
		if cand.Before(at) {
			cand = at
		}
		if end.IsZero() || cand.Before(end) {
			return cand.In(loc)
		}
		at = end
	}
}
