package subjects

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/custos-dev/custos"
)

// On a shared store (PostgreSQL) a group's Apply is a round trip in which
// the database inserts the group's rows, and a writer that waited for it
// would leave the database idle while it composed the next group. So
// there the writer sends a group's writes and composes the next group
// while they commit: one group is in flight at a time, and the next is
// sent only once it has landed, so the database still applies groups one
// after the other, in order, and acknowledgements keep that order.
//
// The group composed meanwhile is composed as if the one in flight had
// committed: the caches already hold its links, consent states, gate and
// categories, and a profile or a message id it wrote is taken from it
// (flight.profile, flight.seen), not read from the store, which may not
// show it yet. Whatever needs the store itself — a flush inside a group
// (a merge reads the absorbed subject's events back), a control job — lands
// the flight first. When the store refuses the group in flight, the group
// composed on it is void too: both are composed again from their messages
// (settle), or, when the refusal is met inside a group, that group fails
// and commit composes it again.

// flight is a group whose writes are being applied.
type flight struct {
	g    *group
	ws   []*custos.Write
	done chan struct{}
	wait func() error
	err  error
}

// pipelined reports whether the writer sends a group and goes on.
func (w *writer) pipelined() bool { return w.shared != nil }

// launch sends the group's writes and returns at once.
func (w *writer) launch(g *group) {
	ws, err := w.collect(g)
	if err != nil {
		w.refusedLocally(g, err)
		w.p.acks <- g
		return
	}
	if len(ws) == 0 {
		w.p.acks <- g
		return
	}
	w.guard(ws)
	// The next group's guard must carry the generation this one leaves;
	// settle puts it back if the store refuses the group.
	w.applied(ws)
	f := &flight{g: g, ws: ws, done: make(chan struct{})}
	go func() {
		f.wait, f.err = w.p.store.Apply(context.Background(), ws)
		close(f.done)
	}()
	w.flight = f
}

// settle lands the group in flight, if any, and acknowledges it. When the
// store refused it, g (composed on what it would have written; nil when
// there is none) is void: their messages are composed again together
// into the group returned, to be committed by the caller. Else g is
// returned as it is.
func (w *writer) settle(g *group) *group {
	f := w.flight
	if f == nil {
		return g
	}
	w.flight = nil
	<-f.done
	if f.err == nil {
		f.g.wrote = true
		f.g.waits = append(f.g.waits, f.wait)
		w.p.acks <- f.g
		return g
	}
	for _, wr := range f.ws {
		if wr.Guard != nil && wr.Guard.Advance {
			w.shared.gen[wr.Tenant] = wr.Guard.Generation
		}
	}
	w.refused(context.Background(), f.err)
	w.failGroup(f.g, f.err)
	var jobs []*job
	start, waits := f.g.start, f.g.waits
	if f.g.recomposable() {
		jobs = f.g.jobs
	} else {
		w.p.acks <- f.g // answered 503
		start = time.Now()
		waits = nil
	}
	if g != nil {
		jobs = append(jobs, g.jobs...)
		waits = append(waits, g.waits...)
		if len(jobs) == len(g.jobs) {
			start = g.start
		}
	}
	if len(jobs) == 0 {
		return nil
	}
	if stale := new(custos.StaleError); errors.As(f.err, &stale) {
		if w.p.opts.OnStaleRetry != nil {
			w.p.opts.OnStaleRetry()
		}
		time.Sleep(rand.N(staleBackoff))
	}
	again := newGroup()
	again.start, again.waits = start, waits
	for _, j := range jobs {
		j.res, j.err = Result{}, nil
		w.handle(again, j)
	}
	return again
}

// settleWithin lands the flight before g, being composed, needs the store
// itself. If the flight was refused, g was composed on it so far and
// fails (commit composes it again when it can); the flight's own messages
// are composed again and committed first.
func (w *writer) settleWithin(g *group) {
	if w.flight == nil {
		return
	}
	refused := w.flight
	if again := w.settle(nil); again != nil || refused.err != nil {
		if again != nil {
			w.p.acks <- w.commit(again)
		}
		w.failGroup(g, refused.err)
	}
}

// profile returns the flight's view of a subject's profile, or nil.
func (f *flight) profile(ref subjectRef) *profileState {
	if f == nil {
		return nil
	}
	return f.g.profiles[ref]
}

// seen reports whether the flight stores a message id.
func (f *flight) seen(ref seenRef) bool {
	if f == nil {
		return false
	}
	_, ok := f.g.seen[ref]
	return ok
}
