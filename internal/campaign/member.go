package campaign

import (
	"bytes"
	"context"
	"errors"
	"runtime"
	"sync"
	"time"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/consent"
	"github.com/custos-dev/custos/internal/keyring"
	"github.com/custos-dev/custos/internal/subjects"
)

// member is one subject as an audience walk reads it, in one pass over
// its records: profile, consent state, and what the send records say.
type member struct {
	profile *custos.Profile
	state   consent.State
	today   int                // campaign messages received this UTC day, other campaigns'
	own     *custos.StoredSend // this campaign's record, from a run before a restart
}

// memberBatch is how many subjects an audience walk reads before it opens
// them: their keys come in one ordered pass over the key store, and the
// opening is shared among the cores while the walk reads the next batch.
const memberBatch = 512

// eachMember walks the tenant's subjects after the cursor, opening each
// with its key, and calls fn in subject order; subjects erased meanwhile
// are skipped.
func (e *Engine) eachMember(ctx context.Context, t custos.TenantID, c *custos.Campaign, after custos.SubjectID, now time.Time, fn func(*member) (bool, error)) error {
	start := dayStart(now)
	since := start
	if !c.Progress.StartedAt.IsZero() && c.Progress.StartedAt.Before(since) {
		since = c.Progress.StartedAt
	}
	ctx, stop := context.WithCancel(ctx)
	defer stop()

	// The walk reads batches ahead on its own goroutine; this one opens
	// them and calls fn.
	batches := make(chan []custos.SubjectRecords, 1)
	walkErr := make(chan error, 1)
	go func() {
		defer close(batches)
		batch := make([]custos.SubjectRecords, 0, memberBatch)
		send := func() bool {
			select {
			case batches <- batch:
				batch = make([]custos.SubjectRecords, 0, memberBatch)
				return true
			case <-ctx.Done():
				return false
			}
		}
		err := e.d.Store.EachAudience(ctx, t, after, since, func(r *custos.SubjectRecords) (bool, error) {
			batch = append(batch, copyRecords(r))
			if len(batch) < memberBatch {
				return true, nil
			}
			return send(), nil
		})
		if err == nil && len(batch) > 0 {
			send()
		}
		walkErr <- err
	}()

	members := make([]*member, memberBatch)
	errs := make([]error, memberBatch)
	keys := make(map[custos.SubjectID]*keyring.SubjectKey, memberBatch)
	workers := min(runtime.GOMAXPROCS(0), 8)
	for batch := range batches {
		clear(keys)
		err := e.d.Keys.SubjectKeys(ctx, t, batch[0].Profile.Subject, batch[len(batch)-1].Profile.Subject, func(k *keyring.SubjectKey) (bool, error) {
			keys[k.Subject()] = k
			return true, nil
		})
		if err != nil {
			return err
		}
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				var hist []custos.ConsentRecord
				for i := w; i < len(batch); i += workers {
					members[i], errs[i] = openMember(keys[batch[i].Profile.Subject], &batch[i], c.ID, start, &hist)
				}
			})
		}
		wg.Wait()
		for i := range batch {
			if errs[i] != nil {
				return errs[i]
			}
			if members[i] == nil {
				continue
			}
			if more, err := fn(members[i]); err != nil || !more {
				return err // the deferred stop ends the walk
			}
		}
	}
	return <-walkErr
}

// openMember opens one subject's records with its key; nil when the
// subject has no key any more (erased since).
func openMember(k *keyring.SubjectKey, r *custos.SubjectRecords, campaignID string, dayStart time.Time, hist *[]custos.ConsentRecord) (*member, error) {
	if k == nil {
		return nil, nil
	}
	p, err := subjects.OpenProfile(k, r.Profile)
	if errors.Is(err, custos.ErrShredded) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	m := &member{profile: p}
	if len(r.Consents) > 0 {
		*hist = (*hist)[:0]
		for _, sc := range r.Consents {
			rec, err := consent.Open(k, sc)
			if err != nil {
				return nil, err
			}
			*hist = append(*hist, rec)
		}
		m.state = consent.NewState(*hist)
	}
	for i, s := range r.Sends {
		switch {
		case s.Campaign == campaignID:
			own := r.Sends[i]
			m.own = &own
		case !s.Time.Before(dayStart):
			m.today++
		}
	}
	return m, nil
}

// copyRecords copies what a store walk lends for one call.
func copyRecords(r *custos.SubjectRecords) custos.SubjectRecords {
	out := custos.SubjectRecords{Profile: r.Profile}
	out.Profile.Value = bytes.Clone(r.Profile.Value)
	out.Consents = make([]custos.StoredConsent, len(r.Consents))
	for i, c := range r.Consents {
		c.Value = bytes.Clone(c.Value)
		out.Consents[i] = c
	}
	out.Sends = make([]custos.StoredSend, len(r.Sends))
	for i, sd := range r.Sends {
		sd.Value = bytes.Clone(sd.Value)
		out.Sends[i] = sd
	}
	return out
}
