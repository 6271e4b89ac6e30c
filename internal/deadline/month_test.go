package deadline_test

import (
	"testing"
	"time"
	_ "time/tzdata" // the zones below must load on a machine without tzdata

	"github.com/custos-dev/custos/internal/deadline"
)

// loc loads a time zone or fails the test: no case is ever skipped.
func loc(t *testing.T, name string) *time.Location {
	t.Helper()
	l, err := time.LoadLocation(name)
	if err != nil {
		t.Fatalf("LoadLocation(%q) = %v", name, err)
	}
	return l
}

// at parses a wall-clock time ("2006-01-02T15:04:05.999999999") in l. It
// is never given a time a daylight-saving change skips or repeats.
func at(t *testing.T, s string, l *time.Location) time.Time {
	t.Helper()
	v, err := time.ParseInLocation("2006-01-02T15:04:05.999999999", s, l)
	if err != nil {
		t.Fatalf("ParseInLocation(%q) = %v", s, err)
	}
	return v
}

func TestDue(t *testing.T) {
	utc := time.UTC
	berlin := loc(t, "Europe/Berlin")
	tokyo := loc(t, "Asia/Tokyo")
	newYork := loc(t, "America/New_York")
	kolkata := loc(t, "Asia/Kolkata")
	fixed := time.FixedZone("", -(3*3600 + 30*60))
	tests := []struct {
		name     string
		received time.Time
		want     string // RFC 3339 with nanoseconds: wall clock and offset
	}{
		// Every month end of a common year.
		{"31 Jan 2025", at(t, "2025-01-31T00:00:00", utc), "2025-02-28T00:00:00Z"},
		{"28 Feb 2025", at(t, "2025-02-28T00:00:00", utc), "2025-03-28T00:00:00Z"},
		{"31 Mar 2025", at(t, "2025-03-31T00:00:00", utc), "2025-04-30T00:00:00Z"},
		{"30 Apr 2025", at(t, "2025-04-30T00:00:00", utc), "2025-05-30T00:00:00Z"},
		{"31 May 2025", at(t, "2025-05-31T00:00:00", utc), "2025-06-30T00:00:00Z"},
		{"30 Jun 2025", at(t, "2025-06-30T00:00:00", utc), "2025-07-30T00:00:00Z"},
		{"31 Jul 2025", at(t, "2025-07-31T00:00:00", utc), "2025-08-31T00:00:00Z"},
		{"31 Aug 2025", at(t, "2025-08-31T00:00:00", utc), "2025-09-30T00:00:00Z"},
		{"30 Sep 2025", at(t, "2025-09-30T00:00:00", utc), "2025-10-30T00:00:00Z"},
		{"31 Oct 2025", at(t, "2025-10-31T00:00:00", utc), "2025-11-30T00:00:00Z"},
		{"30 Nov 2025", at(t, "2025-11-30T00:00:00", utc), "2025-12-30T00:00:00Z"},
		{"31 Dec 2025 into the next year", at(t, "2025-12-31T00:00:00", utc), "2026-01-31T00:00:00Z"},
		{"29 Feb 2024", at(t, "2024-02-29T00:00:00", utc), "2024-03-29T00:00:00Z"},
		{"30 Nov 2024", at(t, "2024-11-30T00:00:00", utc), "2024-12-30T00:00:00Z"},
		{"31 Dec 2024, last instant of the year", at(t, "2024-12-31T23:59:59.999999999", utc), "2025-01-31T23:59:59.999999999Z"},

		// The end of January in leap years (2024, 2028, 2000: divisible
		// by 400) and common years (2025, 2100: divisible by 100 only).
		{"28 Jan 2024", at(t, "2024-01-28T00:00:00", utc), "2024-02-28T00:00:00Z"},
		{"29 Jan 2024", at(t, "2024-01-29T00:00:00", utc), "2024-02-29T00:00:00Z"},
		{"30 Jan 2024", at(t, "2024-01-30T00:00:00", utc), "2024-02-29T00:00:00Z"},
		{"31 Jan 2024", at(t, "2024-01-31T00:00:00", utc), "2024-02-29T00:00:00Z"},
		{"29 Jan 2028", at(t, "2028-01-29T00:00:00", utc), "2028-02-29T00:00:00Z"},
		{"30 Jan 2028", at(t, "2028-01-30T00:00:00", utc), "2028-02-29T00:00:00Z"},
		{"31 Jan 2028", at(t, "2028-01-31T00:00:00", utc), "2028-02-29T00:00:00Z"},
		{"29 Jan 2000", at(t, "2000-01-29T00:00:00", utc), "2000-02-29T00:00:00Z"},
		{"30 Jan 2000", at(t, "2000-01-30T00:00:00", utc), "2000-02-29T00:00:00Z"},
		{"31 Jan 2000", at(t, "2000-01-31T00:00:00", utc), "2000-02-29T00:00:00Z"},
		{"28 Jan 2025", at(t, "2025-01-28T00:00:00", utc), "2025-02-28T00:00:00Z"},
		{"29 Jan 2025", at(t, "2025-01-29T00:00:00", utc), "2025-02-28T00:00:00Z"},
		{"30 Jan 2025", at(t, "2025-01-30T00:00:00", utc), "2025-02-28T00:00:00Z"},
		{"29 Jan 2100", at(t, "2100-01-29T00:00:00", utc), "2100-02-28T00:00:00Z"},
		{"30 Jan 2100", at(t, "2100-01-30T00:00:00", utc), "2100-02-28T00:00:00Z"},
		{"31 Jan 2100", at(t, "2100-01-31T00:00:00", utc), "2100-02-28T00:00:00Z"},

		// Clock time and location are kept.
		{"mid-month with time of day", at(t, "2026-03-15T17:42:07.123456789", utc), "2026-04-15T17:42:07.123456789Z"},
		{"Tokyo, just before midnight", at(t, "2026-01-31T23:59:59", tokyo), "2026-02-28T23:59:59+09:00"},
		{"Tokyo, 1 Jan is 31 Dec in UTC", at(t, "2026-01-01T08:00:00", tokyo), "2026-02-01T08:00:00+09:00"},
		{"Kolkata, half-hour offset", at(t, "2025-05-31T09:30:00", kolkata), "2025-06-30T09:30:00+05:30"},
		{"fixed zone west of Greenwich", at(t, "2025-12-31T22:15:00", fixed), "2026-01-31T22:15:00-03:30"},

		// Across daylight-saving changes: same clock time, new offset.
		{"Berlin, winter to summer time", at(t, "2026-03-15T10:00:00", berlin), "2026-04-15T10:00:00+02:00"},
		{"Berlin, summer to winter time", at(t, "2026-10-10T10:00:00", berlin), "2026-11-10T10:00:00+01:00"},
		{"Berlin, 31 Jan to end of Feb", at(t, "2028-01-31T23:30:00", berlin), "2028-02-29T23:30:00+01:00"},
		{"Berlin, received on the day of the change", at(t, "2026-03-29T12:00:00", berlin), "2026-04-29T12:00:00+02:00"},
		{"New York, winter to summer time", at(t, "2026-02-20T09:00:00", newYork), "2026-03-20T09:00:00-04:00"},

		// Clock times a change skips or repeats on the due day: the first
		// instant the clock reads that time or later, east and west alike.
		{"Berlin, due in the skipped hour", at(t, "2027-02-28T02:30:00", berlin), "2027-03-28T03:00:00+02:00"},
		{"Berlin, due in the repeated hour", at(t, "2026-09-25T02:30:00", berlin), "2026-10-25T02:30:00+02:00"},
		{"New York, due in the skipped hour", at(t, "2026-02-08T02:30:00", newYork), "2026-03-08T03:00:00-04:00"},
		{"New York, due in the repeated hour", at(t, "2026-10-01T01:30:00", newYork), "2026-11-01T01:30:00-04:00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := deadline.Due(tt.received)
			if s := got.Format(time.RFC3339Nano); s != tt.want {
				t.Errorf("Due(%s) = %s, want %s", tt.received.Format(time.RFC3339Nano), s, tt.want)
			}
			if got.Location() != tt.received.Location() {
				t.Errorf("Due(%s) is in %v, want %v", tt.received.Format(time.RFC3339Nano), got.Location(), tt.received.Location())
			}
		})
	}
}

