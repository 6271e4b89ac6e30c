package rights

import (
	"context"
	"encoding/json"

	"github.com/custos-dev/custos"
)

// Requests from a device (the SDK path) carry only the public write key,
// which anyone can read out of an app: a write key alone must never be
// enough to read or erase someone's data. Unless the device proves who it
// is (a user_hash made by the tenant's back end), an access or erasure
// request waits as pending_verification until the controller approves or
// rejects it. Suppression is always honoured: dropping data is the safe
// direction.

type pendingIdentity struct {
	Type     custos.IdentifierType `json:"type"`
	Value    string                `json:"value"`
	Suppress bool                  `json:"suppress,omitempty"`
}

// CreatePending records a request that waits for the controller's
// approval. Its identity is kept sealed with a tenant key until then.
func (e *Engine) CreatePending(ctx context.Context, t custos.TenantID, in Input) (*custos.Request, error) {
	if in.Type != custos.Erasure && in.Type != custos.Access && in.Type != custos.Portability {
		return nil, custos.Errorf(custos.Invalid, "only access, portability and erasure requests wait for approval")
	}
	if in.Identity.Type == 0 || in.Identity.Value == "" {
		return nil, custos.Errorf(custos.Invalid, "an identity is required")
	}
	if in.ID != "" {
		release, err := e.reserve(ctx, t, in.ID)
		if err != nil {
			return nil, err
		}
		defer release()
	}
	r := e.newRequest(t, in, custos.PendingVerification)
	plain, err := json.Marshal(pendingIdentity{Type: in.Identity.Type, Value: in.Identity.Value, Suppress: in.Suppress})
	if err != nil {
		return nil, err
	}
	if r.PendingIdentity, err = e.keys.SealTenant(t, []byte(r.ID), plain); err != nil {
		return nil, err
	}
	return r, e.put(ctx, r, in.Actor, "request.received", map[string]string{"verification": "pending"})
}

// Approve carries out a request that waited for verification.
func (e *Engine) Approve(ctx context.Context, t custos.TenantID, id, actor string) (*custos.Request, error) {
	r, in, err := e.pendingRequest(ctx, t, id)
	if err != nil {
		return nil, err
	}
	in.Actor = actor
	r.PendingIdentity = nil
	if err := e.put(ctx, r, actor, "request.approved", nil); err != nil {
		return nil, err
	}
	if r.Type == custos.Erasure {
		return e.createErasure(ctx, t, in, r)
	}
	r.Status = custos.Pending
	return e.createAccess(ctx, t, in, r)
}

// Reject refuses a request that waited for verification, forgetting its
// identity.
func (e *Engine) Reject(ctx context.Context, t custos.TenantID, id, reason, actor string) (*custos.Request, error) {
	r, _, err := e.pendingRequest(ctx, t, id)
	if err != nil {
		return nil, err
	}
	now := e.now().UTC()
	r.Status, r.UpdatedAt, r.PendingIdentity, r.Error = custos.Rejected, now, nil, reason
	return r, e.put(ctx, r, actor, "request.rejected", nil)
}

func (e *Engine) pendingRequest(ctx context.Context, t custos.TenantID, id string) (*custos.Request, Input, error) {
	r, err := e.store.Request(ctx, t, id)
	if err != nil {
		return nil, Input{}, err
	}
	if r.Status != custos.PendingVerification {
		return nil, Input{}, custos.Errorf(custos.Conflict, "request %s is %s; only a request pending verification can be approved or rejected", id, r.Status)
	}
	plain, err := e.keys.OpenTenant(t, []byte(r.ID), r.PendingIdentity)
	if err != nil {
		return nil, Input{}, err
	}
	var p pendingIdentity
	if err := json.Unmarshal(plain, &p); err != nil {
		return nil, Input{}, err
	}
	return r, Input{Type: r.Type, Identity: custos.Identifier{Type: p.Type, Value: p.Value}, Suppress: p.Suppress, Source: r.Source}, nil
}
