package pebble

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/custos-dev/custos"
)

// Events lead with their day, not their subject (see the package
// documentation): new events, dated about now, all land in the newest
// bucket, so that a flush overlaps only that bucket's key range and older
// buckets settle in the bottom level untouched, whatever their size. A
// subject's events are one contiguous range per day; its day index says
// which days, so that reading or deleting them visits only those.

// subjectRef names one subject of one tenant.
type subjectRef struct {
	t custos.TenantID
	s custos.SubjectID
}

// maxDayCache bounds Store.days: past it the cache starts over, which only
// costs rewriting some index entries.
const maxDayCache = 1 << 20

// deleteSubject adds to b the deletion of every record of a subject: its
// events in each day bucket its index (or this Apply call, in added)
// names, and its whole subject range. It queues the subject for a purge,
// keeping the buckets of an earlier deletion not yet purged, so that the
// purge still finds their bytes.
func (s *Store) deleteSubject(b *pebble.Batch, ref subjectRef, added []day, purges *map[subjectRef][]day) error {
	days, err := s.subjectDays(s.db, ref)
	if err != nil {
		return err
	}
	days = union(days, added)
	for _, d := range days {
		k := bucketPrefix(nil, ref.t, d, ref.s)
		if err := b.DeleteRange(k, prefixEnd(k), nil); err != nil {
			return err
		}
	}
	k := subjectPrefix(nil, ref.t, ref.s)
	if err := b.DeleteRange(k, prefixEnd(k), nil); err != nil {
		return err
	}
	queued, ok := (*purges)[ref]
	if !ok {
		if queued, err = s.purgeDays(ref); err != nil {
			return err
		}
	}
	if *purges == nil {
		*purges = map[subjectRef][]day{}
	}
	days = union(days, queued)
	(*purges)[ref] = days
	return b.Set(purgeKey(nil, ref.t, ref.s), encodeDays(days), nil)
}

// bucket is one subject's events of one day.
type bucket struct {
	ref subjectRef
	d   day
}

// deletesSingleEvents reports whether w deletes events one by one, which
// can leave a day of a subject without events.
func deletesSingleEvents(w *custos.Write) bool {
	return len(w.DeleteEvents) > 0 || !w.ExpireBefore.IsZero()
}

// dropEmptiedDays deletes the day index entries of the buckets that b
// (an indexed batch, read through with its changes) leaves without
// events, and forgets the cached days of their subjects, so that a later
// event of that day records the day again.
func (s *Store) dropEmptiedDays(b *pebble.Batch, buckets map[bucket]bool) error {
	for bk := range buckets {
		lower := bucketPrefix(nil, bk.ref.t, bk.d, bk.ref.s)
		it, err := b.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: prefixEnd(lower)})
		if err != nil {
			return err
		}
		left := it.First()
		if err := it.Close(); err != nil {
			return err
		}
		if left {
			continue
		}
		if err := b.Delete(dayIndexKey(nil, bk.ref.t, bk.ref.s, bk.d), nil); err != nil {
			return err
		}
		delete(s.days, bk.ref)
	}
	return nil
}

// EventDays returns the days on which the subject has events, from its
// day index: no event is read (custos.EventDayReader). A store written
// before the index was kept exact may still list a day that retention
// emptied one event at a time; such a day is on or before the cutoff's
// day of an earlier sweep, so a sweep reads that subject's events
// (retention.Sweeper) rather than trusting the day.
func (s *Store) EventDays(_ context.Context, t custos.TenantID, sub custos.SubjectID) ([]time.Time, error) {
	days, err := s.subjectDays(s.db, subjectRef{t, sub})
	if err != nil {
		return nil, err
	}
	out := make([]time.Time, len(days))
	for i, d := range days {
		out[i] = d.start()
	}
	return out, nil
}

// union returns the sorted days in a or b, each once.
func union(a, b []day) []day {
	out := append(slices.Clone(a), b...)
	slices.Sort(out)
	return slices.Compact(out)
}

func encodeDays(days []day) []byte {
	b := make([]byte, 0, len(days)*dayLen)
	for _, d := range days {
		b = appendDay(b, d)
	}
	return b
}

func decodeDays(b []byte) ([]day, error) {
	if len(b)%dayLen != 0 {
		return nil, fmt.Errorf("corrupt purge record of %d bytes", len(b))
	}
	days := make([]day, 0, len(b)/dayLen)
	for i := 0; i < len(b); i += dayLen {
		days = append(days, decodeDay(b[i:]))
	}
	return days, nil
}

