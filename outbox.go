package custos

import (
	"context"
	"time"
)

// Delivery is one signed HTTP POST that Custos owes someone: a request's
// status callback, a notice to a recipient (Art. 19). It is kept until the
// receiver acknowledges it with a 2xx, or answers with a final refusal.
type Delivery struct {
	ID        string   `json:"id"`
	Tenant    TenantID `json:"tenant_id"`
	Kind      string   `json:"kind"`                 // e.g. request.status, recipient.erasure
	RequestID string   `json:"request_id,omitempty"` // the request it concerns
	Target    string   `json:"target"`               // recipient name, or "callback"
	URL       string   `json:"url"`
	Secret    []byte   `json:"-"` // HMAC key; stored sealed with Body
	// Signing names the signer of a delivery signed otherwise than with
	// the HMAC of Secret (e.g. "opendsr": the processor certificate's key).
	Signing   string    `json:"signing,omitempty"`
	Body      []byte    `json:"-"` // the exact bytes to POST; may carry personal data, so stored sealed
	CreatedAt time.Time `json:"created_at"`

	Attempts    int       `json:"attempts"`
	NextAt      time.Time `json:"next_at"`
	LastStatus  int       `json:"last_status,omitempty"` // HTTP status of the last attempt (0: no answer)
	LastError   string    `json:"last_error,omitempty"`
	DeliveredAt time.Time `json:"delivered_at,omitzero"`
	// Final is set when no further attempt will be made: delivered, or
	// refused for good (e.g. a 401/403 signature rejection).
	Final bool `json:"final"`
}

// OutboxStore keeps deliveries. Body and Secret reach it sealed by the
// caller (SealedBody); a store never sees them in the clear.
type OutboxStore interface {
	// PutDelivery stores a delivery durably, replacing one with the same id.
	PutDelivery(ctx context.Context, d *Delivery, sealed []byte) error
	// DueDeliveries returns the deliveries q selects, with their sealed
	// parts, in due order.
	DueDeliveries(ctx context.Context, q DueQuery) ([]Delivery, [][]byte, error)
	// Deliveries returns every delivery of a request, in creation order.
	Deliveries(ctx context.Context, t TenantID, requestID string) ([]Delivery, error)
}

// DueQuery selects deliveries not final and due at or before Now, in due
// order: by NextAt, then tenant (bytes), then id (bytes).
type DueQuery struct {
	Now time.Time
	// After, if set, starts the selection after this place in due order,
	// so that a sender can page past deliveries it is not taking now.
	After *DueCursor
	// Skip leaves out the deliveries of these tenants.
	Skip []TenantID
	// Limit is the most to return (every one if Limit <= 0).
	Limit int
}

// DueCursor is a place in due order.
type DueCursor struct {
	NextAt time.Time
	Tenant TenantID
	ID     string
}

// Cursor returns d's place in due order.
func (d *Delivery) Cursor() *DueCursor {
	return &DueCursor{NextAt: d.NextAt, Tenant: d.Tenant, ID: d.ID}
}

// Recipient is a downstream system a tenant sends data to (Art. 19).
// A webhook recipient is told of every erasure, rectification and
// restriction by a signed POST; an OpenDSR recipient is a processor that
// receives erasure and access requests over OpenDSR and reports their
// progress.
type Recipient struct {
	ID     string   `json:"id"`
	Tenant TenantID `json:"tenant_id"`
	Name   string   `json:"name"`
	// Kind is RecipientWebhook (also when empty) or RecipientOpenDSR.
	Kind string `json:"kind,omitempty"`
	// URL is where webhook notices are POSTed, or the OpenDSR base URL
	// (e.g. https://processor.example/opendsr/v2).
	URL    string `json:"url"`
	Region string `json:"region"`
	// Secret is the HMAC key of a webhook recipient's notices, or the API
	// credential presented (Bearer) to an OpenDSR recipient. Callers seal
	// it with the tenant key before it reaches a store.
	Secret []byte `json:"-"`
	// Domain is the processor domain an OpenDSR recipient's certificate
	// must be issued for and its signatures must name.
	Domain string `json:"domain,omitempty"`
	// CertificatePEM, if set, pins an OpenDSR recipient's processor
	// certificate: the one its discovery names must be this one. Without
	// it the certificate must chain to a trusted root.
	CertificatePEM []byte    `json:"certificate_pem,omitempty"`
	CreatedAt      time.Time `json:"created_at"`
}

// The recipient kinds.
const (
	RecipientWebhook = "webhook"
	RecipientOpenDSR = "opendsr"
)

// RecipientStore keeps tenants' recipients.
type RecipientStore interface {
	// PutRecipient stores a recipient, replacing one with the same id.
	PutRecipient(ctx context.Context, r *Recipient) error
	// Recipients returns a tenant's recipients ordered by creation.
	Recipients(ctx context.Context, t TenantID) ([]*Recipient, error)
	// DeleteRecipient removes one; NotFound if absent.
	DeleteRecipient(ctx context.Context, t TenantID, id string) error
}
