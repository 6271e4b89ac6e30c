package storetest

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/custos-dev/custos"
)

// orderFixture is a subject whose events exercise ordering: times before
// 1970, around the epoch, a zone other than UTC, and equal times told apart
// by ids that differ only in their last byte.
type orderFixture struct {
	tenant  custos.TenantID
	subject custos.SubjectID
	want    []custos.StoredEvent // in contract order, written literally
	// Ids used at the crowded instant at(0), in ascending order.
	zero, pA, pB, pC, ones custos.MessageHash
}

func newOrderFixture(t *testing.T, st custos.Store) orderFixture {
	t.Helper()
	f := orderFixture{tenant: newTenant(t, st), subject: custos.NewSubjectID()}
	s := f.subject
	p := messageHash()
	p[0] = 0x42 // strictly between all-zero and all-ff ids
	f.zero, f.ones = custos.MessageHash(filled(0x00)), custos.MessageHash(filled(0xff))
	f.pA, f.pB, f.pC = withLast(p, 0x00), withLast(p, 0x01), withLast(p, 0xff)
	lo, hi := custos.MessageHash(filled(0x7f)), custos.MessageHash(filled(0x80))
	epoch := time.Unix(0, 0).UTC()
	// 10:00 UTC is later than this 09:30 UTC wall clock, but 10:30 UTC
	// written as 05:30 in UTC-5 is later still: order is by instant.
	minus5 := time.FixedZone("UTC-5", -5*60*60)
	f.want = []custos.StoredEvent{
		event(s, time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC), f.ones, "1900"),
		event(s, epoch.Add(-time.Microsecond), f.zero, "1µs before the epoch"),
		event(s, epoch, lo, "epoch 7f"),
		event(s, epoch, hi, "epoch 80"),
		event(s, epoch.Add(time.Microsecond), f.zero, "1µs after the epoch"),
		event(s, at(0), f.zero, "now 00"),
		event(s, at(0), f.pA, "now p00"),
		event(s, at(0), f.pB, "now p01"),
		event(s, at(0), f.pC, "now pff"),
		event(s, at(0), f.ones, "now ff"),
		event(s, at(0).Add(time.Microsecond), f.zero, "now plus 1µs"),
		event(s, time.Date(2024, 5, 17, 10, 0, 0, 0, time.UTC), messageHash(), "10:00 UTC"),
		event(s, time.Date(2024, 5, 17, 5, 30, 0, 0, minus5), messageHash(), "05:30 UTC-5"),
		event(s, time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC), f.zero, "2200"),
	}
	if !slices.IsSortedFunc(f.want, compareEvents) {
		t.Fatal("orderFixture: want is not in contract order") // a bug in the suite
	}
	// Insert out of order, over several Apply calls and within each.
	order := []int{8, 0, 13, 5, 2, 9, 1, 12, 6, 3, 11, 7, 10, 4}
	for start := 0; start < len(order); start += 5 {
		var es []custos.StoredEvent
		for _, i := range order[start:min(start+5, len(order))] {
			es = append(es, f.want[i])
		}
		apply(t, st, &custos.Write{Tenant: f.tenant, Events: es})
	}
	return f
}

func testEventsOrder(t *testing.T, open func(*testing.T) custos.Store) {
	st := open(t)
	f := newOrderFixture(t, st)
	checkEvents(t, st, f.tenant, f.subject, f.want)
}

func testEventsCursor(t *testing.T, open func(*testing.T) custos.Store) {
	st := open(t)
	f := newOrderFixture(t, st)
	w := f.want
	first, last := w[0], w[len(w)-1]
	mid := f.pB
	mid[len(mid)-1] = 0x80 // between pB and pC
	type cursorCase struct {
		name  string
		after *custos.EventCursor
		from  int // the listing is want[from:]
	}
	tests := []cursorCase{
		{"nil cursor", nil, 0},
		{"before the first event", &custos.EventCursor{Time: first.Time.Add(-time.Microsecond), ID: f.ones}, 0},
		{"first event's time, smaller id", &custos.EventCursor{Time: first.Time, ID: f.zero}, 0},
		{"after the last event", &custos.EventCursor{Time: last.Time.Add(time.Microsecond), ID: f.zero}, len(w)},
		{"last event's time, larger id", &custos.EventCursor{Time: last.Time, ID: f.ones}, len(w)},
		{"between equal-time ids", &custos.EventCursor{Time: at(0), ID: mid}, 8},
		{"just before a crowded instant", &custos.EventCursor{Time: at(0).Add(-time.Microsecond), ID: f.ones}, 5},
		{"epoch, id below every event there", &custos.EventCursor{Time: w[2].Time, ID: f.zero}, 2},
		{"a time with no event", &custos.EventCursor{Time: time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC), ID: f.pB}, 5},
		{"event 4 in another zone", &custos.EventCursor{Time: w[4].Time.In(time.FixedZone("UTC+9", 9*60*60)), ID: w[4].ID}, 5},
	}
	for i, e := range w {
		tests = append(tests, cursorCase{fmt.Sprintf("at event %d (%s)", i, e.Value), &custos.EventCursor{Time: e.Time, ID: e.ID}, i + 1})
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := listEvents(t, st, f.tenant, f.subject, tc.after)
			if want := w[tc.from:]; !slices.EqualFunc(got, want, sameEvent) {
				t.Errorf("Events(after %s):\ngot  %s\nwant %s", formatCursor(tc.after), formatEvents(got), formatEvents(want))
			}
		})
	}
}

