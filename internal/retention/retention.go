// Package retention enforces storage limitation (GDPR Art. 5(1)(e)): a
// sweeper that, at least hourly, deletes every tenant's events older than
// the tenant's retention period, and the profiles of subjects left with
// no events and no activity within the period.
//
// A sweep first drops the tenant's events dated before the cutoff, whole
// days at a time (subjects.Expiry.Before): the store keeps events by
// day, so this costs what it removes, not what is stored. It then visits
// the subjects whose events it dropped, in batches, to remove the
// profiles of those left with no events: that too costs what was
// removed. Subjects without dropped events can also be due — one kept
// earlier for its recent activity, once that activity is older than the
// period, or one whose only events were refused or never stored — so
// at most every FullWalkEvery (a day) and whenever it resumes an
// interrupted sweep (whose list of subjects was in memory), a sweep walks
// all the tenant's subjects instead (removing also any event dated before
// the cutoff that arrived since). Each batch is deleted
// through the ingest writer (subjects.Pipeline.Expire), in order with
// ingestion and merges, and the sweep's progress — the cutoff, the last
// subject done, the counts so far — is stored in the same atomic write, so
// a sweep interrupted by a crash resumes after the last batch done, with
// the same cutoff. Each finished sweep leaves one audit entry per tenant
// with its counts.
package retention

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/audit"
	"github.com/custos-dev/custos/internal/subjects"
)

// Activity tells when a subject last showed activity other than events —
// a data-subject request, a consent grant or withdrawal — so that its
// profile is kept while such activity is within the retention period.
// The zero time means none.
type Activity func(ctx context.Context, t custos.TenantID, s custos.SubjectID) (lastActivity time.Time, err error)

// Expirer deletes in order with ingestion (subjects.Pipeline satisfies it).
type Expirer interface {
	Expire(ctx context.Context, t custos.TenantID, e subjects.Expiry) (subjects.ExpiryResult, error)
}

// Store is what the sweeper reads: subjects, their event spans and the
// sweep's progress.
type Store interface {
	EachProfile(ctx context.Context, t custos.TenantID, after custos.SubjectID, fn func(custos.StoredProfile) (bool, error)) error
	EventSpan(ctx context.Context, t custos.TenantID, s custos.SubjectID) (first, last time.Time, ok bool, err error)
	RetentionProgress(ctx context.Context, t custos.TenantID) ([]byte, error)
}

// Options configure a Sweeper.
type Options struct {
	Store   Store
	Expirer Expirer
	Audit   *audit.Log
	// Tenants returns the tenants to sweep: those of this node's region.
	Tenants func() []*custos.Tenant
	// Activity are asked about each subject left with no events; any
	// activity within the period keeps its profile.
	Activity []Activity
	// Interval between sweeps (default and most one hour).
	Interval time.Duration
	// FullWalkEvery is how often a sweep walks all of a tenant's
	// subjects rather than those whose events it dropped (default and
	// most a day).
	FullWalkEvery time.Duration
	// BatchSize is how many subjects one write handles (default 256).
	BatchSize int
	// OnSweep, if set, is told what each finished sweep of a tenant
	// removed (for metrics).
	OnSweep func(t custos.TenantID, r Result)
	Log     *slog.Logger
	Now     func() time.Time
}

// Result is what one sweep of one tenant removed.
type Result struct {
	Cutoff   time.Time `json:"cutoff"`
	Events   int       `json:"events_removed"`
	Profiles int       `json:"profiles_removed"`
	Resumed  bool      `json:"resumed"`
	// Visited is how many subjects the sweep looked at after the drop,
	// and FullWalk whether it walked them all.
	Visited  int  `json:"subjects_visited"`
	FullWalk bool `json:"full_walk"`
}

// Sweeper runs retention sweeps. Create it with New.
type Sweeper struct {
	o Options
	// afterBatch, if set, is called after each batch; an error stops the
	// sweep there, as a crash would (tests only).
	afterBatch func() error
}

