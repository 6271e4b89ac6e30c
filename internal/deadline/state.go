package deadline

import (
	"strings"
	"time"

	"github.com/custos-dev/custos"
)

// MaxExtensionMonths is how many months, in total, Art. 12(3) lets a
// controller add to the one-month deadline of a request.
const MaxExtensionMonths = 2

// State is the deadline of one request: when it was received, its
// original due date, its current due date and the months it has been
// extended by. The zero State belongs to no request; use New.
type State struct {
	Received       time.Time
	OriginalDue    time.Time
	Due            time.Time
	ExtendedMonths int
}

// New returns the deadline of a request received at received: due one
// calendar month later (see Due), not extended.
func New(received time.Time) State {
	due := Due(received)
	return State{Received: received, OriginalDue: due, Due: due}
}

// Extend returns s extended by months (1 or 2) at now, for reason. It
// enforces Art. 12(3): extensions total at most two months over the life
// of the request, and each must be asked for strictly before the original
// due date, since the person must be told of it within the first month.
// The reason must not be blank; recording it (and telling the person) is
// the caller's job. A broken rule is reported as a *custos.Error, Invalid
// for bad arguments and Conflict for a request that no longer allows it,
// whose Message names the rule; s is not changed.
//
// Extension months count from the date received, not from the current due
// date: the new due date is AddMonths(Received, 1+ExtendedMonths). So a
// request received on 31 January, due on 28 February, is due on 31 March
// once extended by one month, not on 28 March, which adding a month to
// 28 February would give; and extended by one more, on 30 April, the same
// date as two months granted at once. How the months were granted, one by
// one or together, cannot change the date.
func (s State) Extend(now time.Time, months int, reason string) (State, error) {
	if months < 1 || months > MaxExtensionMonths {
		return s, custos.Errorf(custos.Invalid, "months must be 1 or 2, not %d", months)
	}
	if strings.TrimSpace(reason) == "" {
		return s, custos.Errorf(custos.Invalid, "a reason is required to extend a deadline")
	}
	if !now.Before(s.OriginalDue) {
		return s, custos.Errorf(custos.Conflict, "an extension must be asked for before the original due date %s; it is %s",
			s.OriginalDue.Format(time.RFC3339), now.In(s.OriginalDue.Location()).Format(time.RFC3339))
	}
	if s.ExtendedMonths+months > MaxExtensionMonths {
		return s, custos.Errorf(custos.Conflict, "extensions total at most %d months; %d already granted",
			MaxExtensionMonths, s.ExtendedMonths)
	}
	s.ExtendedMonths += months
	s.Due = AddMonths(s.Received, 1+s.ExtendedMonths)
	return s, nil
}

// Overdue reports whether the request is overdue at now: whether now is
// after its due date. At the due date itself it is not yet overdue.
func (s State) Overdue(now time.Time) bool {
	return now.After(s.Due)
}