func TestDueSkippedDay(t *testing.T) {
	// Samoa skipped 30 December 2011 entirely, moving from UTC-10 to UTC+14.
	apia := loc(t, "Pacific/Apia")
	received := at(t, "2011-11-30T12:00:00", apia)
	if got, want := deadline.Due(received).Format(time.RFC3339), "2011-12-31T00:00:00+14:00"; got != want {
		t.Errorf("Due(%s) = %s, want %s, the first instant of the day after the skipped one",
			received.Format(time.RFC3339), got, want)
	}
}

func TestAddMonths(t *testing.T) {
	utc := time.UTC
	berlin := loc(t, "Europe/Berlin")
	tests := []struct {
		name string
		t    time.Time
		n    int
		want string
	}{
		{"zero months", at(t, "2026-01-31T10:00:00", utc), 0, "2026-01-31T10:00:00Z"},
		{"31 Jan + 2, one extension", at(t, "2026-01-31T10:00:00", utc), 2, "2026-03-31T10:00:00Z"},
		{"31 Jan + 3, two extensions", at(t, "2026-01-31T10:00:00", utc), 3, "2026-04-30T10:00:00Z"},
		{"30 Nov + 3 across the year into Feb", at(t, "2027-11-30T10:00:00", utc), 3, "2028-02-29T10:00:00Z"},
		{"29 Feb 2024 + 12", at(t, "2024-02-29T10:00:00", utc), 12, "2025-02-28T10:00:00Z"},
		{"29 Feb 2024 + 48", at(t, "2024-02-29T10:00:00", utc), 48, "2028-02-29T10:00:00Z"},
		{"31 Jan 2099 + 13 into 2100", at(t, "2099-01-31T10:00:00", utc), 13, "2100-02-28T10:00:00Z"},
		{"31 Mar - 1", at(t, "2024-03-31T10:00:00", utc), -1, "2024-02-29T10:00:00Z"},
		{"31 Jan - 2 across the year", at(t, "2026-01-31T10:00:00", utc), -2, "2025-11-30T10:00:00Z"},
		{"Berlin 31 Jan + 3 across the change", at(t, "2026-01-31T10:00:00", berlin), 3, "2026-04-30T10:00:00+02:00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := deadline.AddMonths(tt.t, tt.n).Format(time.RFC3339Nano); got != tt.want {
				t.Errorf("AddMonths(%s, %d) = %s, want %s", tt.t.Format(time.RFC3339Nano), tt.n, got, tt.want)
			}
		})
	}
}

