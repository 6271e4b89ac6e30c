package consent

import (
	"context"
	"errors"
	"time"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/keyring"
)

// Writer appends sealed records in order with ingestion and subject
// merges; internal/subjects' Pipeline is the one implementation. It gives
// each record its sequence number and seals it with Seal.
type Writer interface {
	// AppendConsent records r for the subject id belongs to, creating the
	// subject if id was never seen, and returns it once durable.
	AppendConsent(ctx context.Context, t custos.TenantID, id custos.Identifier, r custos.ConsentRecord) (custos.SubjectID, error)
	// AppendConsentTo records r for a known subject, once durable; NotFound
	// if the subject does not exist (never did, was erased or merged away).
	AppendConsentTo(ctx context.Context, t custos.TenantID, s custos.SubjectID, r custos.ConsentRecord) error
}

// Ledger records and reads consent, durable and sealed.
type Ledger struct {
	w     Writer
	store custos.ConsentStore
	ring  *keyring.Ring
	now   func() time.Time
}

// New returns a Ledger writing through w and reading from store, opening
// records with keys from ring; now stamps records that carry no time.
func New(w Writer, store custos.ConsentStore, ring *keyring.Ring, now func() time.Time) *Ledger {
	if now == nil {
		now = time.Now
	}
	return &Ledger{w: w, store: store, ring: ring, now: now}
}

// prepare checks a record's shape and fills in its time and truncated IP.
func (l *Ledger) prepare(rec *custos.ConsentRecord) error {
	if err := checkShape(rec); err != nil {
		return err
	}
	if rec.Time.IsZero() {
		rec.Time = l.now()
	}
	rec.Time = rec.Time.UTC()
	if rec.IP != "" {
		rec.IP = TruncateIP(rec.IP)
	}
	return nil
}

// Record appends rec to the ledger of the subject id belongs to — a new
// subject if id was never seen, so that a choice made before a person's
// first event holds — and returns the subject once the record is
// durable. A zero rec.Time means now; rec.IP is truncated. Purpose and
// channel are checked against the tenant's settings by the caller (Check).
func (l *Ledger) Record(ctx context.Context, t custos.TenantID, id custos.Identifier, rec custos.ConsentRecord) (custos.SubjectID, error) {
	if err := l.prepare(&rec); err != nil {
		return custos.SubjectID{}, err
	}
	return l.w.AppendConsent(ctx, t, id, rec)
}

// RecordSubject appends rec to a known subject's ledger (the unsubscribe
// link names the subject, not an identifier); NotFound if the subject
// does not exist.
func (l *Ledger) RecordSubject(ctx context.Context, t custos.TenantID, s custos.SubjectID, rec custos.ConsentRecord) error {
	if err := l.prepare(&rec); err != nil {
		return err
	}
	return l.w.AppendConsentTo(ctx, t, s, rec)
}

// History returns the subject's whole ledger, oldest first; NotFound if
// the subject does not exist or was erased.
func (l *Ledger) History(ctx context.Context, t custos.TenantID, s custos.SubjectID) ([]custos.ConsentRecord, error) {
	key, _, err := l.ring.SubjectKey(ctx, t, s, false)
	if errors.Is(err, custos.ErrNotFound) || errors.Is(err, custos.ErrShredded) {
		return nil, custos.Errorf(custos.NotFound, "no subject %s", s)
	}
	if err != nil {
		return nil, err
	}
	return ReadHistory(ctx, l.store, key)
}

// ReadHistory reads and opens the ledger of the subject key belongs to.
func ReadHistory(ctx context.Context, store custos.ConsentStore, key *keyring.SubjectKey) ([]custos.ConsentRecord, error) {
	out := []custos.ConsentRecord{}
	err := store.Consents(ctx, key.Tenant(), key.Subject(), func(sc custos.StoredConsent) (bool, error) {
		r, err := Open(key, sc)
		if err != nil {
			return false, err
		}
		out = append(out, r)
		return true, nil
	})
	return out, err
}

// State returns the subject's current consent; NotFound if the subject
// does not exist or was erased (a caller deciding a send treats that as
// Erased).
func (l *Ledger) State(ctx context.Context, t custos.TenantID, s custos.SubjectID) (State, error) {
	h, err := l.History(ctx, t, s)
	if err != nil {
		return State{}, err
	}
	return NewState(h), nil
}

// LastActivity returns when the subject last granted or withdrew consent
// (zero when never, or when the subject is gone): a person who recently
// answered a consent question is active, and the retention sweep keeps
// their profile.
func (l *Ledger) LastActivity(ctx context.Context, t custos.TenantID, s custos.SubjectID) (time.Time, error) {
	hist, err := l.History(ctx, t, s)
	if custos.ErrorCode(err) == custos.NotFound {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, err
	}
	var last time.Time
	for _, r := range hist {
		if r.Time.After(last) {
			last = r.Time
		}
	}
	return last, nil
}
