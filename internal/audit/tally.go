package audit

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"time"

	"github.com/custos-dev/custos"
)

// IngestCounts are the messages of one tenant over one interval.
type IngestCounts struct {
	Accepted   int64 `json:"accepted"`
	Duplicates int64 `json:"duplicates"`
	Rejected   int64 `json:"rejected"`
	// Consents counts consent records taken from the messages (source sdk);
	// grants and withdrawals through the API are audited one by one.
	Consents int64 `json:"consents,omitempty"`
}

// Tally counts ingestion per tenant and records it in the audit log in
// aggregate — one "ingest.summary" entry per tenant per interval — since
// an entry per event would dwarf the data it audits.
type Tally struct {
	log    *Log
	o      TallyOptions
	mu     sync.Mutex
	counts map[custos.TenantID]IngestCounts
}

// TallyOptions tune a Tally's Run. The zero value is usable.
type TallyOptions struct {
	// Every is how often Run records the counts (default one minute).
	Every time.Duration
	// OnError, if set, is told of a periodic recording that failed (its
	// counts are kept for the next).
	OnError func(error)
}

// NewTally returns a Tally recording into l.
func NewTally(l *Log, o TallyOptions) *Tally {
	if o.Every <= 0 {
		o.Every = time.Minute
	}
	return &Tally{log: l, o: o, counts: map[custos.TenantID]IngestCounts{}}
}

// Add counts one request's outcome.
func (t *Tally) Add(tenant custos.TenantID, accepted, duplicates, rejected int) {
	if accepted == 0 && duplicates == 0 && rejected == 0 {
		return
	}
	t.mu.Lock()
	c := t.counts[tenant]
	c.Accepted += int64(accepted)
	c.Duplicates += int64(duplicates)
	c.Rejected += int64(rejected)
	t.counts[tenant] = c
	t.mu.Unlock()
}

// AddConsents counts consent records taken from one request's messages.
func (t *Tally) AddConsents(tenant custos.TenantID, n int) {
	if n == 0 {
		return
	}
	t.mu.Lock()
	c := t.counts[tenant]
	c.Consents += int64(n)
	t.counts[tenant] = c
	t.mu.Unlock()
}

// Flush records what was counted since the last flush. Counts that could
// not be recorded are kept for the next flush.
func (t *Tally) Flush(ctx context.Context) error {
	t.mu.Lock()
	pending := t.counts
	t.counts = map[custos.TenantID]IngestCounts{}
	t.mu.Unlock()
	var first error
	for tenant, c := range pending {
		_, err := t.log.Record(ctx, tenant, Entry{Actor: ActorIngest, Action: "ingest.summary", Details: c})
		if err != nil {
			if first == nil {
				first = err
			}
			t.mu.Lock()
			prev := t.counts[tenant]
			prev.Accepted += c.Accepted
			prev.Duplicates += c.Duplicates
			prev.Rejected += c.Rejected
			prev.Consents += c.Consents
			t.counts[tenant] = prev
			t.mu.Unlock()
		}
	}
	return first
}

// Run records the counts every TallyOptions.Every until ctx is done,
// then once more: the error of that last recording is Run's.
func (t *Tally) Run(ctx context.Context) error {
	tick := time.NewTicker(t.o.Every)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			if err := t.Flush(ctx); err != nil && t.o.OnError != nil {
				t.o.OnError(err)
			}
		case <-ctx.Done():
			if err := t.Flush(context.WithoutCancel(ctx)); err != nil {
				return fmt.Errorf("record the last ingestion counts: %w", err)
			}
			return nil
		}
	}
}

// Pending returns the counts not yet recorded (for tests and metrics).
func (t *Tally) Pending() map[custos.TenantID]IngestCounts {
	t.mu.Lock()
	defer t.mu.Unlock()
	return maps.Clone(t.counts)
}
