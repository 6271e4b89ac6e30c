package server

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/tenants"
)

// tenantView is a tenant as the operator API shows it; keys appear only in
// the answer that made them.
type tenantView struct {
	ID            custos.TenantID `json:"id"`
	Name          string          `json:"name"`
	Region        string          `json:"region"`
	CreatedAt     time.Time       `json:"created_at"`
	KeysRotatedAt *time.Time      `json:"keys_rotated_at,omitempty"`
	WriteKey      string          `json:"write_key,omitempty"`
	SecretKey     string          `json:"secret_key,omitempty"`
	// IdentitySecret signs user ids for /v1/privacy (shown with new keys).
	IdentitySecret string `json:"identity_verification_secret,omitempty"`
	CallbackSecret string `json:"callback_signing_secret,omitempty"`
	DeliverySecret string `json:"delivery_signing_secret,omitempty"`
	// RateLimits are the tenant's own rate limits, set by the operator.
	RateLimits *custos.RateLimits `json:"rate_limits,omitempty"`
}

func viewTenant(t *custos.Tenant, k tenants.Keys) tenantView {
	v := tenantView{ID: t.ID, Name: t.Name, Region: t.Region, CreatedAt: t.CreatedAt, WriteKey: k.WriteKey, SecretKey: k.SecretKey, IdentitySecret: k.IdentitySecret, CallbackSecret: k.CallbackSecret, DeliverySecret: k.DeliverySecret}
	if !t.KeysRotatedAt.IsZero() {
		v.KeysRotatedAt = &t.KeysRotatedAt
	}
	v.RateLimits = t.RateLimits
	return v
}

func handleCreateTenant(log *slog.Logger, reg *tenants.Audited) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in, err := decodeBody[struct {
			Name   string `json:"name"`
			Region string `json:"region"`
		}](w, r, maxBody)
		if err != nil {
			writeError(w, log, err)
			return
		}
		t, keys, err := reg.Create(r.Context(), in.Name, in.Region)
		if err != nil {
			writeError(w, log, err)
			return
		}
		writeJSON(w, http.StatusCreated, viewTenant(t, keys))
	})
}

func handleListTenants(log *slog.Logger, reg *tenants.Registry) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := readPage(r, "tenants")
		if err != nil {
			writeError(w, log, err)
			return
		}
		list, next := pageSlice(reg.List(), p, func(t *custos.Tenant) string { return t.ID.String() })
		out := make([]tenantView, len(list))
		for i, t := range list {
			out[i] = viewTenant(t, tenants.Keys{})
		}
		writeJSON(w, http.StatusOK, listPage("tenants", out, next))
	})
}

func tenantParam(r *http.Request, reg *tenants.Registry) (*custos.Tenant, error) {
	id, err := custos.ParseTenantID(r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	t, ok := reg.Get(id)
	if !ok {
		return nil, custos.Errorf(custos.NotFound, "no tenant %s", id)
	}
	return t, nil
}

func handleGetTenant(log *slog.Logger, reg *tenants.Registry) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t, err := tenantParam(r, reg)
		if err != nil {
			writeError(w, log, err)
			return
		}
		writeJSON(w, http.StatusOK, viewTenant(t, tenants.Keys{}))
	})
}

func handleRotateKeys(log *slog.Logger, reg *tenants.Registry, ad *tenants.Audited) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t, err := tenantParam(r, reg)
		if err != nil {
			writeError(w, log, err)
			return
		}
		t, keys, err := ad.Rotate(r.Context(), t.ID)
		if err != nil {
			writeError(w, log, err)
			return
		}
		writeJSON(w, http.StatusOK, viewTenant(t, keys))
	})
}

// handleSetRateLimits replaces a tenant's own rate limits with the body
// (zero fields, or {}: the node's).
func handleSetRateLimits(log *slog.Logger, reg *tenants.Registry, ad *tenants.Audited) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t, err := tenantParam(r, reg)
		if err != nil {
			writeError(w, log, err)
			return
		}
		in, err := decodeBody[custos.RateLimits](w, r, maxBody)
		if err != nil {
			writeError(w, log, err)
			return
		}
		t, err = ad.SetRateLimits(r.Context(), t.ID, &in)
		if err != nil {
			writeError(w, log, err)
			return
		}
		writeJSON(w, http.StatusOK, viewTenant(t, tenants.Keys{}))
	})
}

// handleDeleteTenant deletes a tenant and answers 204, as every DELETE
// of the API does.
func handleDeleteTenant(log *slog.Logger, reg *tenants.Registry, ad *tenants.Audited) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t, err := tenantParam(r, reg)
		if err != nil {
			writeError(w, log, err)
			return
		}
		if err := ad.Delete(r.Context(), t.ID); err != nil {
			writeError(w, log, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}
