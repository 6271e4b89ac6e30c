package consent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/audit"
)

// Subjects finds the subject an identifier belongs to and names it in
// the audit log; internal/ingest's Reader is the implementation.
type Subjects interface {
	// Find returns the subject of id, or NotFound.
	Find(ctx context.Context, t custos.TenantID, id custos.Identifier) (custos.SubjectID, error)
	// Pseudonym is the subject's name in the audit log.
	Pseudonym(t custos.TenantID, s custos.SubjectID) (string, error)
}

// Input is a grant or withdrawal a tenant records through the API.
type Input struct {
	Identity      custos.Identifier
	Purpose       string
	Channel       string
	Granted       *bool // required
	Source        custos.ConsentSource
	NoticeVersion string
	Proof         json.RawMessage
	IP            string
	UserAgent     string
	Time          time.Time // only with source import
	// Actor is who the audit entry names; "" is the tenant's secret key
	// (audit.ActorTenant).
	Actor string
}

// Recorder records a tenant's consent through the API: it checks the
// input against the tenant's settings, appends it to the ledger and
// audits it.
//
// Appending and auditing are two writes. The record is appended first
// (the audit entry names the subject, which the append may create); if
// the audit entry then fails, Record answers Unavailable and the client
// retries. The retry is idempotent: a record equal to the latest one of
// its purpose and channel in everything but its time is not appended
// again, only audited. So recording the same choice twice in a row keeps
// the first record, whose time is when the choice was first given.
type Recorder struct {
	ledger   *Ledger
	subjects Subjects
	audit    *audit.Log
	now      func() time.Time
}

// NewRecorder returns a Recorder over ledger, finding subjects with
// subjects and auditing to al.
func NewRecorder(ledger *Ledger, subjects Subjects, al *audit.Log, now func() time.Time) *Recorder {
	if now == nil {
		now = time.Now
	}
	return &Recorder{ledger: ledger, subjects: subjects, audit: al, now: now}
}

// auditDetails is what the audit keeps of a grant or withdrawal: never
// the IP, user agent or proof, which are personal data and go with an
// erasure.
type auditDetails struct {
	Purpose string               `json:"purpose"`
	Channel string               `json:"channel"`
	Granted bool                 `json:"granted"`
	Source  custos.ConsentSource `json:"source"`
}

// check turns an Input into the record to append, naming what is wrong.
func (rc *Recorder) check(t *custos.Tenant, in Input) (custos.ConsentRecord, error) {
	if in.Granted == nil {
		return custos.ConsentRecord{}, custos.Errorf(custos.Invalid, "granted is required: true for a grant, false for a withdrawal")
	}
	if in.Source == "" {
		in.Source = custos.SourceAPI
	}
	if in.Source == custos.SourceSDK {
		return custos.ConsentRecord{}, custos.Errorf(custos.Invalid, "source \"sdk\" is for consent carried by ingested messages; use api, import or unsubscribe_link")
	}
	if in.IP != "" && TruncateIP(in.IP) == "" {
		return custos.ConsentRecord{}, custos.Errorf(custos.Invalid, "ip %q is not an IP address", in.IP)
	}
	at := rc.now().UTC()
	if !in.Time.IsZero() {
		// Only an import speaks of the past; nothing is dated ahead.
		if in.Source != custos.SourceImport {
			return custos.ConsentRecord{}, custos.Errorf(custos.Invalid, "time may only be given with source \"import\"; other records are dated when received")
		}
		if in.Time.After(at) {
			return custos.ConsentRecord{}, custos.Errorf(custos.Invalid, "time %s is in the future", in.Time.Format(time.RFC3339))
		}
		at = in.Time.UTC()
	}
	if string(in.Proof) == "null" {
		in.Proof = nil
	}
	rec := custos.ConsentRecord{Purpose: in.Purpose, Channel: in.Channel, Granted: *in.Granted, Time: at, Source: in.Source,
		NoticeVersion: in.NoticeVersion, IP: TruncateIP(in.IP), UserAgent: in.UserAgent, Proof: in.Proof}
	return rec, Check(&t.Settings, &rec)
}

// Record checks, appends and audits one grant or withdrawal, and returns
// the record as stored (an earlier equal one on a retry).
func (rc *Recorder) Record(ctx context.Context, t *custos.Tenant, in Input) (custos.ConsentRecord, error) {
	rec, err := rc.check(t, in)
	if err != nil {
		return rec, err
	}
	s, prior, err := rc.latestEqual(ctx, t.ID, in.Identity, rec)
	if err != nil {
		return rec, err
	}
	if prior != nil {
		rec = *prior
	} else if s, err = rc.ledger.Record(ctx, t.ID, in.Identity, rec); err != nil {
		return rec, err
	}
	rec.Subject = s
	action := "consent.withdraw"
	if rec.Granted {
		action = "consent.grant"
	}
	pseudonym, err := rc.subjects.Pseudonym(t.ID, s)
	if err == nil {
		actor := in.Actor
		if actor == "" {
			actor = audit.ActorTenant
		}
		_, err = rc.audit.Record(ctx, t.ID, audit.Entry{Actor: actor, Action: action, Subject: pseudonym,
			Details: auditDetails{Purpose: rec.Purpose, Channel: rec.Channel, Granted: rec.Granted, Source: rec.Source}})
	}
	if err != nil {
		return rec, &custos.Error{Code: custos.Unavailable, Err: err,
			Message: "the consent was recorded but its audit entry was not; retry: the retry records no second consent"}
	}
	return rec, nil
}

// latestEqual returns the subject of id and, when the subject's latest
// record for rec's purpose and channel equals rec but for its time (its
// time too for an import), that record.
func (rc *Recorder) latestEqual(ctx context.Context, t custos.TenantID, id custos.Identifier, rec custos.ConsentRecord) (custos.SubjectID, *custos.ConsentRecord, error) {
	s, err := rc.subjects.Find(ctx, t, id)
	if custos.ErrorCode(err) == custos.NotFound || errors.Is(err, custos.ErrNotFound) {
		return s, nil, nil
	}
	if err != nil {
		return s, nil, err
	}
	hist, err := rc.ledger.History(ctx, t, s)
	if custos.ErrorCode(err) == custos.NotFound {
		return s, nil, nil
	}
	if err != nil {
		return s, nil, err
	}
	for i := len(hist) - 1; i >= 0; i-- {
		h := hist[i]
		if h.Purpose != rec.Purpose || h.Channel != rec.Channel {
			continue
		}
		same := h.Granted == rec.Granted && h.Source == rec.Source && h.NoticeVersion == rec.NoticeVersion &&
			h.IP == rec.IP && h.UserAgent == rec.UserAgent && jsonSame(h.Proof, rec.Proof) &&
			(rec.Source != custos.SourceImport || h.Time.Equal(rec.Time))
		if same {
			return s, &h, nil
		}
		return s, nil, nil
	}
	return s, nil, nil
}

// jsonSame reports whether two JSON texts are the same once compacted.
func jsonSame(a, b json.RawMessage) bool {
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b)
	}
	var ca, cb bytes.Buffer
	if json.Compact(&ca, a) != nil || json.Compact(&cb, b) != nil {
		return bytes.Equal(a, b)
	}
	return bytes.Equal(ca.Bytes(), cb.Bytes())
}
