package custos

import (
	"context"
	"encoding/json"
	"time"
)

// ConsentSource says how a consent record reached Custos.
type ConsentSource string

// The consent sources.
const (
	SourceAPI         ConsentSource = "api"              // POST /api/v1/consents
	SourceSDK         ConsentSource = "sdk"              // carried by an ingested message
	SourceImport      ConsentSource = "import"           // a bulk import of earlier records
	SourceUnsubscribe ConsentSource = "unsubscribe_link" // the link in a campaign message
	// SourcePrivacyCenter is a choice the data subject made in the
	// tenant's privacy center (/privacy/{tenant}).
	SourcePrivacyCenter ConsentSource = "privacy_center"
)

// ConsentSources lists every consent source.
var ConsentSources = []ConsentSource{SourceAPI, SourceSDK, SourceImport, SourceUnsubscribe, SourcePrivacyCenter}

// ConsentRecord is one grant or withdrawal of consent (Art. 7): the ledger
// is append-only, and a subject's current consent is derived from it. A
// record is personal data (IP, user agent, proof) and is stored sealed
// with the subject's key.
type ConsentRecord struct {
	Subject SubjectID `json:"subject_id"`
	Purpose string    `json:"purpose"`
	// Channel is the channel the record is about; "" means every channel.
	Channel string    `json:"channel"`
	Granted bool      `json:"granted"`
	Time    time.Time `json:"time"`
	// Seq orders records of the same time: the order they were recorded
	// in. It is part of the record's storage key, not of its sealed value.
	Seq    uint64        `json:"-"`
	Source ConsentSource `json:"source"`
	// NoticeVersion names the version (or hash) of the notice the person
	// saw when deciding.
	NoticeVersion string `json:"notice_version,omitempty"`
	// IP is the address the decision came from, truncated to /24 (IPv4)
	// or /48 (IPv6).
	IP        string `json:"ip,omitempty"`
	UserAgent string `json:"user_agent,omitempty"`
	// Proof is whatever else the controller keeps as evidence (a form id,
	// a screenshot hash), as JSON.
	Proof json.RawMessage `json:"proof,omitempty"`
}

// StoredConsent is one sealed consent record in the store. Within a
// subject, records are ordered by Time, then Seq; a record with the same
// subject, time and sequence number is replaced.
type StoredConsent struct {
	Subject SubjectID
	Time    time.Time
	Seq     uint64
	Value   []byte // sealed
}

// ConsentStore keeps the consent ledger. Records are written through
// Write.Consents and deleted with the rest of their subject
// (Write.DeleteSubjects).
type ConsentStore interface {
	// Consents calls fn for the subject's consent records in order, until
	// fn returns false or an error.
	Consents(ctx context.Context, t TenantID, s SubjectID, fn func(StoredConsent) (bool, error)) error
}
