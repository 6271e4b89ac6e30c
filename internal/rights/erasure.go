package rights

import (
	"context"
	"errors"
	"fmt"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/certificate"
)

// The erasure steps, in order. Each is durable and recorded in the request
// (and the audit chain) before the next begins, so a crash at any point
// resumes on restart after the last recorded step and finishes.
const (
	stepResolved   = "resolved"   // the subject and its identifier hashes are known
	stepTombstoned = "tombstoned" // late events for its identifiers are dropped
	stepShredded   = "shredded"   // its key is destroyed: nothing can be read, in any backup
	stepDeleted    = "deleted"    // every record is deleted
	stepPurged     = "purged"     // the bytes are compacted out of the files
	stepVerified   = "verified"   // no lookup finds anything
	stepCertified  = "certified"  // the signed certificate is issued
)

var erasureSteps = []string{stepResolved, stepTombstoned, stepShredded, stepDeleted, stepPurged, stepVerified, stepCertified}

// errCrash is what an injected crash returns (tests only).
var errCrash = errors.New("injected crash")

// createErasure resolves the subject and records the request, then runs
// the steps. Resolution needs the identifier in the clear, so it happens
// before anything is stored: the request record keeps only keyed hashes.
func (e *Engine) createErasure(ctx context.Context, t custos.TenantID, in Input, r *custos.Request) (*custos.Request, error) {
	if r == nil {
		r = e.newRequest(t, in, custos.InProgress)
	}
	var out *custos.Request
	held, err := e.hold(ctx, t, r.ID, func(ctx context.Context) error {
		var err error
		out, err = e.startErasure(ctx, t, in, r)
		return err
	})
	if err == nil && !held {
		err = custos.Errorf(custos.Conflict, "request %s is being carried out by another node", r.ID)
	}
	return out, err
}

// hold runs fn while holding the lease of request id: one node at a time
// works on a request.
func (e *Engine) hold(ctx context.Context, t custos.TenantID, id string, fn func(context.Context) error) (bool, error) {
	if e.leases == nil {
		return true, fn(ctx)
	}
	return e.leases.Hold(ctx, t, "request/"+id, fn)
}

// startErasure is createErasure under the request's lease.
func (e *Engine) startErasure(ctx context.Context, t custos.TenantID, in Input, r *custos.Request) (*custos.Request, error) {
	r.Status, r.UpdatedAt = custos.InProgress, e.now().UTC()
	r.Erasure = &custos.ErasureProgress{Suppress: in.Suppress, IdentifiersErased: map[string]int{}, RecordsDeleted: map[string]int{}}
	h, err := e.keys.HashIdentifier(t, in.Identity)
	if err != nil {
		return nil, err
	}
	ids := []custos.Identifier{in.Identity.Normalize()}
	s, err := e.subj.Find(ctx, t, in.Identity)
	switch {
	case err == nil:
		p, err := e.subj.Profile(ctx, t, s)
		if err != nil && custos.ErrorCode(err) != custos.NotFound {
			return nil, err
		}
		if p != nil {
			ids = profileIdentifiers(p)
		}
		r.Subject = s
	case custos.ErrorCode(err) == custos.NotFound:
		// Nobody to erase: the identifier is still tombstoned (and
		// suppressed if asked), and the certificate says nothing was held.
	default:
		return nil, err
	}
	seen := map[custos.IdentifierHash]bool{}
	for _, id := range custos.WithDerived(ids) {
		hh, err := e.keys.HashIdentifier(t, id)
		if err != nil {
			return nil, err
		}
		if !seen[hh] {
			seen[hh] = true
			r.Erasure.Hashes = append(r.Erasure.Hashes, hh)
			if id.Type != custos.EmailSHA256 {
				r.Erasure.IdentifiersErased[id.Type.String()]++
			}
		}
	}
	if !seen[h] {
		r.Erasure.Hashes = append(r.Erasure.Hashes, h)
	}
	// Recipients are told now, while the identifiers are still known in
	// the clear; the notices are queued durably and sealed.
	if err := e.notifyRecipients(ctx, r, ids, nil); err != nil {
		return nil, fmt.Errorf("erasure: queue notices to recipients: %w", err)
	}
	if err := e.fwd.Plan(ctx, r, ids); err != nil {
		return nil, fmt.Errorf("erasure: forward to OpenDSR recipients: %w", err)
	}
	r.Step = stepResolved
	if err := e.putStep(ctx, r, in.Actor); err != nil {
		return nil, err
	}
	if e.crashAfter == stepResolved {
		return nil, errCrash
	}
	r, err = e.runErasure(ctx, r, in.Actor)
	if err == nil {
		e.fwd.Kick(r)
	}
	return r, err
}

