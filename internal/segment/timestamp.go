package segment

import (
	"time"
)

// parseTime parses a client timestamp: RFC 3339 with or without
// fractional seconds, with "Z" or a numeric offset. A timestamp without
// any offset (as naive Python datetimes produce) is taken as UTC.
func parseTime(s string) (time.Time, bool) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, true
	}
	if t, err := time.Parse("2006-01-02T15:04:05.999999999", s); err == nil {
		return t, true
	}
	return time.Time{}, false
}

// eventTime returns when a message happened. With both the client's
// timestamp and its sentAt, the client's clock skew is removed the way
// Segment does it: receivedAt − (sentAt − timestamp). With only the
// timestamp it is trusted as is; with none, the server's clock decides.
func eventTime(original, sentAt *time.Time, receivedAt time.Time) time.Time {
	switch {
	case original != nil && sentAt != nil:
		return receivedAt.Add(original.Sub(*sentAt)).UTC()
	case original != nil:
		return original.UTC()
	}
	return receivedAt.UTC()
}
