package segment

import (
	"time"
)

// parseTime parses a client timestamp: RFC 3339 with or without
// fractional seconds, with "Z" or a numeric offset. A timestamp without
// any offset (as naive Python datetimes produce) is taken as UTC.
func parseTime(b []byte) (time.Time, bool) {
	if t, ok := parseRFC3339(b); ok {
		return t, inRange(t)
	}
	s := string(b)
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, inRange(t)
	}
	if t, err := time.Parse("2006-01-02T15:04:05.999999999", s); err == nil {
		return t, inRange(t)
	}
	return time.Time{}, false
}

// Times are stored as nanoseconds since 1970 in 64 bits, which reach from
// 1678 to 2262; with room for skew correction, years 1700 to 2200 are taken.
var (
	minTime = time.Date(1700, 1, 1, 0, 0, 0, 0, time.UTC)
	maxTime = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)
)

func inRange(t time.Time) bool { return !t.Before(minTime) && t.Before(maxTime) }

// parseRFC3339 parses the RFC 3339 timestamps clients send, such as
// 2024-05-01T12:34:56.789Z or 2024-05-01T14:34:56+02:00, without
// allocating. It returns the time in UTC, and false for anything else,
// which time.Parse then gets a chance at.
func parseRFC3339(b []byte) (time.Time, bool) {
	if len(b) < len("2006-01-02T15:04:05Z") || b[4] != '-' || b[7] != '-' || b[10]|0x20 != 't' || b[13] != ':' || b[16] != ':' {
		return time.Time{}, false
	}
	year, ok1 := digits(b[0:4])
	month, ok2 := digits(b[5:7])
	day, ok3 := digits(b[8:10])
	hour, ok4 := digits(b[11:13])
	minute, ok5 := digits(b[14:16])
	second, ok6 := digits(b[17:19])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) || month < 1 || month > 12 || day < 1 ||
		day > daysIn(time.Month(month), year) || hour > 23 || minute > 59 || second > 59 {
		return time.Time{}, false
	}
	rest := b[19:]
	nsec := 0
	if rest[0] == '.' {
		n := 1
		for n < len(rest) && '0' <= rest[n] && rest[n] <= '9' {
			n++
		}
		if n == 1 || n > 10 { // no digits, or finer than nanoseconds
			return time.Time{}, false
		}
		for i := 1; i < 10; i++ {
			nsec *= 10
			if i < n {
				nsec += int(rest[i] - '0')
			}
		}
		rest = rest[n:]
	}
	offset := 0
	switch {
	case len(rest) == 1 && rest[0]|0x20 == 'z':
	case len(rest) == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':':
		h, okh := digits(rest[1:3])
		m, okm := digits(rest[4:6])
		if !okh || !okm || h > 23 || m > 59 {
			return time.Time{}, false
		}
		offset = (h*60 + m) * 60
		if rest[0] == '-' {
			offset = -offset
		}
	default:
		return time.Time{}, false
	}
	t := time.Date(year, time.Month(month), day, hour, minute, second, nsec, time.UTC)
	return t.Add(-time.Duration(offset) * time.Second), true
}

// digits returns the decimal value of b, which must be all digits.
func digits(b []byte) (int, bool) {
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

func daysIn(m time.Month, year int) int {
	if m == time.February {
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	}
	return 31 - int(m-1)%7%2
}

// eventTime returns when a message happened. With both the client's
// timestamp and its sentAt, the client's clock skew is removed the way
// Segment does it: receivedAt − (sentAt − timestamp). With only the
// timestamp it is trusted as is; with none, the server's clock decides.
func eventTime(original, sentAt *time.Time, receivedAt time.Time) time.Time {
	switch {
	case original != nil && sentAt != nil:
		// Computed as timestamp + (receivedAt − sentAt): the skew is small,
		// where sentAt − timestamp may not fit a time.Duration (a timestamp
		// of 0001-01-01, say) and would saturate.
		return original.Add(receivedAt.Sub(*sentAt)).UTC()
	case original != nil:
		return original.UTC()
	}
	return receivedAt.UTC()
}
