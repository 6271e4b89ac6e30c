package custos

import (
	"context"
	"time"
)

// RequestType is a data-subject right exercised through a request.
type RequestType string

// The request types.
const (
	Access      RequestType = "access"      // Art. 15: a copy of everything held
	Portability RequestType = "portability" // Art. 20: the same, machine-readable
	Erasure     RequestType = "erasure"     // Art. 17
	Suppress    RequestType = "suppress"    // drop every future event at the door
	Unsuppress  RequestType = "unsuppress"
	Restrict    RequestType = "restrict" // Art. 18: keep the data, process nothing new
	Unrestrict  RequestType = "unrestrict"
	Object      RequestType = "object"  // Art. 21: no direct marketing, absolutely
	Rectify     RequestType = "rectify" // Art. 16
)

// RequestTypes lists every request type.
var RequestTypes = []RequestType{Access, Portability, Erasure, Suppress, Unsuppress, Restrict, Unrestrict, Object, Rectify}

// RequestStatus is where a request stands.
type RequestStatus string

// The request statuses.
const (
	PendingVerification RequestStatus = "pending_verification"
	Pending             RequestStatus = "pending"
	InProgress          RequestStatus = "in_progress"
	Completed           RequestStatus = "completed"
	Failed              RequestStatus = "failed"
	Cancelled           RequestStatus = "cancelled"
	Rejected            RequestStatus = "rejected"
)

// OpenDSRLink is what a request submitted over OpenDSR keeps of the
// protocol: the controller's id for it, which version of the protocol it
// spoke (it names the signature headers of the callbacks), where to call
// back, and the last status called back, so each change is sent once.
type OpenDSRLink struct {
	SubjectRequestID string   `json:"subject_request_id"`
	APIVersion       string   `json:"api_version"`
	CallbackURLs     []string `json:"status_callback_urls,omitempty"`
	// BaseURL is the scheme and host the controller reached Custos by;
	// results_url is made from it.
	BaseURL  string `json:"base_url"`
	Notified string `json:"notified,omitempty"`
}

// Final reports whether a request in this status can change no more.
func (s RequestStatus) Final() bool {
	return s == Completed || s == Failed || s == Cancelled || s == Rejected
}

// Request is one data-subject request and its progress. It holds no
// personal data: the identity that named the subject is kept only as its
// type, the subject as its random id and its audit pseudonym, so requests
// outlive an erasure.
type Request struct {
	ID           string         `json:"id"`
	Tenant       TenantID       `json:"tenant_id"`
	Type         RequestType    `json:"type"`
	Status       RequestStatus  `json:"status"`
	IdentityType IdentifierType `json:"identity_type"`
	Subject      SubjectID      `json:"subject_id"`
	Source       string         `json:"source"`
	// CallbackURL, if set, receives a signed POST on every status change.
	CallbackURL string `json:"callback_url,omitempty"`
	// OpenDSR links a request submitted over OpenDSR to the controller's
	// request and its status callbacks.
	OpenDSR *OpenDSRLink `json:"opendsr,omitempty"`
	// Fingerprint is the SHA-256 (hex) of the request as a standard
	// protocol (OpenDSR) submitted it, to tell a resubmission from a
	// different request under the same id.
	Fingerprint string `json:"fingerprint,omitempty"`

	ReceivedAt      time.Time `json:"received_at"`
	DueAt           time.Time `json:"due_at"`
	OriginalDueAt   time.Time `json:"original_due_at"`
	ExtendedMonths  int       `json:"extended_months"`
	ExtensionReason string    `json:"extension_reason,omitempty"`
	UpdatedAt       time.Time `json:"updated_at"`
	CompletedAt     time.Time `json:"completed_at,omitzero"`
	Error           string    `json:"error,omitempty"`

	// Step is the last durable step of a request that takes several
	// (erasure), so a restart resumes after it.
	Step    string           `json:"step,omitempty"`
	Erasure *ErasureProgress `json:"erasure,omitempty"`
	// PendingIdentity is the identity of a request waiting for the
	// controller's approval, sealed with a tenant key; it is deleted when
	// the request is approved or rejected.
	PendingIdentity []byte `json:"pending_identity,omitempty"`

	// Forwards is the progress of the request at each OpenDSR recipient
	// it was forwarded to.
	Forwards []Forward `json:"forwards,omitempty"`
	// ForwardBodies holds, by recipient id, the exact OpenDSR request
	// body still to be submitted, sealed with a tenant key (it names the
	// person); each is deleted once the recipient acknowledged it.
	ForwardBodies map[string][]byte `json:"forward_bodies,omitempty"`
}

// The statuses of a Forward. ForwardCompleted and ForwardFailed are
// final.
const (
	ForwardQueued     = "queued"      // not yet acknowledged by the recipient
	ForwardSubmitted  = "submitted"   // acknowledged, with a verified signature
	ForwardInProgress = "in_progress" // the recipient reported it in progress
	ForwardCompleted  = "completed"   // the recipient reported it completed
	ForwardFailed     = "failed"      // given up, for Reason
)

