package postgres

import (
	"context"
	"time"

	"github.com/custos-dev/custos"
)

var _ custos.PurgeScheduler = (*Store)(nil)

// purgeTables are the tables whose rows hold a subject's sealed data.
var purgeTables = []string{"events", "profiles", "consents", "sends"}

// PurgeDueAt returns when the bytes of a subject deleted now will be gone
// from the live tables: the start of the next purge pass, the next
// multiple of Options.PurgeInterval on the clock; zero when the store
// has no passes (Purge is then called for each erasure). A Purger must
// be running on some node for that to hold.
func (s *Store) PurgeDueAt() time.Time {
	if s.purgeInterval <= 0 {
		return time.Time{}
	}
	return nextPass(time.Now(), s.purgeInterval)
}

// nextPass is the first multiple of every strictly after now.
func nextPass(now time.Time, every time.Duration) time.Time {
	return now.UTC().Truncate(every).Add(every)
}

// PurgePass vacuums the tables of subjects' data once: the dead rows of
// every subject deleted before it started are removed from the live
// tables.
func (s *Store) PurgePass(ctx context.Context) error {
	return s.vacuum(ctx, purgeTables...)
}

// Purger runs a PostgreSQL store's purge passes, one cluster-wide: run it
// under a lease. It runs a pass when it starts — a node taking over from
// one that died catches up on a pass that may have been missed — and
// then at every multiple of the store's purge interval.
type Purger struct {
	Store *Store
	// Report, if not nil, is told of each pass: how long it took and its
	// error. A failed pass is retried at the next.
	Report func(took time.Duration, err error)
}

// Run runs the passes until ctx ends; it returns nil then.
func (p Purger) Run(ctx context.Context) error {
	if p.Store.purgeInterval <= 0 {
		<-ctx.Done()
		return nil
	}
	for {
		start := time.Now()
		err := p.Store.PurgePass(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if p.Report != nil {
			p.Report(time.Since(start), err)
		}
		// From the pass's start: a pass that outlasted the next instant
		// is followed at once by the one due then.
		timer := time.NewTimer(time.Until(nextPass(start, p.Store.purgeInterval)))
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case <-timer.C:
		}
	}
}
