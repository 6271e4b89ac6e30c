package deadline_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/deadline"
)

func TestNew(t *testing.T) {
	berlin := loc(t, "Europe/Berlin")
	received := at(t, "2028-01-30T16:05:00", berlin)
	got := deadline.New(received)
	want := deadline.State{
		Received:    received,
		OriginalDue: at(t, "2028-02-29T16:05:00", berlin),
		Due:         at(t, "2028-02-29T16:05:00", berlin),
	}
	if got != want {
		t.Errorf("New(%s) = %+v, want %+v", received.Format(time.RFC3339), got, want)
	}
}

func TestExtend(t *testing.T) {
	utc := time.UTC
	berlin := loc(t, "Europe/Berlin")
	// Received 31 January 2026 10:00 UTC: originally due 28 February 10:00.
	jan31 := at(t, "2026-01-31T10:00:00", utc)
	due := at(t, "2026-02-28T10:00:00", utc)
	feb1 := at(t, "2026-02-01T09:00:00", utc)
	feb2 := at(t, "2026-02-02T09:00:00", utc)

	type step struct {
		now      time.Time
		months   int
		reason   string
		wantDue  string      // RFC 3339, if the step succeeds
		wantCode custos.Code // if it fails
		wantMsg  string      // part of the failure's Message
	}
	tests := []struct {
		name     string
		received time.Time
		steps    []step
	}{
		{"1 month: 31 Mar, not 28 Mar", jan31, []step{
			{now: feb1, months: 1, reason: "complex request", wantDue: "2026-03-31T10:00:00Z"},
		}},
		{"1 then 1", jan31, []step{
			{now: feb1, months: 1, reason: "complex request", wantDue: "2026-03-31T10:00:00Z"},
			{now: feb2, months: 1, reason: "many requests", wantDue: "2026-04-30T10:00:00Z"},
		}},
		{"2 at once, same date as 1 then 1", jan31, []step{
			{now: feb1, months: 2, reason: "complex request", wantDue: "2026-04-30T10:00:00Z"},
		}},
		{"1 then 2 refused", jan31, []step{
			{now: feb1, months: 1, reason: "complex request", wantDue: "2026-03-31T10:00:00Z"},
			{now: feb2, months: 2, reason: "more", wantCode: custos.Conflict, wantMsg: "extensions total at most 2 months; 1 already granted"},
		}},
		{"2 then 1 refused", jan31, []step{
			{now: feb1, months: 2, reason: "complex request", wantDue: "2026-04-30T10:00:00Z"},
			{now: feb2, months: 1, reason: "more", wantCode: custos.Conflict, wantMsg: "extensions total at most 2 months; 2 already granted"},
		}},
		{"one nanosecond before the due date", jan31, []step{
			{now: due.Add(-time.Nanosecond), months: 1, reason: "complex request", wantDue: "2026-03-31T10:00:00Z"},
		}},
		{"exactly at the due date refused", jan31, []step{
			{now: due, months: 1, reason: "complex request", wantCode: custos.Conflict,
				wantMsg: "an extension must be asked for before the original due date 2026-02-28T10:00:00Z"},
		}},
		{"after the due date refused", jan31, []step{
			{now: at(t, "2026-03-01T00:00:00", utc), months: 1, reason: "complex request", wantCode: custos.Conflict,
				wantMsg: "an extension must be asked for before the original due date 2026-02-28T10:00:00Z"},
		}},
		{"second extension after the original due date refused", jan31, []step{
			{now: feb1, months: 1, reason: "complex request", wantDue: "2026-03-31T10:00:00Z"},
			{now: at(t, "2026-03-05T00:00:00", utc), months: 1, reason: "more", wantCode: custos.Conflict,
				wantMsg: "an extension must be asked for before the original due date 2026-02-28T10:00:00Z"},
		}},
		{"same instant in another zone counts as at the due date", jan31, []step{
			{now: due.In(berlin), months: 1, reason: "complex request", wantCode: custos.Conflict, wantMsg: "before the original due date"},
		}},
		{"empty reason refused", jan31, []step{
			{now: feb1, months: 1, reason: "", wantCode: custos.Invalid, wantMsg: "a reason is required"},
		}},
		{"blank reason refused", jan31, []step{
			{now: feb1, months: 1, reason: " \t\n", wantCode: custos.Invalid, wantMsg: "a reason is required"},
		}},
		{"0 months refused", jan31, []step{
			{now: feb1, months: 0, reason: "complex request", wantCode: custos.Invalid, wantMsg: "months must be 1 or 2"},
		}},
		{"3 months refused", jan31, []step{
			{now: feb1, months: 3, reason: "complex request", wantCode: custos.Invalid, wantMsg: "months must be 1 or 2"},
		}},
		{"negative months refused", jan31, []step{
			{now: feb1, months: -1, reason: "complex request", wantCode: custos.Invalid, wantMsg: "months must be 1 or 2"},
		}},
		{"Berlin, across the change to summer time", at(t, "2026-01-31T10:00:00", berlin), []step{
			{now: at(t, "2026-02-27T10:00:00", berlin), months: 2, reason: "complex request", wantDue: "2026-04-30T10:00:00+02:00"},
		}},
		{"leap year: 30 Jan 2028 + 1", at(t, "2028-01-30T08:00:00", utc), []step{
			{now: at(t, "2028-02-29T07:59:59", utc), months: 1, reason: "complex request", wantDue: "2028-03-30T08:00:00Z"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := deadline.New(tt.received)
			original := s.OriginalDue
			for i, st := range tt.steps {
				got, err := s.Extend(st.now, st.months, st.reason)
				if st.wantCode != "" {
					var e *custos.Error
					if !errors.As(err, &e) || e.Code != st.wantCode || !strings.Contains(e.Message, st.wantMsg) {
						t.Fatalf("step %d: Extend(%s, %d, %q) error = %v, want a %s error containing %q",
							i, st.now.Format(time.RFC3339), st.months, st.reason, err, st.wantCode, st.wantMsg)
					}
					if got != s {
						t.Fatalf("step %d: refused Extend returned %+v, want the state unchanged, %+v", i, got, s)
					}
					continue
				}
				if err != nil {
					t.Fatalf("step %d: Extend(%s, %d, %q) = %v, want due %s",
						i, st.now.Format(time.RFC3339), st.months, st.reason, err, st.wantDue)
				}
				if d := got.Due.Format(time.RFC3339Nano); d != st.wantDue {
					t.Errorf("step %d: Extend(%s, %d, %q).Due = %s, want %s",
						i, st.now.Format(time.RFC3339), st.months, st.reason, d, st.wantDue)
				}
				if got.ExtendedMonths != s.ExtendedMonths+st.months {
					t.Errorf("step %d: ExtendedMonths = %d, want %d", i, got.ExtendedMonths, s.ExtendedMonths+st.months)
				}
				if got.Received != s.Received || got.OriginalDue != original {
					t.Errorf("step %d: Extend changed Received or OriginalDue: %+v, want %s and %s",
						i, got, s.Received.Format(time.RFC3339), original.Format(time.RFC3339))
				}
				s = got
			}
		})
	}
}

func TestOverdue(t *testing.T) {
	utc := time.UTC
	s := deadline.New(at(t, "2026-01-31T10:00:00", utc))
	ext, err := s.Extend(at(t, "2026-02-10T00:00:00", utc), 1, "complex request")
	if err != nil {
		t.Fatal(err)
	}
	due := at(t, "2026-02-28T10:00:00", utc)
	extDue := at(t, "2026-03-31T10:00:00", utc)
	tests := []struct {
		name  string
		state deadline.State
		now   time.Time
		want  bool
	}{
		{"long before", s, at(t, "2026-02-01T00:00:00", utc), false},
		{"a nanosecond before the due date", s, due.Add(-time.Nanosecond), false},
		{"at the due date", s, due, false},
		{"a nanosecond after", s, due.Add(time.Nanosecond), true},
		{"same instant in another zone", s, due.In(loc(t, "America/New_York")), false},
		{"a nanosecond after, another zone", s, due.Add(time.Nanosecond).In(loc(t, "Asia/Tokyo")), true},
		{"extended: after the original due date", ext, due.Add(time.Hour), false},
		{"extended: at the new due date", ext, extDue, false},
		{"extended: a nanosecond after it", ext, extDue.Add(time.Nanosecond), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.state.Overdue(tt.now); got != tt.want {
				t.Errorf("Overdue(%s) with due %s = %t, want %t",
					tt.now.Format(time.RFC3339Nano), tt.state.Due.Format(time.RFC3339Nano), got, tt.want)
			}
		})
	}
}