// runErasure carries an erasure on from its last recorded step.
func (e *Engine) runErasure(ctx context.Context, r *custos.Request, actor string) (*custos.Request, error) {
	er, t, s := r.Erasure, r.Tenant, r.Subject
	found := s != custos.SubjectID{}
	for {
		next := nextStep(r.Step)
		if next == "" {
			return r, nil
		}
		now := e.now().UTC()
		switch next {
		case stepTombstoned:
			er.ErasedAt = now
			if err := e.gate.Tombstone(ctx, t, er.Hashes, custos.Tombstone{ErasedAt: now, Suppress: er.Suppress}); err != nil {
				return nil, fmt.Errorf("erasure %s: tombstone: %w", r.ID, err)
			}
		case stepShredded:
			if found {
				if err := e.keys.Shred(ctx, t, s); err != nil {
					return nil, fmt.Errorf("erasure %s: shred: %w", r.ID, err)
				}
			}
			er.ShreddedAt = now
		case stepDeleted:
			if found {
				counts, err := e.gate.DeleteSubject(ctx, t, s, er.Hashes)
				if err != nil {
					return nil, fmt.Errorf("erasure %s: delete: %w", r.ID, err)
				}
				er.RecordsDeleted = counts
			}
			er.DeletedAt = now
		case stepPurged:
			// A store that purges in batched passes purges this subject
			// with the next one, which the certificate names; the data is
			// unreadable since the shred and deleted since the last step.
			if ps, ok := e.store.(custos.PurgeScheduler); ok && found {
				if due := ps.PurgeDueAt(); !due.IsZero() {
					er.PurgeDueAt = due.UTC()
					break
				}
			}
			if found {
				if err := e.store.Purge(ctx, t, s); err != nil {
					return nil, fmt.Errorf("erasure %s: purge: %w", r.ID, err)
				}
			}
			er.PurgedAt = e.now().UTC()
		case stepVerified:
			ok, err := e.verifyErased(ctx, t, s, er.Hashes)
			if err != nil {
				return nil, fmt.Errorf("erasure %s: verify: %w", r.ID, err)
			}
			if !ok {
				r.Status, r.Error = custos.Failed, "verification found data left after deletion"
				return r, e.put(ctx, r, actor, "request.failed", nil)
			}
			er.Verified = true
		case stepCertified:
			cert, err := e.certify(ctx, r)
			if err != nil {
				return nil, fmt.Errorf("erasure %s: certificate: %w", r.ID, err)
			}
			er.Certificate = cert
			r.Status, r.CompletedAt = custos.Completed, now
		}
		r.Step, r.UpdatedAt = next, now
		if err := e.putStep(ctx, r, actor); err != nil {
			return nil, err
		}
		if e.crashAfter == next {
			return nil, errCrash
		}
	}
}

func nextStep(step string) string {
	for i, s := range erasureSteps {
		if s == step && i+1 < len(erasureSteps) {
			return erasureSteps[i+1]
		}
	}
	return ""
}

// putStep stores the request and audits the step under its pseudonym.
func (e *Engine) putStep(ctx context.Context, r *custos.Request, actor string) error {
	details := map[string]string{"step": r.Step}
	if r.Subject != (custos.SubjectID{}) {
		p, err := e.subj.Pseudonym(r.Tenant, r.Subject)
		if err != nil {
			return err
		}
		details["subject"] = p
	}
	action := "erasure." + r.Step
	if r.Status == custos.Completed {
		action = "request.completed"
	}
	return e.put(ctx, r, actor, action, details)
}

// verifyErased checks that no identifier finds a subject any more and
// that nothing of the subject is left.
func (e *Engine) verifyErased(ctx context.Context, t custos.TenantID, s custos.SubjectID, hashes []custos.IdentifierHash) (bool, error) {
	for _, h := range hashes {
		// An identifier may already belong to a new subject, started by
		// events dated after the erasure; it must not lead to the old one.
		got, err := e.store.Subject(ctx, t, h)
		if err == nil && got == s {
			return false, nil
		}
		if err != nil && !errors.Is(err, custos.ErrNotFound) {
			return false, err
		}
	}
	if s == (custos.SubjectID{}) {
		return true, nil
	}
	if _, err := e.store.Profile(ctx, t, s); !errors.Is(err, custos.ErrNotFound) {
		return false, err
	}
	_, _, any, err := e.store.EventSpan(ctx, t, s)
	return !any, err
}

