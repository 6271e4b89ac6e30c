package custos

import (
	"context"
	"encoding/json"
	"time"
)

// AuditEntry is one link of a tenant's hash-chained audit log. It carries
// no personal data — subjects appear only as pseudonyms (keyed hashes) —
// so entries outlive erasure.
type AuditEntry struct {
	Seq       uint64    `json:"seq"`
	Time      time.Time `json:"time"`
	Actor     string    `json:"actor"`
	Action    string    `json:"action"`
	Subject   string    `json:"subject,omitempty"`
	RequestID string    `json:"request_id,omitempty"`
	// Details are JSON in the form json.Marshal writes (compact, with <, >
	// and & escaped): the form the hash covers, which a store returns
	// byte for byte.
	Details  json.RawMessage `json:"details,omitempty"`
	PrevHash string          `json:"prev_hash"`
	Hash     string          `json:"hash"`
}

// OperatorChain is the TenantID under which operator actions that concern
// no single tenant are audited.
var OperatorChain TenantID

// AuditStore keeps audit chains, one per tenant (and OperatorChain).
type AuditStore interface {
	// AppendAudit stores e durably at e.Seq; Conflict if that sequence
	// number is taken (another writer won the race).
	AppendAudit(ctx context.Context, t TenantID, e *AuditEntry) error
	// AuditEntries returns up to limit entries with Seq > after, in order.
	AuditEntries(ctx context.Context, t TenantID, after uint64, limit int) ([]AuditEntry, error)
	// LastAudit returns the newest entry of a chain; ok is false for an
	// empty chain.
	LastAudit(ctx context.Context, t TenantID) (e AuditEntry, ok bool, err error)
}
