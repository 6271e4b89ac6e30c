package pebble

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/custos-dev/custos"
)

// A deleted subject's records are hidden at once (range deletions), and
// unreadable from the shred of its key on; the purge removes their bytes
// from the files. Its events lie in one small span per day bucket, each
// inside sstables shared with every other subject of that day, so each
// purge rewrites those tables: done one subject at a time, that is a
// rewrite of the tenant's recent history per erasure. So Apply queues
// every deleted subject (a kindPurge record naming its buckets), and a
// purge pass compacts all that are queued at once, at most PurgeInterval
// after the previous pass: the bound an erasure certificate states.

// DefaultPurgeInterval is the longest wait, by default, between a
// subject's deletion and the pass that purges its bytes.
const DefaultPurgeInterval = 10 * time.Minute

// purgeMarker is a key outside every tenant's range, written only to
// start new write-ahead logs during a purge.
var purgeMarker = []byte{0x00, 'p', 'u', 'r', 'g', 'e'}

// purger is the schedule of purge passes.
type purger struct {
	interval time.Duration
	now      func() time.Time
	// mu orders the passes and guards next.
	mu sync.Mutex
	// next is when the next pass starts; zero: at once.
	next time.Time
	// last is when the latest pass finished (zero: none since Open).
	last time.Time
}

// Purge compacts the subject's key spans at once — the subject range and
// its span in each day bucket it had events in — so that deleted bytes
// leave the live sstables, not only hidden by a tombstone, and retires
// every write-ahead log written before, so no file holds them any more.
// The purge pass (PurgeDue) does the same for every queued subject at once.
func (s *Store) Purge(ctx context.Context, t custos.TenantID, sub custos.SubjectID) error {
	s.purger.mu.Lock()
	defer s.purger.mu.Unlock()
	ref := subjectRef{t, sub}
	days, err := s.purgeDays(ref)
	if err != nil {
		return err
	}
	if err := s.compactSubject(ctx, ref, days); err != nil {
		return err
	}
	if err := cycleLogs(s.db, vfs.Default, s.dir, s.logDepth, purgeMarker); err != nil {
		return err
	}
	return s.dequeue([]subjectRef{ref}, [][]day{days})
}

// dequeue removes the purge records of subjects just purged, each only if
// it still names the buckets that were purged: a deletion of the subject
// meanwhile may have added buckets, and those still need a purge.
func (s *Store) dequeue(refs []subjectRef, days [][]day) error {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	b := s.db.NewBatch()
	defer b.Close()
	for i, ref := range refs {
		now, err := s.purgeDays(ref)
		if err != nil {
			return err
		}
		if slices.Equal(now, days[i]) {
			if err := b.Delete(purgeKey(nil, ref.t, ref.s), nil); err != nil {
				return err
			}
		}
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("clear purge queue: %w", err)
	}
	return nil
}

func (s *Store) compactSubject(ctx context.Context, ref subjectRef, days []day) error {
	for _, d := range days {
		k := bucketPrefix(nil, ref.t, d, ref.s)
		if err := s.db.Compact(ctx, k, prefixEnd(k), true); err != nil {
			return fmt.Errorf("compact event bucket: %w", err)
		}
	}
	k := subjectPrefix(nil, ref.t, ref.s)
	if err := s.db.Compact(ctx, k, prefixEnd(k), true); err != nil {
		return fmt.Errorf("compact subject span: %w", err)
	}
	return nil
}

// PurgeDueAt returns when the bytes of a subject deleted now will be
// gone: the start of the next purge pass. Purger must be running (or
// PurgeDue be called) for that to hold.
func (s *Store) PurgeDueAt() time.Time {
	s.purger.mu.Lock()
	defer s.purger.mu.Unlock()
	if s.purger.next.IsZero() {
		return s.purger.now().UTC()
	}
	return s.purger.next.UTC()
}

// PurgeDue runs a purge pass if one is due: it compacts the spans of
// every subject queued by a deletion, retires the write-ahead logs, and
// removes their queue records. It reports how many subjects it purged.
func (s *Store) PurgeDue(ctx context.Context) (int, error) {
	s.purger.mu.Lock()
	defer s.purger.mu.Unlock()
	now := s.purger.now()
	if now.Before(s.purger.next) {
		return 0, nil
	}
	s.purger.next = now.Add(s.purger.interval)
	var refs []subjectRef
	var all [][]day
	err := s.eachOfKind(ctx, kindPurge, func(t custos.TenantID, rest, v []byte) error {
		if len(rest) != 16 {
			return fmt.Errorf("corrupt purge key")
		}
		days, err := decodeDays(v)
		if err != nil {
			return err
		}
		refs = append(refs, subjectRef{t, custos.SubjectID(rest)})
		all = append(all, days)
		return nil
	})
	if err != nil || len(refs) == 0 {
		return 0, err
	}
	for i, ref := range refs {
		if err := s.compactSubject(ctx, ref, all[i]); err != nil {
			return 0, err
		}
	}
	if err := cycleLogs(s.db, vfs.Default, s.dir, s.logDepth, purgeMarker); err != nil {
		return 0, err
	}
	if err := s.dequeue(refs, all); err != nil {
		return 0, err
	}
	s.purger.last = s.purger.now()
	return len(refs), nil
}

// Purger runs a store's purge passes when due, until the context of Run
// ends.
type Purger struct {
	Store *Store
	// Report, if not nil, is told of each pass that purged something or
	// failed: how many subjects it purged and how long it took. A failed
	// pass is retried at the next.
	Report func(subjects int, took time.Duration, err error)
}

// Run runs the passes until ctx ends; it returns nil then.
func (p Purger) Run(ctx context.Context) error {
	for {
		start := time.Now()
		n, err := p.Store.PurgeDue(ctx)
		if (n > 0 || err != nil) && ctx.Err() == nil && p.Report != nil {
			p.Report(n, time.Since(start), err)
		}
		wait := time.Until(p.Store.PurgeDueAt())
		timer := time.NewTimer(max(wait, time.Second))
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case <-timer.C:
		}
	}
}