// Forward is a request forwarded to one OpenDSR recipient and what became
// of it, as learnt from verified answers, callbacks and polls.
type Forward struct {
	RecipientID string `json:"recipient_id"`
	Recipient   string `json:"recipient"` // its name
	// SubjectRequestID is the OpenDSR id of the request at the recipient.
	SubjectRequestID string    `json:"subject_request_id"`
	Status           string    `json:"status"`
	Reason           string    `json:"reason,omitempty"` // why it failed
	ResultsURL       string    `json:"results_url,omitempty"`
	SubmittedAt      time.Time `json:"submitted_at,omitzero"`
	UpdatedAt        time.Time `json:"updated_at"`
	CompletedAt      time.Time `json:"completed_at,omitzero"`
	// Attempts counts failed submissions or polls in a row; NextAt is
	// when the next one is due.
	Attempts  int       `json:"attempts"`
	NextAt    time.Time `json:"next_at,omitzero"`
	LastError string    `json:"last_error,omitempty"`
	Polls     int       `json:"polls"`
	Callbacks int       `json:"callbacks"` // verified callbacks received
	// RejectedCallbacks counts callbacks refused because their signature
	// did not verify; LastRejection says why the last one was.
	RejectedCallbacks int    `json:"rejected_callbacks,omitempty"`
	LastRejection     string `json:"last_rejection,omitempty"`
}

// Final reports whether nothing more will be done about f.
func (f *Forward) Final() bool { return f.Status == ForwardCompleted || f.Status == ForwardFailed }

// RequestStore keeps requests.
type RequestStore interface {
	// PutRequest stores a request durably, replacing one with the same id.
	PutRequest(ctx context.Context, r *Request) error
	// Request returns one request, or ErrNotFound.
	Request(ctx context.Context, t TenantID, id string) (*Request, error)
	// Requests calls fn for every request of a tenant, newest first, until
	// fn returns false.
	Requests(ctx context.Context, t TenantID, fn func(*Request) bool) error
}

// SubjectFlags are the standing restrictions on what may be done with a
// subject's data. The zero value means none.
type SubjectFlags struct {
	// Suppressed: every new message of the subject is dropped at the door.
	Suppressed bool `json:"suppressed,omitempty"`
	// Restricted (Art. 18): stored data is kept, new messages are dropped,
	// and nothing but storage, access and erasure may process the subject.
	Restricted bool `json:"restricted,omitempty"`
	// ObjectedAt (Art. 21) is when the subject objected to direct
	// marketing; zero if it has not.
	ObjectedAt time.Time `json:"objected_at,omitzero"`
}

// Drops reports whether new messages of the subject are dropped.
func (f SubjectFlags) Drops() bool { return f.Suppressed || f.Restricted }

// Union combines the flags of two subjects found to be one: a restriction
// on either holds for both.
func (f SubjectFlags) Union(o SubjectFlags) SubjectFlags {
	f.Suppressed = f.Suppressed || o.Suppressed
	f.Restricted = f.Restricted || o.Restricted
	if f.ObjectedAt.IsZero() || (!o.ObjectedAt.IsZero() && o.ObjectedAt.Before(f.ObjectedAt)) {
		f.ObjectedAt = o.ObjectedAt
	}
	return f
}

// FlagsRecord sets a subject's flags; the zero flags delete the record.
type FlagsRecord struct {
	Subject SubjectID
	Flags   SubjectFlags
}

// Tombstone is left by an erasure for each identifier of the erased
// subject: messages carrying it that are dated before ErasedAt (clients
// retry for hours) are dropped, not resurrected; with Suppress, every
// later message is dropped too.
type Tombstone struct {
	ErasedAt time.Time `json:"erased_at"`
	Suppress bool      `json:"suppress,omitempty"`
}

// TombstoneRecord stores a tombstone under an identifier hash.
type TombstoneRecord struct {
	Hash      IdentifierHash
	Tombstone Tombstone
}

// ErasureProgress is the progress of an erasure request: what was found, and when
// each step became durable. It holds keyed hashes and counts, never an
// identifier.
type ErasureProgress struct {
	Suppress          bool             `json:"suppress"`
	Hashes            []IdentifierHash `json:"hashes,omitempty"`
	IdentifiersErased map[string]int   `json:"identifiers_erased,omitempty"`
	RecordsDeleted    map[string]int   `json:"records_deleted,omitempty"`
	ErasedAt          time.Time        `json:"erased_at,omitzero"`
	ShreddedAt        time.Time        `json:"shredded_at,omitzero"`
	DeletedAt         time.Time        `json:"deleted_at,omitzero"`
	PurgedAt          time.Time        `json:"purged_at,omitzero"`
	// PurgeDueAt is when the purge pass that removes the erased bytes
	// from storage files starts, for a store that purges in passes
	// (PurgeScheduler); PurgedAt is then zero.
	PurgeDueAt  time.Time `json:"purge_due_at,omitzero"`
	Verified    bool      `json:"verified"`
	Certificate []byte    `json:"certificate,omitempty"` // signed, JSON
}
