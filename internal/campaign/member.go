package campaign

import (
	"context"
	"errors"
	"time"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/consent"
	"github.com/custos-dev/custos/internal/ingest"
)

// member is one subject as an audience walk reads it, in one pass over
// its records: profile, consent state, and what the send records say.
type member struct {
	profile *custos.Profile
	state   consent.State
	today   int                // campaign messages received this UTC day, other campaigns'
	own     *custos.StoredSend // this campaign's record, from a run before a restart
}

// eachMember walks the tenant's subjects after the cursor, opening each
// with its key; subjects erased meanwhile are skipped.
func (e *Engine) eachMember(ctx context.Context, t custos.TenantID, c *custos.Campaign, after custos.SubjectID, now time.Time, fn func(*member) (bool, error)) error {
	start := dayStart(now)
	since := start
	if !c.Progress.StartedAt.IsZero() && c.Progress.StartedAt.Before(since) {
		since = c.Progress.StartedAt
	}
	var hist []custos.ConsentRecord
	return e.d.Store.EachAudience(ctx, t, after, since, func(r *custos.SubjectRecords) (bool, error) {
		k, _, err := e.d.Keys.SubjectKey(ctx, t, r.Profile.Subject, false)
		if errors.Is(err, custos.ErrNotFound) || errors.Is(err, custos.ErrShredded) {
			return true, nil
		}
		if err != nil {
			return false, err
		}
		p, err := ingest.OpenProfile(k, r.Profile)
		if errors.Is(err, custos.ErrShredded) {
			return true, nil
		}
		if err != nil {
			return false, err
		}
		m := &member{profile: p}
		if len(r.Consents) > 0 {
			hist = hist[:0]
			for _, sc := range r.Consents {
				rec, err := consent.Open(k, sc)
				if err != nil {
					return false, err
				}
				hist = append(hist, rec)
			}
			m.state = consent.NewState(hist)
		}
		for i, s := range r.Sends {
			switch {
			case s.Campaign == c.ID:
				own := r.Sends[i]
				m.own = &own
			case !s.Time.Before(start):
				m.today++
			}
		}
		return fn(m)
	})
}
