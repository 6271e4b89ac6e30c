package incident

import (
	"context"
	"time"

	"github.com/custos-dev/custos"
)

// window returns the event times in scope, inclusive: the scope's window,
// or, without one, every event up to the opening (what existed when the
// breach was registered). An open end is the zero time.
func window(inc *custos.Incident) (from, to time.Time) {
	if inc.Scope.Windowed() {
		return inc.Scope.EventsFrom, inc.Scope.EventsTo
	}
	return time.Time{}, inc.OpenedAt
}

// inScope reports whether a subject is in the incident's scope and, when
// all is true, counts its events in the window. It reads keys and
// timestamps only: nothing is decrypted. A subject with a profile and no
// events is in scope only when the scope has no window.
func (r *Register) inScope(ctx context.Context, t custos.TenantID, s custos.SubjectID, inc *custos.Incident, all bool) (events int64, ok bool, err error) {
	from, to := window(inc)
	first, last, has, err := r.store.EventSpan(ctx, t, s)
	if err != nil || !has {
		return 0, err == nil && !inc.Scope.Windowed(), err
	}
	if (!from.IsZero() && last.Before(from)) || (!to.IsZero() && first.After(to)) {
		return 0, false, nil
	}
	var after *custos.EventCursor
	if !from.IsZero() {
		// Just before from, past every id: the listing starts at from.
		after = &custos.EventCursor{Time: from.Add(-time.Nanosecond)}
		for i := range after.ID {
			after.ID[i] = 0xff
		}
	}
	err = r.store.Events(ctx, t, s, after, func(e custos.StoredEvent) (bool, error) {
		if !to.IsZero() && e.Time.After(to) {
			return false, nil
		}
		events++
		return all, nil
	})
	return events, events > 0, err
}

// count returns the approximate number of subjects and event records of
// tenant t in the incident's scope.
func (r *Register) count(ctx context.Context, t custos.TenantID, inc *custos.Incident) (subjects, records int64, err error) {
	err = r.store.EachProfile(ctx, t, custos.SubjectID{}, func(p custos.StoredProfile) (bool, error) {
		n, ok, err := r.inScope(ctx, t, p.Subject, inc, true)
		if ok {
			subjects++
			records += n
		}
		return true, err
	})
	return subjects, records, err
}
