package subjects

import (
	"context"
	"fmt"

	"github.com/custos-dev/custos"
)

// Erasure's steps that change ingestion state run as writer jobs, so that
// they are ordered with the messages: a message enqueued after a step's
// acknowledgement sees its effect.

type tombRef struct {
	t custos.TenantID
	h custos.IdentifierHash
}

// loadTombstones fills the erased-identifier gate from the store.
func (w *writer) loadTombstones(ctx context.Context) error {
	return w.p.store.EachTombstone(ctx, func(t custos.TenantID, r custos.TombstoneRecord) error {
		w.tombs[tombRef{t, r.Hash}] = r.Tombstone
		return nil
	})
}

// erased reports whether a message carries an erased identifier and is
// dated before its erasure (a late retry), or the erasure suppressed it.
func (w *writer) erased(t custos.TenantID, m *prepared) bool {
	if len(w.tombs) == 0 {
		return false
	}
	for _, ids := range [][]hashedID{m.ids, m.prev} {
		for _, id := range ids {
			if ts, ok := w.tombs[tombRef{t, id.h}]; ok && (ts.Suppress || m.msg.Timestamp.Before(ts.ErasedAt)) {
				return true
			}
		}
	}
	return false
}

// Tombstone records erasure tombstones for identifier hashes, durably and
// in force at the gate when it returns.
func (p *Pipeline) Tombstone(ctx context.Context, t custos.TenantID, hashes []custos.IdentifierHash, ts custos.Tombstone) error {
	return p.control(ctx, t, func(w *writer, g *group) error {
		wr := g.write(t)
		for _, h := range hashes {
			w.tombs[tombRef{t, h}] = ts
			wr.Tombstones = append(wr.Tombstones, custos.TombstoneRecord{Hash: h, Tombstone: ts})
		}
		return nil
	})
}

// DeleteSubject deletes every record of a subject — events, profile, the
// index entries of its identifier hashes, its deduplication records and
// flags, consent records — and returns how many of each kind. Reading the event keys needs
// no key, so it works after the subject's key is shredded.
func (p *Pipeline) DeleteSubject(ctx context.Context, t custos.TenantID, s custos.SubjectID, hashes []custos.IdentifierHash) (map[string]int, error) {
	counts := map[string]int{}
	err := p.control(ctx, t, func(w *writer, g *group) error {
		// What this group has pending for the subject goes first, so the
		// listing below sees it and the deletion covers it.
		if err := w.flush(ctx, g); err != nil {
			return err
		}
		wr := g.write(t)
		err := w.p.store.Events(ctx, t, s, nil, func(e custos.StoredEvent) (bool, error) {
			wr.Unsee = append(wr.Unsee, e.ID)
			return true, nil
		})
		if err != nil {
			return fmt.Errorf("list events to delete: %w", err)
		}
		counts["events"] = len(wr.Unsee)
		counts["dedupe_records"] = len(wr.Unsee)
		if _, err := w.p.store.Profile(ctx, t, s); err == nil {
			counts["profiles"] = 1
		}
		wr.DeleteSubjects = append(wr.DeleteSubjects, s)
		cache := w.cache[t]
		for _, h := range hashes {
			if sub, err := w.p.store.Subject(ctx, t, h); err == nil && sub == s {
				wr.Unlinks = append(wr.Unlinks, h)
				counts["index_entries"]++
			}
			delete(cache, h)
		}
		delete(g.profiles, subjectRef{t, s})
		delete(w.consents, subjectRef{t, s})
		if err := w.p.store.Consents(ctx, t, s, func(custos.StoredConsent) (bool, error) {
			counts["consent_records"]++
			return true, nil
		}); err != nil {
			return fmt.Errorf("list consent records to delete: %w", err)
		}
		if _, ok := w.flags[subjectRef{t, s}]; ok {
			w.setFlags(g, t, s, custos.SubjectFlags{})
			counts["flags"] = 1
		}
		return nil
	})
	if err != nil {
		return nil, err // the writer may still be filling counts
	}
	return counts, nil
}
