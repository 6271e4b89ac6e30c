package subjects

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-json-experiment/json"

	"github.com/custos-dev/custos"
)

// Retention (Art. 5(1)(e)) deletes through the writer, so that it is
// ordered with ingestion and merges: a merge that moves a subject's
// events under another, or an event arriving for a subject being
// expired, is either wholly before or wholly after the expiry of that
// subject, never interleaved with it.

// Expiry is one batch of a retention sweep.
type Expiry struct {
	// Subjects are the subjects to look at; Cutoff the instant before
	// which events are deleted.
	Subjects []custos.SubjectID
	Cutoff   time.Time
	// Removable are the subjects whose profile may be removed if no event
	// is left: those the sweep found no activity of within the period.
	Removable map[custos.SubjectID]bool
	// Before, if not zero, makes the batch drop the tenant's events dated
	// before it, oldest day first, in whole days of at most about
	// MaxEvents events (default DropBatch) together (Subjects and
	// Removable are not looked at): the store drops whole days at once,
	// and the batch reads only what it drops. A day with more events than
	// that is deleted event by event over several batches, and dropped
	// whole by the batch that reaches its end. ExpiryResult.More says that
	// events before Before are left for another batch.
	Before    time.Time
	MaxEvents int
	// Progress, if set, is called in the writer with the batch's counts
	// and returns the sweep progress to store atomically with the
	// deletions (custos.Write.Retention).
	Progress func(ExpiryResult) ([]byte, error)
}

// ExpiryResult counts what a batch deleted.
type ExpiryResult struct {
	Events   int
	Profiles int
	// More is true when a batch with Before stopped at a day boundary
	// before reaching Before.
	More bool
	// Subjects are, for a batch with Before, the subjects whose events it
	// dropped, each once, in no order: the only ones the drop may have
	// left without events.
	Subjects []custos.SubjectID
}

// DropBatch is about how many events one batch with Expiry.Before
// drops: whole days, so one day of more is dropped whole.
const DropBatch = 50_000

// Expire deletes the events dated before e.Cutoff of each subject in
// e.Subjects, and the whole subject — profile, identifier index entries,
// and later its key — when none is left, it is in e.Removable, and no
// standing flag (suppression, restriction, objection) must be kept to be
// honoured. The deletions and the progress e.Progress returns are one
// atomic write; Expire returns once it is durable.
func (p *Pipeline) Expire(ctx context.Context, t custos.TenantID, e Expiry) (ExpiryResult, error) {
	var res ExpiryResult
	err := p.control(ctx, t, func(w *writer, g *group) error {
		res = ExpiryResult{}
		// Pending writes of this group go first, so the listings below
		// see them.
		if err := w.flush(ctx, g); err != nil {
			return err
		}
		wr := g.write(t)
		if !e.Before.IsZero() {
			limit := e.MaxEvents
			if limit <= 0 {
				limit = DropBatch
			}
			if err := w.drop(ctx, wr, t, e.Before, limit, &res); err != nil {
				return err
			}
		}
		for _, s := range e.Subjects {
			left := false
			err := w.p.store.Events(ctx, t, s, nil, func(ev custos.StoredEvent) (bool, error) {
				if !ev.Time.Before(e.Cutoff) {
					left = true
					return false, nil
				}
				wr.DeleteEvents = append(wr.DeleteEvents, custos.StoredEvent{Subject: s, Time: ev.Time, ID: ev.ID})
				wr.Unsee = append(wr.Unsee, ev.ID)
				res.Events++
				return true, nil
			})
			if err != nil {
				return fmt.Errorf("list events to expire: %w", err)
			}
			if left || !e.Removable[s] {
				continue
			}
			if _, flagged := w.flags[subjectRef{t, s}]; flagged {
				continue
			}
			removed, err := w.removeSubject(ctx, g, t, s)
			if err != nil {
				return err
			}
			if removed {
				res.Profiles++
			}
		}
		if e.Progress != nil {
			b, err := e.Progress(res)
			if err != nil {
				return err
			}
			wr.Retention = b
		}
		return nil
	})
	if err != nil {
		// The writer may still be running fn (the caller gave up waiting):
		// res is its to write, not ours to read.
		return ExpiryResult{}, err
	}
	return res, nil
}

// drop expires the tenant's events dated before before, at most limit
// of them: the store drops the whole days listed (Write.ExpireBefore),
// and the events are named so that their deduplication records go too.
// When the limit falls inside a day, nothing is dropped whole: the
// events listed are deleted one by one, and a later batch, listing what
// is left, goes on.
func (w *writer) drop(ctx context.Context, wr *custos.Write, t custos.TenantID, before time.Time, limit int, res *ExpiryResult) error {
	const dayLen = 24 * time.Hour
	upTo, inDay := before, false
	var lastDay time.Time
	seen := map[custos.SubjectID]bool{}
	defer func() {
		for s := range seen {
			res.Subjects = append(res.Subjects, s)
		}
	}()
	err := w.p.store.EventsBefore(ctx, t, before, func(ev custos.StoredEvent) (bool, error) {
		d := ev.Time.UTC().Truncate(dayLen)
		if res.Events >= limit {
			if d.Equal(lastDay) {
				inDay = true
			} else {
				upTo = d
			}
			res.More = true
			return false, nil
		}
		lastDay = d
		seen[ev.Subject] = true
		wr.DeleteEvents = append(wr.DeleteEvents, custos.StoredEvent{Subject: ev.Subject, Time: ev.Time, ID: ev.ID})
		wr.Unsee = append(wr.Unsee, ev.ID)
		res.Events++
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("list events to expire: %w", err)
	}
	if !inDay {
		wr.ExpireBefore = upTo
	}
	return nil
}

// removeSubject deletes a subject with no events left: its profile, the
// index entries that still point at it, and — once that is durable — its
// key, so that backups of its data are unreadable too.
func (w *writer) removeSubject(ctx context.Context, g *group, t custos.TenantID, s custos.SubjectID) (bool, error) {
	sealed, err := w.p.store.Profile(ctx, t, s)
	if errors.Is(err, custos.ErrNotFound) {
		return false, nil // merged away or erased meanwhile
	}
	if err != nil {
		return false, err
	}
	wr := g.write(t)
	key, _, err := w.p.ring.SubjectKey(ctx, t, s, false)
	switch {
	case errors.Is(err, custos.ErrShredded) || errors.Is(err, custos.ErrNotFound):
		// Unreadable already: its index entries cannot be named, and
		// identifiers pointing at a subject without a key start afresh.
	case err != nil:
		return false, err
	default:
		plain, err := key.Open(nil, profileRecordKey, sealed)
		if err != nil {
			return false, fmt.Errorf("open profile to expire: %w", err)
		}
		var rec profileRecord
		if err := json.Unmarshal(plain, &rec); err != nil {
			return false, fmt.Errorf("decode profile to expire: %w", err)
		}
		cache := w.cache[t]
		for _, id := range rec.identifiers() {
			h, err := w.p.ring.HashIdentifier(t, id)
			if err != nil {
				return false, err
			}
			if sub, err := w.p.store.Subject(ctx, t, h); err == nil && sub == s {
				wr.Unlinks = append(wr.Unlinks, h)
			} else if err != nil && !errors.Is(err, custos.ErrNotFound) {
				return false, err
			}
			delete(cache, h)
		}
	}
	wr.DeleteSubjects = append(wr.DeleteSubjects, s)
	delete(g.profiles, subjectRef{t, s})
	g.afterDurable = append(g.afterDurable, func() error { return w.p.ring.Shred(context.Background(), t, s) })
	return true, nil
}
