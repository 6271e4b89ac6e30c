package storetest

import (
	"testing"
	"time"

	"github.com/custos-dev/custos"
)

// testDaysEmptied deletes events one by one until some of a subject's
// days hold none — by DeleteEvents, by ExpireBefore on the cutoff's own
// day, and within one Apply together with puts to the same day — and
// checks after each step that EventSpan (and EventDays, where the store
// indexes events by day) reflects exactly the events left: a day left
// empty is no longer one of the subject's days, and an event put on it
// again makes it one again.
func testDaysEmptied(t *testing.T, open func(*testing.T) custos.Store) {
	st := open(t)
	ten := newTenant(t, st)
	day := func(d, h int) time.Time { return time.Date(2024, 6, 1+d, h, 0, 0, 0, time.UTC) }
	check := func(s custos.SubjectID, want ...custos.StoredEvent) {
		t.Helper()
		checkEvents(t, st, ten, s, sorted(want))
		checkSpan(t, st, ten, s, want)
	}

	// DeleteEvents empties one day and thins another.
	a := custos.NewSubjectID()
	a0, a1, a2 := event(a, day(0, 9), messageHash(), "a0"), event(a, day(1, 9), messageHash(), "a1"), event(a, day(1, 15), messageHash(), "a2")
	apply(t, st, &custos.Write{Tenant: ten, Events: []custos.StoredEvent{a0, a1, a2}})
	check(a, a0, a1, a2)
	apply(t, st, &custos.Write{Tenant: ten, DeleteEvents: []custos.StoredEvent{a0, a1}})
	check(a, a2)
	again := event(a, day(0, 10), messageHash(), "again")
	apply(t, st, &custos.Write{Tenant: ten, Events: []custos.StoredEvent{again}})
	check(a, again, a2)

	// In one Apply: a day emptied by one write and filled by a later one
	// keeps it; a day filled by one write and emptied by a later one
	// loses it, and an event put there afterwards brings it back.
	b, c := custos.NewSubjectID(), custos.NewSubjectID()
	b0 := event(b, day(2, 9), messageHash(), "b0")
	apply(t, st, &custos.Write{Tenant: ten, Events: []custos.StoredEvent{b0}})
	b1 := event(b, day(2, 11), messageHash(), "b1")
	c0 := event(c, day(3, 9), messageHash(), "c0")
	apply(t, st,
		&custos.Write{Tenant: ten, DeleteEvents: []custos.StoredEvent{b0}, Events: []custos.StoredEvent{c0}},
		&custos.Write{Tenant: ten, Events: []custos.StoredEvent{b1}, DeleteEvents: []custos.StoredEvent{c0}})
	check(b, b1)
	check(c)
	c1 := event(c, day(3, 10), messageHash(), "c1")
	apply(t, st, &custos.Write{Tenant: ten, Events: []custos.StoredEvent{c1}})
	check(c, c1)

	// ExpireBefore with a cutoff in the middle of a day empties that day
	// for a subject whose events of it all come before the cutoff, and
	// keeps it for one with a later event.
	exp := newTenant(t, st)
	d, e := custos.NewSubjectID(), custos.NewSubjectID()
	d0, d1 := event(d, day(4, 9), messageHash(), "d0"), event(d, day(5, 8), messageHash(), "d1")
	e0, e1 := event(e, day(5, 9), messageHash(), "e0"), event(e, day(5, 14), messageHash(), "e1")
	apply(t, st, &custos.Write{Tenant: exp, Events: []custos.StoredEvent{d0, d1, e0, e1}})
	apply(t, st, &custos.Write{Tenant: exp, ExpireBefore: day(5, 12), DeleteEvents: []custos.StoredEvent{d0, d1, e0}})
	checkEvents(t, st, exp, d, nil)
	checkSpan(t, st, exp, d, nil)
	checkEvents(t, st, exp, e, []custos.StoredEvent{e1})
	checkSpan(t, st, exp, e, []custos.StoredEvent{e1})
}
