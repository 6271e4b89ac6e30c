package subjects

import (
	"context"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/audit"
)

// AuditedReader reads a subject's profile and events for a tenant
// through the API, each read followed by its audit entry under the
// subject's pseudonym (Art. 30: every action on personal data is
// recorded). The data is handed back only once its read is audited: a
// failed audit entry answers Unavailable and nothing is shown.
type AuditedReader struct {
	reader *Reader
	audit  *audit.Log
}

// NewAuditedReader returns an AuditedReader over r, auditing to al.
func NewAuditedReader(r *Reader, al *audit.Log) *AuditedReader {
	return &AuditedReader{reader: r, audit: al}
}

// Find returns the subject an identifier belongs to (Reader.Find); a
// lookup shows nothing of the subject, so it is not audited on its own.
func (a *AuditedReader) Find(ctx context.Context, t custos.TenantID, id custos.Identifier) (custos.SubjectID, error) {
	return a.reader.Find(ctx, t, id)
}

// Profile returns the subject's profile (Reader.Profile) and audits the
// read as profile.read.
func (a *AuditedReader) Profile(ctx context.Context, t custos.TenantID, s custos.SubjectID) (*custos.Profile, error) {
	p, err := a.reader.Profile(ctx, t, s)
	if err != nil {
		return nil, err
	}
	if err := recordRead(ctx, a.reader, a.audit, t, s, "profile.read", nil); err != nil {
		return nil, err
	}
	return p, nil
}

// Events returns a page of the subject's events (Reader.Events) and
// audits the read as events.read with the number of events shown.
func (a *AuditedReader) Events(ctx context.Context, t custos.TenantID, s custos.SubjectID, cursor string, limit int) ([]custos.Event, string, error) {
	events, next, err := a.reader.Events(ctx, t, s, cursor, limit)
	if err != nil {
		return nil, "", err
	}
	if err := recordRead(ctx, a.reader, a.audit, t, s, "events.read", map[string]int{"events": len(events)}); err != nil {
		return nil, "", err
	}
	return events, next, nil
}

// recordRead audits a tenant's read of a subject's data through the API
// under the subject's pseudonym, as action with details. A failure is
// Unavailable: the client retries the read.
func recordRead(ctx context.Context, p *Reader, al *audit.Log, t custos.TenantID, s custos.SubjectID, action string, details any) error {
	pseudonym, err := p.Pseudonym(t, s)
	if err != nil {
		return err
	}
	if _, err := al.Record(ctx, t, audit.Entry{Actor: audit.ActorTenant, Action: action, Subject: pseudonym, Details: details}); err != nil {
		return &custos.Error{Code: custos.Unavailable, Message: "the audit log could not record this action; retry", Err: err}
	}
	return nil
}