// New returns a Sweeper.
func New(o Options) *Sweeper {
	if o.Interval <= 0 || o.Interval > time.Hour {
		o.Interval = time.Hour
	}
	if o.FullWalkEvery <= 0 || o.FullWalkEvery > 24*time.Hour {
		o.FullWalkEvery = 24 * time.Hour
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 256
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return &Sweeper{o: o}
}

// Run sweeps every tenant now and then every Interval, until ctx ends; a
// tenant whose sweep fails is logged and retried at the next.
func (s *Sweeper) Run(ctx context.Context) error {
	tick := time.NewTicker(s.o.Interval)
	defer tick.Stop()
	for {
		s.SweepAll(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// SweepAll sweeps every tenant once; a tenant that fails is logged and
// retried at the next sweep (its progress is kept).
func (s *Sweeper) SweepAll(ctx context.Context) {
	for _, t := range s.o.Tenants() {
		if ctx.Err() != nil {
			return
		}
		if _, err := s.Sweep(ctx, t); err != nil && ctx.Err() == nil {
			s.o.Log.Error("retention sweep", "tenant", t.ID, "err", err)
		}
	}
}

// progress is the stored state of a tenant's sweep. It holds subject ids
// (random) and counts, no personal data.
type progress struct {
	Cutoff    time.Time        `json:"cutoff"`
	StartedAt time.Time        `json:"started_at"`
	After     custos.SubjectID `json:"after"`
	Events    int              `json:"events_removed"`
	Profiles  int              `json:"profiles_removed"`
	Resumed   bool             `json:"resumed,omitempty"`
	// Dropped is true once the events before the cutoff are dropped.
	Dropped    bool      `json:"dropped,omitempty"`
	Done       bool      `json:"done"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
	// FullWalk is true when this sweep walks all subjects; FullWalkAt is
	// when the last full walk started (carried from sweep to sweep).
	FullWalk   bool      `json:"full_walk,omitempty"`
	FullWalkAt time.Time `json:"full_walk_at,omitzero"`
	Visited    int       `json:"subjects_visited,omitempty"`
}

// Sweep runs one sweep of tenant t to its end, resuming one that was
// interrupted, and returns what it removed.
func (s *Sweeper) Sweep(ctx context.Context, t *custos.Tenant) (Result, error) {
	pr, err := s.load(ctx, t.ID)
	if err != nil {
		return Result{}, err
	}
	now := s.o.Now().UTC()
	if pr == nil || pr.Done {
		days := t.Settings.RetentionDays()
		next := &progress{Cutoff: now.AddDate(0, 0, -days), StartedAt: now}
		if pr != nil {
			next.FullWalkAt = pr.FullWalkAt
		}
		pr = next
		if now.Sub(pr.FullWalkAt) >= s.o.FullWalkEvery {
			pr.FullWalk, pr.FullWalkAt = true, now
		}
	} else {
		pr.Resumed = true
		if !pr.FullWalk {
			// The subjects of the events dropped before the interruption
			// were in memory: walk them all, from the start.
			pr.FullWalk, pr.FullWalkAt, pr.After = true, now, custos.SubjectID{}
		}
	}
	start := time.Now()
	// The subjects whose events this sweep drops (a targeted walk's list).
	dropped := map[custos.SubjectID]bool{}
	for !pr.Dropped {
		next := *pr
		r, err := s.o.Expirer.Expire(ctx, t.ID, subjects.Expiry{Before: pr.Cutoff,
			Progress: func(r subjects.ExpiryResult) ([]byte, error) {
				next.Events += r.Events
				next.Dropped = !r.More
				return json.Marshal(next)
			}})
		if err != nil {
			return Result{}, fmt.Errorf("expire: %w", err)
		}
		for _, sub := range r.Subjects {
			dropped[sub] = true
		}
		pr = &next
		if s.afterBatch != nil {
			if err := s.afterBatch(); err != nil {
				return Result{}, err
			}
		}
	}
	dropTook := time.Since(start)
	var targets []custos.SubjectID // sorted, for a targeted walk
	if !pr.FullWalk {
		for sub := range dropped {
			targets = append(targets, sub)
		}
		slices.SortFunc(targets, func(a, b custos.SubjectID) int { return bytes.Compare(a[:], b[:]) })
	}
	for {
		var batch []custos.SubjectID
		if pr.FullWalk {
			if batch, err = s.batch(ctx, t.ID, pr.After); err != nil {
				return Result{}, err
			}
		} else {
			batch = targets[:min(s.o.BatchSize, len(targets))]
			targets = targets[len(batch):]
		}
		if len(batch) == 0 {
			break
		}
		look, removable, err := s.judge(ctx, t.ID, batch, pr.Cutoff)
		if err != nil {
			return Result{}, err
		}
		next := *pr
		next.After = batch[len(batch)-1]
		next.Visited += len(batch)
		_, err = s.o.Expirer.Expire(ctx, t.ID, subjects.Expiry{Subjects: look, Cutoff: pr.Cutoff, Removable: removable,
			Progress: func(r subjects.ExpiryResult) ([]byte, error) {
				next.Events += r.Events
				next.Profiles += r.Profiles
				return json.Marshal(next)
			}})
		if err != nil {
			return Result{}, fmt.Errorf("expire: %w", err)
		}
		pr = &next
		if s.afterBatch != nil {
			if err := s.afterBatch(); err != nil {
				return Result{}, err
			}
		}
	}
	res := Result{Cutoff: pr.Cutoff, Events: pr.Events, Profiles: pr.Profiles, Resumed: pr.Resumed, Visited: pr.Visited, FullWalk: pr.FullWalk}
	// The audit entry first: a crash before the progress is marked done
	// repeats the (by then empty) tail of the sweep and its entry, rather
	// than losing the entry.
	if _, err := s.o.Audit.Record(ctx, t.ID, audit.Entry{Actor: audit.ActorRetention, Action: "retention.sweep",
		Details: map[string]any{"retention_days": t.Settings.RetentionDays(), "cutoff": pr.Cutoff.Format(time.RFC3339),
			"events_removed": pr.Events, "profiles_removed": pr.Profiles, "resumed": pr.Resumed,
			"subjects_visited": pr.Visited, "full_walk": pr.FullWalk}}); err != nil {
		return Result{}, err
	}
	pr.Done, pr.FinishedAt = true, s.o.Now().UTC()
	done, err := json.Marshal(pr)
	if err != nil {
		return Result{}, err
	}
	if _, err := s.o.Expirer.Expire(ctx, t.ID, subjects.Expiry{Progress: func(subjects.ExpiryResult) ([]byte, error) { return done, nil }}); err != nil {
		return Result{}, fmt.Errorf("record the finished sweep: %w", err)
	}
	s.o.Log.Info("retention sweep", "tenant", t.ID, "cutoff", pr.Cutoff, "events_removed", pr.Events, "profiles_removed", pr.Profiles,
		"resumed", pr.Resumed, "subjects_visited", pr.Visited, "full_walk", pr.FullWalk,
		"drop_took", dropTook.Round(time.Millisecond), "took", time.Since(start).Round(time.Millisecond))
	if s.o.OnSweep != nil {
		s.o.OnSweep(t.ID, res)
	}
	return res, nil
}

func (s *Sweeper) load(ctx context.Context, t custos.TenantID) (*progress, error) {
	b, err := s.o.Store.RetentionProgress(ctx, t)
	if errors.Is(err, custos.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var pr progress
	if err := json.Unmarshal(b, &pr); err != nil {
		return nil, fmt.Errorf("decode retention progress: %w", err)
	}
	return &pr, nil
}

// batch returns up to BatchSize subjects after after.
func (s *Sweeper) batch(ctx context.Context, t custos.TenantID, after custos.SubjectID) ([]custos.SubjectID, error) {
	var out []custos.SubjectID
	err := s.o.Store.EachProfile(ctx, t, after, func(p custos.StoredProfile) (bool, error) {
		out = append(out, p.Subject)
		return len(out) < s.o.BatchSize, nil
	})
	return out, err
}

// judge returns the subjects of batch the writer must look at — those
// with an event dated before the cutoff (one that arrived after the
// day drop), and those that may be removable — and, of them, the
// removable ones: their events all predate the cutoff and they show no
// other activity since, so their profiles go once their events are
// deleted. The writer checks again that no event is left, so one
// arriving meanwhile keeps the profile. The other subjects, whose events
// all fall within the period, are not sent to the writer at all: reading
// their events there would hold ingestion up for nothing (on a shared
// database, one round trip per subject).
func (s *Sweeper) judge(ctx context.Context, t custos.TenantID, batch []custos.SubjectID, cutoff time.Time) ([]custos.SubjectID, map[custos.SubjectID]bool, error) {
	var look []custos.SubjectID
	out := map[custos.SubjectID]bool{}
subjects:
	for _, sub := range batch {
		first, last, ok, err := s.span(ctx, t, sub, cutoff)
		if err != nil {
			return nil, nil, err
		}
		expired := ok && first.Before(cutoff)
		if expired {
			look = append(look, sub)
		}
		if ok && !last.Before(cutoff) {
			continue
		}
		for _, act := range s.o.Activity {
			at, err := act(ctx, t, sub)
			if err != nil {
				return nil, nil, err
			}
			if !at.Before(cutoff) {
				continue subjects
			}
		}
		out[sub] = true
		if !expired {
			look = append(look, sub)
		}
	}
	return look, out, nil
}

// span returns what judge needs of a subject's events: whether it has
// any, and when the first and the last were, exact where the cutoff
// makes it matter. A store that indexes events by day
// (custos.EventDayReader) answers from the index alone for a subject
// without days (no events) and for one whose days all come after the
// cutoff's (nothing expired, and events within the period), giving the
// days for the times; only subjects with a day at or before the
// cutoff's have their events read. On a store with events of many days
// this keeps the daily walk of every subject from reading every
// subject's oldest and newest events.
func (s *Sweeper) span(ctx context.Context, t custos.TenantID, sub custos.SubjectID, cutoff time.Time) (first, last time.Time, ok bool, err error) {
	if dr, indexed := s.o.Store.(custos.EventDayReader); indexed {
		days, err := dr.EventDays(ctx, t, sub)
		if err != nil {
			return first, last, false, err
		}
		if len(days) == 0 {
			return first, last, false, nil
		}
		if days[0].After(cutoff.UTC().Truncate(24 * time.Hour)) {
			return days[0], days[len(days)-1], true, nil
		}
	}
	return s.o.Store.EventSpan(ctx, t, sub)
}

// RequestActivity returns an Activity that reports the latest data-subject
// request about a subject: when it was received or last changed.
func RequestActivity(st custos.RequestStore) Activity {
	return func(ctx context.Context, t custos.TenantID, s custos.SubjectID) (time.Time, error) {
		var last time.Time
		err := st.Requests(ctx, t, func(r *custos.Request) bool {
			if r.Subject == s {
				for _, at := range []time.Time{r.ReceivedAt, r.UpdatedAt, r.CompletedAt} {
					if at.After(last) {
						last = at
					}
				}
			}
			return true
		})
		return last, err
	}
}
