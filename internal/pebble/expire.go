package pebble

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/custos-dev/custos"
)

// Retention drops whole days. Events of one tenant and day are one key
// range, so a sweep removing what is older than a cutoff range-deletes
// each day before the cutoff's day (one tombstone each, found by seeking
// from day to day) and deletes one by one only the events of the
// cutoff's own day dated before it. Reading what expires (EventsBefore)
// visits those days only: the cost of a sweep is that of what it
// removes, not of what is stored.

// EventsBefore calls fn for the tenant's events dated before before, day
// by day, oldest first, without their values.
func (s *Store) EventsBefore(ctx context.Context, t custos.TenantID, before time.Time, fn func(custos.StoredEvent) (bool, error)) error {
	days, err := s.daysUpTo(ctx, t, dayOf(before))
	if err != nil {
		return err
	}
	it, err := s.db.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: []byte{prefixEvent}, UpperBound: []byte{prefixEvent + 1}})
	if err != nil {
		return err
	}
	defer it.Close()
	for _, d := range slices.Backward(days) {
		p := dayPrefix(nil, t, d)
		it.SetBounds(p, prefixEnd(p))
		for ok := it.First(); ok; ok = it.Next() {
			sub, at, id, valid := parseEventKey(it.Key())
			if !valid {
				return fmt.Errorf("corrupt event key of %d bytes", len(it.Key()))
			}
			if !at.Before(before) {
				continue
			}
			more, err := fn(custos.StoredEvent{Subject: sub, Time: at, ID: id})
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

// daysUpTo returns the days up to last (included) on which the tenant
// has events, newest first, seeking from day to day: older days follow
// newer ones in key order.
func (s *Store) daysUpTo(ctx context.Context, t custos.TenantID, last day) ([]day, error) {
	return s.tenantDaysFrom(ctx, t, eventDayPrefix(nil, last))
}

// tenantDaysFrom returns the days on which the tenant has events, newest
// first, from the event key lower (a day's prefix, or the events' own),
// seeking from day to day.
func (s *Store) tenantDaysFrom(ctx context.Context, t custos.TenantID, lower []byte) ([]day, error) {
	it, err := s.db.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: lower, UpperBound: []byte{prefixEvent + 1}})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var days []day
	for ok := it.First(); ok; {
		k := it.Key()
		if len(k) < 1+dayLen {
			return nil, fmt.Errorf("corrupt event key of %d bytes", len(k))
		}
		d := decodeEventDay(k[1:])
		p := dayPrefix(nil, t, d)
		if it.SeekGE(p) && bytes.HasPrefix(it.Key(), p) {
			days = append(days, d)
		}
		ok = it.SeekGE(prefixEnd(eventDayPrefix(nil, d)))
	}
	return days, it.Error()
}

// expire adds to b the deletion of the tenant's events dated before
// cutoff: a range deletion per day before the cutoff's day, and the
// events of that day before the cutoff one by one. It returns the
// cutoff's day: the writer's DeleteEvents of days before it are covered
// by the range deletions, and their day index entries go. Each subject
// whose events of the cutoff's day it deletes is told to thinned.
func (s *Store) expire(b *pebble.Batch, t custos.TenantID, cutoff time.Time, thinned func(custos.SubjectID, day)) (day, error) {
	last := dayOf(cutoff)
	days, err := s.daysUpTo(context.Background(), t, last)
	if err != nil {
		return last, err
	}
	for _, d := range days {
		p := dayPrefix(nil, t, d)
		if d < last {
			if err := b.DeleteRange(p, prefixEnd(p), nil); err != nil {
				return last, err
			}
			continue
		}
		// The cutoff's own day: only the events before the cutoff.
		it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: prefixEnd(p)})
		if err != nil {
			return last, err
		}
		for ok := it.First(); ok; ok = it.Next() {
			sub, at, _, valid := parseEventKey(it.Key())
			if valid && at.Before(cutoff) {
				if err := b.Delete(it.Key(), nil); err != nil {
					it.Close()
					return last, err
				}
				thinned(sub, d)
			}
		}
		if err := it.Close(); err != nil {
			return last, err
		}
	}
	return last, nil
}