// TestDueEveryDay checks the rule against every day of a leap year and a
// common year, at a time of day in Berlin: the due date is in the next
// month, on the same day or that month's last, at the same clock time, and
// it never goes backwards as the day received moves forwards.
func TestDueEveryDay(t *testing.T) {
	berlin := loc(t, "Europe/Berlin")
	var prev time.Time
	for d := at(t, "2024-01-01T09:15:00", berlin); d.Year() < 2026; d = d.AddDate(0, 0, 1) {
		got := deadline.Due(d)
		y, m, day := d.Date()
		nextMonth := time.Date(y, m+1, 1, 0, 0, 0, 0, time.UTC)
		last := time.Date(y, m+2, 0, 0, 0, 0, 0, time.UTC).Day()
		want := time.Date(nextMonth.Year(), nextMonth.Month(), min(day, last), 9, 15, 0, 0, berlin)
		if !got.Equal(want) || got.Location() != berlin {
			t.Errorf("Due(%s) = %s, want %s", d.Format(time.RFC3339), got.Format(time.RFC3339), want.Format(time.RFC3339))
		}
		if got.Before(prev) {
			t.Errorf("Due(%s) = %s, before the due date of the day before, %s", d.Format(time.RFC3339), got.Format(time.RFC3339), prev.Format(time.RFC3339))
		}
		prev = got
	}
}