// purgeDays returns the day buckets of a subject queued for a purge.
func (s *Store) purgeDays(ref subjectRef) ([]day, error) {
	var days []day
	err := s.get(purgeKey(nil, ref.t, ref.s), func(v []byte) error {
		var err error
		days, err = decodeDays(v)
		return err
	})
	if errors.Is(err, custos.ErrNotFound) {
		return nil, nil
	}
	return days, err
}

// subjectDays returns the day buckets the subject's index names, in order.
func (s *Store) subjectDays(r pebble.Reader, ref subjectRef) ([]day, error) {
	it, err := r.NewIter(dayIndexBounds(ref))
	if err != nil {
		return nil, err
	}
	defer it.Close()
	return readDays(it)
}

func dayIndexBounds(ref subjectRef) *pebble.IterOptions {
	lower := append(subjectPrefix(nil, ref.t, ref.s), subDay)
	return &pebble.IterOptions{LowerBound: lower, UpperBound: prefixEnd(lower)}
}

// readDays reads the day index entries of an iterator bounded to one
// subject's index.
func readDays(it *pebble.Iterator) ([]day, error) {
	var days []day
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()
		if len(k) != dayIndexKeyLen {
			return nil, fmt.Errorf("corrupt day index key of %d bytes", len(k))
		}
		days = append(days, decodeDay(k[subjectPrefixLen+1:]))
	}
	return days, it.Error()
}

// subjectEvents opens one iterator — one consistent view — on the
// subject's day index and returns it with the days it names; the caller
// moves it from bucket to bucket with setBucket.
func (s *Store) subjectEvents(ctx context.Context, ref subjectRef) (*pebble.Iterator, []day, error) {
	it, err := s.db.NewIterWithContext(ctx, dayIndexBounds(ref))
	if err != nil {
		return nil, nil, err
	}
	days, err := readDays(it)
	if err != nil {
		it.Close()
		return nil, nil, err
	}
	return it, days, nil
}

func setBucket(it *pebble.Iterator, ref subjectRef, d day) {
	lower := bucketPrefix(nil, ref.t, d, ref.s)
	it.SetBounds(lower, prefixEnd(lower))
}

// Events calls fn for the subject's events after the cursor, in order:
// bucket by bucket, each in time and id order.
func (s *Store) Events(ctx context.Context, t custos.TenantID, sub custos.SubjectID, after *custos.EventCursor, fn func(custos.StoredEvent) (bool, error)) error {
	ref := subjectRef{t, sub}
	it, days, err := s.subjectEvents(ctx, ref)
	if err != nil {
		return err
	}
	defer it.Close()
	for _, d := range days {
		if after != nil && d < dayOf(after.Time) {
			continue
		}
		setBucket(it, ref, d)
		var ok bool
		if after != nil && d == dayOf(after.Time) {
			// Event keys all have one length, so the cursor key plus a
			// zero byte sorts right after it and before the next event.
			ok = it.SeekGE(append(eventKey(nil, t, sub, after.Time, after.ID), 0))
		} else {
			ok = it.First()
		}
		for ; ok; ok = it.Next() {
			es, at, id, valid := parseEventKey(it.Key())
			if !valid {
				return fmt.Errorf("corrupt event key of %d bytes", len(it.Key()))
			}
			v, err := it.ValueAndErr()
			if err != nil {
				return err
			}
			more, err := fn(custos.StoredEvent{Subject: es, Time: at, ID: id, Value: append([]byte(nil), v...)})
			if err != nil || !more {
				return err
			}
		}
		if err := it.Error(); err != nil {
			return err
		}
	}
	return nil
}

// EventSpan returns the times of the subject's first and last event. A
// bucket the index names may be empty (its events expired one by one),
// so it looks on to the next.
func (s *Store) EventSpan(ctx context.Context, t custos.TenantID, sub custos.SubjectID) (first, last time.Time, ok bool, err error) {
	ref := subjectRef{t, sub}
	it, days, err := s.subjectEvents(ctx, ref)
	if err != nil {
		return first, last, false, err
	}
	defer it.Close()
	for _, d := range days {
		setBucket(it, ref, d)
		if it.First() {
			_, first, _, _ = parseEventKey(it.Key())
			ok = true
			break
		}
	}
	if !ok {
		return first, last, false, it.Error()
	}
	for _, d := range slices.Backward(days) {
		setBucket(it, ref, d)
		if it.Last() {
			_, last, _, _ = parseEventKey(it.Key())
			break
		}
	}
	return first, last, true, it.Error()
}
