package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/custos-dev/custos"
)

// testExpireBefore is a retention sweep's drop: EventsBefore lists the
// tenant's events dated before a cutoff in the middle of a day, oldest
// day first and without values, and a Write with ExpireBefore removes
// exactly them, with the deduplication records Unsee names, and no
// other tenant's. An event dated on a dropped day that arrives later is
// kept and found.
func testExpireBefore(t *testing.T, open func(*testing.T) custos.Store) {
	ctx := context.Background()
	st := open(t)
	ten, other := newTenant(t, st), newTenant(t, st)
	s1, s2 := custos.NewSubjectID(), custos.NewSubjectID()
	day := func(d, h int) time.Time { return time.Date(2024, 5, 10+d, h, 0, 0, 0, time.UTC) }
	cutoff := day(3, 12)
	var old, kept []custos.StoredEvent
	var seen []custos.Seen
	for _, tm := range []time.Time{day(0, 1), day(0, 23), day(1, 5), day(3, 0), day(3, 11), day(3, 12), day(3, 20), day(4, 2)} {
		for _, s := range []custos.SubjectID{s1, s2} {
			e := event(s, tm, messageHash(), "v")
			if tm.Before(cutoff) {
				old = append(old, e)
			} else {
				kept = append(kept, e)
			}
			seen = append(seen, custos.Seen{ID: e.ID, Subject: s, Time: tm})
		}
	}
	all := append(append([]custos.StoredEvent{}, old...), kept...)
	apply(t, st, &custos.Write{Tenant: ten, Events: all, Seen: seen})
	// The other tenant has events on the same days and subjects.
	var theirs []custos.StoredEvent
	for _, e := range all {
		theirs = append(theirs, event(e.Subject, e.Time, messageHash(), "theirs"))
	}
	apply(t, st, &custos.Write{Tenant: other, Events: theirs})

	var listed []custos.StoredEvent
	lastDay := time.Time{}
	err := st.EventsBefore(ctx, ten, cutoff, func(e custos.StoredEvent) (bool, error) {
		if d := e.Time.UTC().Truncate(24 * time.Hour); d.Before(lastDay) {
			t.Errorf("EventsBefore gave an event of %s after one of %s: want oldest day first", d.Format(time.DateOnly), lastDay.Format(time.DateOnly))
		} else {
			lastDay = d
		}
		if e.Value != nil {
			t.Errorf("EventsBefore gave a value (%q): want none", e.Value)
		}
		listed = append(listed, custos.StoredEvent{Subject: e.Subject, Time: e.Time, ID: e.ID, Value: []byte("v")})
		return true, nil
	})
	if err != nil {
		t.Fatalf("EventsBefore: %v", err)
	}
	if got, want := formatEvents(sorted(listed)), formatEvents(sorted(old)); got != want {
		t.Errorf("EventsBefore(%s) = %s, want %s", cutoff, got, want)
	}
	// fn stops the listing.
	n := 0
	if err := st.EventsBefore(ctx, ten, cutoff, func(custos.StoredEvent) (bool, error) { n++; return false, nil }); err != nil || n != 1 {
		t.Errorf("EventsBefore stopped by fn: %d calls, err %v; want 1 call", n, err)
	}

	w := &custos.Write{Tenant: ten, ExpireBefore: cutoff}
	for _, e := range listed {
		w.DeleteEvents = append(w.DeleteEvents, custos.StoredEvent{Subject: e.Subject, Time: e.Time, ID: e.ID})
		w.Unsee = append(w.Unsee, e.ID)
	}
	apply(t, st, w)
	for _, s := range []custos.SubjectID{s1, s2} {
		var want, wantTheirs []custos.StoredEvent
		for _, e := range kept {
			if e.Subject == s {
				want = append(want, e)
			}
		}
		for _, e := range theirs {
			if e.Subject == s {
				wantTheirs = append(wantTheirs, e)
			}
		}
		checkEvents(t, st, ten, s, sorted(want))
		checkSpan(t, st, ten, s, want)
		checkEvents(t, st, other, s, sorted(wantTheirs))
	}
	for _, sn := range seen {
		if sn.Time.Before(cutoff) {
			checkNotSeen(t, st, ten, sn.ID)
		} else {
			checkSeen(t, st, ten, sn)
		}
	}
	if err := st.EventsBefore(ctx, ten, cutoff, func(e custos.StoredEvent) (bool, error) {
		t.Errorf("EventsBefore after the expiry gave %s %s", e.Subject, e.Time)
		return true, nil
	}); err != nil {
		t.Fatal(err)
	}

	// A late event dated on a dropped day is stored and found.
	late := event(s1, day(1, 6), messageHash(), "late")
	apply(t, st, &custos.Write{Tenant: ten, Events: []custos.StoredEvent{late}})
	var want []custos.StoredEvent
	for _, e := range kept {
		if e.Subject == s1 {
			want = append(want, e)
		}
	}
	want = append(want, late)
	checkEvents(t, st, ten, s1, sorted(want))
	checkSpan(t, st, ten, s1, want)
}