// certify signs the erasure certificate.
func (e *Engine) certify(ctx context.Context, r *custos.Request) ([]byte, error) {
	er := r.Erasure
	head, _, err := e.store.LastAudit(ctx, r.Tenant)
	if err != nil {
		return nil, err
	}
	outcomes, err := e.outcomes(ctx, r)
	if err != nil {
		return nil, err
	}
	subject := ""
	if r.Subject != (custos.SubjectID{}) {
		if subject, err = e.subj.Pseudonym(r.Tenant, r.Subject); err != nil {
			return nil, err
		}
	} else {
		subject = "none-held"
	}
	region, _ := e.tenantOf(r.Tenant)
	c := certificate.Certificate{
		RequestID: r.ID, TenantID: r.Tenant.String(), Region: region, Subject: subject,
		IdentifiersErased: er.IdentifiersErased, RecordsDeleted: er.RecordsDeleted,
		ShreddedAt: er.ShreddedAt, DeletedAt: er.DeletedAt, PurgedAt: er.PurgedAt, PurgeDueAt: er.PurgeDueAt, Verified: er.Verified,
		Recipients:     outcomes,
		AuditChainHead: certificate.ChainHead{Seq: head.Seq, Hash: head.Hash},
		IssuedAt:       e.now().UTC(),
	}
	signed, err := certificate.Sign(c, e.sign)
	if err != nil {
		return nil, err
	}
	return certificate.Marshal(signed)
}

// Resume finishes the erasures a crash interrupted, for the given tenants,
// and queues the OpenDSR status callbacks a crash left unqueued, in the
// same pass over their requests. It returns how many erasures it resumed.
// A request another node is working on (it holds the request's lease) is
// left to that node; one whose node died is taken over once its lease
// expired, so a node may call Resume periodically.
func (e *Engine) Resume(ctx context.Context, tenants []custos.TenantID) (int, error) {
	n := 0
	for _, t := range tenants {
		var open, owed []*custos.Request
		err := e.store.Requests(ctx, t, func(r *custos.Request) bool {
			switch {
			case r.Type == custos.Erasure && r.Status == custos.InProgress && r.Erasure != nil:
				open = append(open, r) // its steps queue its callbacks
			case owesCallbacks(r):
				owed = append(owed, r)
			}
			return true
		})
		if err != nil {
			return n, err
		}
		for _, r := range open {
			resumed := false
			_, err := e.hold(ctx, t, r.ID, func(ctx context.Context) error {
				// Read again under the lease: the node that held it may
				// have finished it meanwhile.
				r, err := e.store.Request(ctx, t, r.ID)
				if err != nil || r.Status != custos.InProgress || r.Erasure == nil {
					return err
				}
				resumed = true
				r, err = e.runErasure(ctx, r, "custos:resume")
				if err == nil {
					e.fwd.Kick(r)
				}
				return err
			})
			if err != nil {
				return n, err
			}
			if resumed {
				n++
			}
		}
		for _, r := range owed {
			_, err := e.hold(ctx, t, r.ID, func(ctx context.Context) error {
				r, err := e.store.Request(ctx, t, r.ID)
				if err != nil || !owesCallbacks(r) {
					return err
				}
				return e.openDSRCallbacks(ctx, r)
			})
			if err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

// Certificate returns the signed certificate of a completed erasure.
func (e *Engine) Certificate(ctx context.Context, t custos.TenantID, id string) ([]byte, error) {
	r, err := e.store.Request(ctx, t, id)
	if err != nil {
		return nil, err
	}
	if r.Type != custos.Erasure {
		return nil, custos.Errorf(custos.NotFound, "request %s is a %s request; only erasures have certificates", id, r.Type)
	}
	if r.Erasure == nil || len(r.Erasure.Certificate) == 0 {
		return nil, custos.Errorf(custos.Conflict, "erasure %s is %s; its certificate is issued when it completes", id, r.Status)
	}
	return r.Erasure.Certificate, nil
}
