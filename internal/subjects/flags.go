package subjects

import (
	"context"
	"errors"
	"fmt"

	"github.com/custos-dev/custos"
)

// The gate: the writer keeps every subject's flags in memory, so that the
// check on each message is one map lookup, and changes them only as jobs
// in its own order — a suppression acknowledged before a message is
// enqueued is always seen by it.

// loadFlags fills the gate from the store at start-up.
func (w *writer) loadFlags(ctx context.Context) error {
	return w.p.store.EachFlags(ctx, func(t custos.TenantID, r custos.FlagsRecord) error {
		w.flags[subjectRef{t, r.Subject}] = r.Flags
		return nil
	})
}

// gate reports why a subject's new messages are dropped ("" if they are not).
func (w *writer) gate(t custos.TenantID, s custos.SubjectID) string {
	f, ok := w.flags[subjectRef{t, s}]
	switch {
	case !ok:
		return ""
	case f.Suppressed:
		return "suppressed"
	case f.Restricted:
		return "restricted"
	}
	return ""
}

// gateMessage checks the subject a message resolved to and every subject
// any of its identifiers belongs to.
func (w *writer) gateMessage(ctx context.Context, t custos.TenantID, s custos.SubjectID, m *prepared) (string, error) {
	if len(w.flags) == 0 {
		return "", nil
	}
	if reason := w.gate(t, s); reason != "" {
		return reason, nil
	}
	for _, ids := range [][]hashedID{m.ids, m.prev} {
		for _, id := range ids {
			other, ok, err := w.lookup(ctx, t, id.h)
			if err != nil {
				return "", err
			}
			if ok && other != s {
				if reason := w.gate(t, other); reason != "" {
					return reason, nil
				}
			}
		}
	}
	return "", nil
}

// setFlags records a subject's flags in the group's write and the gate.
func (w *writer) setFlags(g *group, t custos.TenantID, s custos.SubjectID, f custos.SubjectFlags) {
	ref := subjectRef{t, s}
	if f == (custos.SubjectFlags{}) {
		delete(w.flags, ref)
	} else {
		w.flags[ref] = f
	}
	wr := g.write(t)
	wr.Flags = append(wr.Flags, custos.FlagsRecord{Subject: s, Flags: f})
}

// Flags returns a subject's flags as the gate holds them.
func (p *Pipeline) Flags(ctx context.Context, t custos.TenantID, s custos.SubjectID) (custos.SubjectFlags, error) {
	var f custos.SubjectFlags
	err := p.control(ctx, t, func(w *writer, g *group) error {
		f = w.flags[subjectRef{t, s}]
		return nil
	})
	if err != nil {
		return custos.SubjectFlags{}, err // the writer may still be in fn
	}
	return f, nil
}

// SetFlags changes the flags of the subject an identifier belongs to and
// returns once the change is durable and in force: every message enqueued
// after it sees it. A subject is created for an identifier not seen yet,
// so that a suppression made before a person's first event still holds.
func (p *Pipeline) SetFlags(ctx context.Context, t custos.TenantID, id custos.Identifier, change func(*custos.SubjectFlags)) (custos.SubjectID, error) {
	h, err := p.ring.HashIdentifier(t, id)
	if err != nil {
		return custos.SubjectID{}, err
	}
	id = id.Normalize()
	var subject custos.SubjectID
	err = p.control(ctx, t, func(w *writer, g *group) error {
		m := &prepared{msg: &custos.Message{ReceivedAt: p.opts.Now()}, ids: []hashedID{{id, h}}}
		s, _, err := w.resolve(ctx, g, t, m)
		if err != nil {
			return err
		}
		f := w.flags[subjectRef{t, s}]
		change(&f)
		w.setFlags(g, t, s, f)
		subject = s
		return nil
	})
	if err != nil {
		return custos.SubjectID{}, err // the writer may still be in fn
	}
	return subject, nil
}

// control runs fn in the writer, in order with ingestion, and waits until
// what it wrote is durable. If ctx ends first, control returns at once
// while the writer may still be running fn: callers read what fn wrote
// only when control returned nil.
func (p *Pipeline) control(ctx context.Context, t custos.TenantID, fn func(*writer, *group) error) error {
	j := &job{gone: ctx.Done(), tenant: t, control: fn, fences: custos.Fences(ctx), done: make(chan struct{})}
	if err := p.enqueue(ctx, j); err != nil {
		return err
	}
	select {
	case <-j.done:
		return j.err
	case <-ctx.Done():
		return &custos.Error{Code: custos.Unavailable, Message: "cancelled before the change was durable; retry", Err: ctx.Err()}
	}
}

// runControl runs a control job; its error is the job's. What a job made
// under a lease wrote (a flag, a tombstone, a deletion) is applied at
// once, with the group's writes before it, under the lease's fence: a
// shared store refuses it if the lease has a newer holder, so a stalled
// former holder's step cannot land late. A job that only read (a
// campaign's gate) costs no write.
func (w *writer) runControl(g *group, j *job) {
	fenced := len(j.fences) > 0 && w.shared != nil
	var touched, dirty int
	if fenced {
		touched, dirty = g.touched, g.dirtyProfiles()
	}
	err := w.ensureFresh(context.Background(), j.tenant)
	if err == nil {
		err = j.control(w, g)
	}
	if err == nil && fenced && (g.touched != touched || g.dirtyProfiles() > dirty) {
		ctx := context.Background()
		for _, f := range j.fences {
			ctx = custos.WithFence(ctx, f)
		}
		if err = w.flush(ctx, g); errors.Is(err, custos.ErrFenced) {
			// The job changed the gate in memory but not in the store:
			// the gate is read again from it. If that fails, the next
			// write is refused as stale and refreshes it then.
			w.refreshGate(context.Background(), j.tenant)
		}
	}
	if err != nil {
		var ce *custos.Error
		if !errors.As(err, &ce) {
			err = &custos.Error{Code: custos.Unavailable, Message: "the store failed; retry", Err: fmt.Errorf("control: %w", err)}
		}
		j.err = err
	}
}
