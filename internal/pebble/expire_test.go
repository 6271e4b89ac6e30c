package pebble

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/custos-dev/custos"
)

// TestExpireDropsWholeDays: an expiry removes the days before the
// cutoff's day whole, with the day index entries of the events it names,
// so that a subject's index no longer lists them; the cutoff's own day
// keeps its later events and its index entry.
func TestExpireDropsWholeDays(t *testing.T) {
	ctx := context.Background()
	st, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	tn := &custos.Tenant{ID: custos.NewTenantID(), Name: "t"}
	if err := st.CreateTenant(ctx, tn); err != nil {
		t.Fatal(err)
	}
	sub := custos.NewSubjectID()
	base := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	apply := func(w *custos.Write) {
		t.Helper()
		wait, err := st.Apply(ctx, []*custos.Write{w})
		if err != nil {
			t.Fatal(err)
		}
		if err := wait(); err != nil {
			t.Fatal(err)
		}
	}
	w := &custos.Write{Tenant: tn.ID}
	for d := range 10 {
		for h := 0; h < 24; h += 6 {
			w.Events = append(w.Events, custos.StoredEvent{Subject: sub, Time: base.AddDate(0, 0, d).Add(time.Duration(h) * time.Hour), Value: []byte("sealed")})
		}
	}
	apply(w)
	cutoff := base.AddDate(0, 0, 7).Add(10 * time.Hour) // day 7, 10:00
	exp := &custos.Write{Tenant: tn.ID, ExpireBefore: cutoff}
	if err := st.EventsBefore(ctx, tn.ID, cutoff, func(e custos.StoredEvent) (bool, error) {
		exp.DeleteEvents = append(exp.DeleteEvents, e)
		return true, nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(exp.DeleteEvents) != 7*4+2 {
		t.Fatalf("EventsBefore listed %d events, want %d", len(exp.DeleteEvents), 7*4+2)
	}
	apply(exp)
	days, err := st.subjectDays(st.db, subjectRef{tn.ID, sub})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fmt.Sprint(days), fmt.Sprint([]day{dayOf(base) + 7, dayOf(base) + 8, dayOf(base) + 9}); got != want {
		t.Errorf("day index after expiry = %s, want %s", got, want)
	}
	var left int
	if err := st.Events(ctx, tn.ID, sub, nil, func(e custos.StoredEvent) (bool, error) {
		if e.Time.Before(cutoff) {
			t.Errorf("event of %s left after the expiry before %s", e.Time, cutoff)
		}
		left++
		return true, nil
	}); err != nil {
		t.Fatal(err)
	}
	if left != 2+2*4 {
		t.Errorf("%d events left, want %d", left, 2+2*4)
	}
}
