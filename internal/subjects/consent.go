package subjects

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/consent"
	"github.com/custos-dev/custos/internal/keyring"
)

// The consent ledger is written by the writer, so that a record is
// ordered with ingestion and with merges: a merge carries the merged
// subject's records to the survivor, and the collection gate sees a
// grant the moment it is acknowledged.
//
// The writer caches the State of subjects it touched. Every record it
// appends goes into the cached State (loaded first if absent), so the
// cache is complete for every subject of the group being built; it is
// only dropped between groups, when everything is in the store.

// AppendConsent records r for the subject id belongs to, creating the
// subject if id was never seen, and returns the subject once the record
// is durable. It implements consent.Writer.
func (p *Pipeline) AppendConsent(ctx context.Context, t custos.TenantID, id custos.Identifier, r custos.ConsentRecord) (custos.SubjectID, error) {
	h, err := p.ring.HashIdentifier(t, id)
	if err != nil {
		return custos.SubjectID{}, err
	}
	id = id.Normalize()
	var subject custos.SubjectID
	err = p.control(ctx, t, func(w *writer, g *group) error {
		m := &prepared{msg: &custos.Message{ReceivedAt: p.opts.Now()}, ids: []hashedID{{id, h}}}
		s, key, err := w.resolve(ctx, g, t, m)
		if err != nil {
			return err
		}
		subject = s
		return w.appendConsent(ctx, g, t, s, key, r)
	})
	if err != nil {
		return custos.SubjectID{}, err // the writer may still be in fn
	}
	return subject, nil
}

// AppendConsentTo records r for a known subject once durable. A subject
// since merged into another is followed to the survivor, which holds its
// consent now: a withdrawal through an unsubscribe link sent before the
// merge must not be lost. NotFound if the subject does not exist (never
// did, or was erased).
func (p *Pipeline) AppendConsentTo(ctx context.Context, t custos.TenantID, s custos.SubjectID, r custos.ConsentRecord) error {
	return p.control(ctx, t, func(w *writer, g *group) error {
		// A merge pending in this group must be in the store first.
		if err := w.flush(ctx, g); err != nil {
			return err
		}
		s, key, err := w.survivor(ctx, t, s)
		if err != nil {
			return err
		}
		r.Subject = s
		return w.appendConsent(ctx, g, t, s, key, r)
	})
}

// maxMergeHops bounds how many merges survivor follows.
const maxMergeHops = 64

// survivor returns the subject that holds s's data now — s itself, or the
// subject it was merged into, following merge after merge — and its key;
// NotFound when there is none (never was, or erased).
func (w *writer) survivor(ctx context.Context, t custos.TenantID, s custos.SubjectID) (custos.SubjectID, *keyring.SubjectKey, error) {
	for range maxMergeHops {
		key, _, err := w.p.ring.SubjectKey(ctx, t, s, false)
		if err == nil {
			return s, key, nil
		}
		if !errors.Is(err, custos.ErrNotFound) && !errors.Is(err, custos.ErrShredded) {
			return s, nil, err
		}
		into, err := w.p.store.MergedInto(ctx, t, s)
		if errors.Is(err, custos.ErrNotFound) {
			return s, nil, custos.Errorf(custos.NotFound, "no subject %s", s)
		}
		if err != nil {
			return s, nil, err
		}
		s = into
	}
	return s, nil, fmt.Errorf("subject %s: more than %d merges to follow", s, maxMergeHops)
}

// nextSeq returns the next record sequence number. It starts from the
// clock at start-up, so numbers keep increasing across restarts.
func (w *writer) nextSeq() uint64 {
	w.seq++
	return w.seq
}

// consentState returns the subject's State, reading its ledger the first
// time.
func (w *writer) consentState(ctx context.Context, t custos.TenantID, s custos.SubjectID, key *keyring.SubjectKey) (consent.State, error) {
	ref := subjectRef{t, s}
	if st, ok := w.consents[ref]; ok {
		return st, nil
	}
	h, err := consent.ReadHistory(ctx, w.p.store, key)
	if err != nil {
		return consent.State{}, fmt.Errorf("read consent ledger: %w", err)
	}
	st := consent.NewState(h)
	w.consents[ref] = st
	return st, nil
}

// appendConsent seals r as the subject's next record and adds it to the
// group's write and the cached State.
func (w *writer) appendConsent(ctx context.Context, g *group, t custos.TenantID, s custos.SubjectID, key *keyring.SubjectKey, r custos.ConsentRecord) error {
	st, err := w.consentState(ctx, t, s, key)
	if err != nil {
		return err
	}
	r.Subject = s
	r.Seq = w.nextSeq()
	sc, err := consent.Seal(key, r)
	if err != nil {
		return err
	}
	wr := g.write(t)
	wr.Consents = append(wr.Consents, sc)
	st.Add(r)
	w.consents[subjectRef{t, s}] = st
	return nil
}