func formatCursor(c *custos.EventCursor) string {
	if c == nil {
		return "nil"
	}
	return fmt.Sprintf("{%s %x}", c.Time.Format(time.RFC3339Nano), c.ID[:])
}

func testEventsStop(t *testing.T, open func(*testing.T) custos.Store) {
	st := open(t)
	f := newOrderFixture(t, st)
	for _, n := range []int{1, 2, len(f.want) - 1, len(f.want)} {
		t.Run(fmt.Sprintf("stop after %d", n), func(t *testing.T) {
			var got []custos.StoredEvent
			err := st.Events(t.Context(), f.tenant, f.subject, nil, func(e custos.StoredEvent) (bool, error) {
				got = append(got, e)
				return len(got) < n, nil
			})
			if err != nil {
				t.Errorf("Events with fn returning false after %d calls = %v, want nil", n, err)
			}
			if want := f.want[:n]; !slices.EqualFunc(got, want, sameEvent) {
				t.Errorf("Events with fn returning false after %d calls:\ngot  %s\nwant %s", n, formatEvents(got), formatEvents(want))
			}
		})
	}
}

func testEventsError(t *testing.T, open func(*testing.T) custos.Store) {
	st := open(t)
	f := newOrderFixture(t, st)
	errStop := errors.New("storetest: stop here")
	for _, n := range []int{1, 3, len(f.want)} {
		t.Run(fmt.Sprintf("error at call %d", n), func(t *testing.T) {
			calls := 0
			err := st.Events(t.Context(), f.tenant, f.subject, nil, func(e custos.StoredEvent) (bool, error) {
				calls++
				if calls == n {
					// More is true: the error alone must stop the listing.
					return true, errStop
				}
				return true, nil
			})
			if !errors.Is(err, errStop) {
				t.Errorf("Events with fn failing at call %d = %v, want %v", n, err, errStop)
			}
			if calls != n {
				t.Errorf("Events with fn failing at call %d called fn %d times, want %d", n, calls, n)
			}
		})
	}
}

func testEventsNone(t *testing.T, open func(*testing.T) custos.Store) {
	st := open(t)
	ten := newTenant(t, st)
	// Neighbours with events, so that a store reading past a subject's
	// range would be caught.
	profileOnly := custos.SubjectID(withLast([16]byte(custos.NewSubjectID()), 0x01))
	before, after := profileOnly, profileOnly
	before[15], after[15] = 0x00, 0x02
	emptied := custos.NewSubjectID()
	gone := event(emptied, at(0), messageHash(), "deleted")
	apply(t, st, &custos.Write{
		Tenant: ten,
		Events: []custos.StoredEvent{
			event(before, at(0), messageHash(), "neighbour before"),
			event(after, at(0), messageHash(), "neighbour after"),
			gone,
		},
		Profiles: []custos.StoredProfile{{Subject: profileOnly, Value: []byte("profile only")}},
	})
	apply(t, st, &custos.Write{Tenant: ten, DeleteEvents: []custos.StoredEvent{gone}})
	tests := []struct {
		name    string
		tenant  custos.TenantID
		subject custos.SubjectID
		after   *custos.EventCursor
	}{
		{"never written", ten, custos.NewSubjectID(), nil},
		{"profile but no events", ten, profileOnly, nil},
		{"profile but no events, with cursor", ten, profileOnly, &custos.EventCursor{Time: time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC)}},
		{"only event deleted", ten, emptied, nil},
		{"unknown tenant", custos.NewTenantID(), before, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			err := st.Events(t.Context(), tc.tenant, tc.subject, tc.after, func(e custos.StoredEvent) (bool, error) {
				calls++
				return true, nil
			})
			if err != nil || calls != 0 {
				t.Errorf("Events(%s) called fn %d times and returned %v, want 0 and nil", tc.name, calls, err)
			}
		})
	}
}

func testEventSpan(t *testing.T, open func(*testing.T) custos.Store) {
	st := open(t)
	ten := newTenant(t, st)
	s := custos.NewSubjectID()
	e1969 := event(s, time.Date(1969, 12, 31, 23, 0, 0, 0, time.UTC), messageHash(), "1969")
	eNow := event(s, at(0), messageHash(), "now")
	eLater := event(s, at(3600), messageHash(), "later")
	checkSpan(t, st, ten, s, nil)

	steps := []struct {
		name  string
		write custos.Write
		have  []custos.StoredEvent
	}{
		{"one event", custos.Write{Events: []custos.StoredEvent{eNow}}, []custos.StoredEvent{eNow}},
		{"later event added", custos.Write{Events: []custos.StoredEvent{eLater}}, []custos.StoredEvent{eNow, eLater}},
		{"earlier event before 1970 added", custos.Write{Events: []custos.StoredEvent{e1969}}, []custos.StoredEvent{e1969, eNow, eLater}},
		{"first deleted", custos.Write{DeleteEvents: []custos.StoredEvent{e1969}}, []custos.StoredEvent{eNow, eLater}},
		{"last deleted", custos.Write{DeleteEvents: []custos.StoredEvent{eLater}}, []custos.StoredEvent{eNow}},
		{"subject deleted", custos.Write{DeleteSubjects: []custos.SubjectID{s}}, nil},
	}
	for _, step := range steps {
		t.Run(step.name, func(t *testing.T) {
			w := step.write
			w.Tenant = ten
			apply(t, st, &w)
			checkSpan(t, st, ten, s, step.have)
		})
	}
}