// mergeConsents re-seals other's ledger under primary's key. The group
// was flushed just before, so both ledgers are whole in the store.
func (w *writer) mergeConsents(ctx context.Context, wr *custos.Write, t custos.TenantID, primary custos.SubjectID, pkey *keyring.SubjectKey, okey *keyring.SubjectKey) error {
	st, err := w.consentState(ctx, t, primary, pkey)
	if err != nil {
		return err
	}
	theirs, err := consent.ReadHistory(ctx, w.p.store, okey)
	if err != nil {
		return fmt.Errorf("read consent ledger to merge: %w", err)
	}
	for _, r := range theirs {
		r.Subject = primary
		sc, err := consent.Seal(pkey, r)
		if err != nil {
			return err
		}
		wr.Consents = append(wr.Consents, sc)
		st.Add(r)
	}
	w.consents[subjectRef{t, primary}] = st
	delete(w.consents, subjectRef{t, okey.Subject()})
	return nil
}

// newSeq is where sequence numbers start: the clock, so that they keep
// increasing across restarts unless the clock goes back.
func newSeq() uint64 { return uint64(time.Now().UnixNano()) }

// messageConsents records the consent a message carries, changes only: a
// record is appended when nothing was said yet about its purpose and
// channel, or the last word there differs. A consent manager repeats its
// state on every event; comparing with the last word on the same pair
// (not with the effective state) keeps a later unsubscribe from e-mail
// from being undone by the next event repeating "Marketing: true".
func (w *writer) messageConsents(ctx context.Context, g *group, j *job, s custos.SubjectID, key *keyring.SubjectKey, m *prepared) error {
	if len(m.consents) == 0 {
		return nil
	}
	t := j.tenant
	st, err := w.consentState(ctx, t, s, key)
	if err != nil {
		return err
	}
	for _, r := range m.consents {
		if last, ok := st.Latest(r.Purpose, r.Channel); ok && last.Granted == r.Granted {
			continue
		}
		if err := w.appendConsent(ctx, g, t, s, key, r); err != nil {
			return err
		}
		j.res.Consents++
		st = w.consents[subjectRef{t, s}]
	}
	return nil
}

// consentGate decides, before resolution, a message that grants nothing
// while collection requires consent: it is dropped ("no_consent") unless
// it belongs to a known subject with an analytics grant. Withdrawals it
// carries are recorded for a known subject first.
func (w *writer) consentGate(ctx context.Context, g *group, j *job, m *prepared) (string, error) {
	t := j.tenant
	var s custos.SubjectID
	found := false
	for _, ids := range [][]hashedID{m.ids, m.prev} {
		for _, id := range ids {
			sub, ok, err := w.lookup(ctx, t, id.h)
			if err != nil {
				return "", err
			}
			if ok {
				s, found = sub, true
				break
			}
		}
		if found {
			break
		}
	}
	if !found {
		return "no_consent", nil
	}
	if reason, err := w.gateMessage(ctx, t, s, m); reason != "" || err != nil {
		return reason, err
	}
	key, _, err := w.p.ring.SubjectKey(ctx, t, s, false)
	if errors.Is(err, custos.ErrNotFound) || errors.Is(err, custos.ErrShredded) {
		return "no_consent", nil
	}
	if err != nil {
		return "", err
	}
	st, err := w.consentState(ctx, t, s, key)
	if err != nil {
		return "", err
	}
	if granted, _ := st.Lookup(consent.Analytics, ""); granted {
		return "", nil
	}
	if err := w.messageConsents(ctx, g, j, s, key, m); err != nil {
		return "", err
	}
	return "no_consent", nil
}

// sendStore is the optional part of the store a merge reads campaign send
// records from (custos.CampaignStore); a store without it keeps none.
type sendStore interface {
	Sends(ctx context.Context, t custos.TenantID, s custos.SubjectID, since time.Time, fn func(custos.StoredSend) (bool, error)) error
}

// mergeSends re-seals the absorbed subject's campaign send records under
// the survivor's key, so its access export still lists them and the daily
// cap still counts them.
func (w *writer) mergeSends(ctx context.Context, wr *custos.Write, t custos.TenantID, primary custos.SubjectID, pkey, okey *keyring.SubjectKey) error {
	ss, ok := w.p.store.(sendStore)
	if !ok {
		return nil
	}
	return ss.Sends(ctx, t, okey.Subject(), time.Time{}, func(sd custos.StoredSend) (bool, error) {
		rk := custos.SendRecordKey(sd.Campaign, sd.Time)
		plain, err := okey.Open(nil, rk, sd.Value)
		if err != nil {
			return false, fmt.Errorf("open send record to merge: %w", err)
		}
		sealed, err := pkey.Seal(nil, rk, plain)
		if err != nil {
			return false, fmt.Errorf("seal merged send record: %w", err)
		}
		wr.Sends = append(wr.Sends, custos.StoredSend{Subject: primary, Time: sd.Time, Campaign: sd.Campaign, Value: sealed})
		return true, nil
	})
}
