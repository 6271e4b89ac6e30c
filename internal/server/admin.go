package server

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/audit"
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
}

func viewTenant(t *custos.Tenant, k tenants.Keys) tenantView {
	v := tenantView{ID: t.ID, Name: t.Name, Region: t.Region, CreatedAt: t.CreatedAt, WriteKey: k.WriteKey, SecretKey: k.SecretKey, IdentitySecret: k.IdentitySecret, CallbackSecret: k.CallbackSecret, DeliverySecret: k.DeliverySecret}
	if !t.KeysRotatedAt.IsZero() {
		v.KeysRotatedAt = &t.KeysRotatedAt
	}
	return v
}

// decodeJSON reads a small JSON request body into v, naming what is wrong.
func decodeJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return custos.Errorf(custos.Invalid, "request body: %v", err)
	}
	return nil
}

func handleCreateTenant(log *slog.Logger, reg *tenants.Registry, al *audit.Log) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Name   string `json:"name"`
			Region string `json:"region"`
		}
		if err := decodeJSON(r, &in); err != nil {
			writeError(w, log, err)
			return
		}
		t, keys, err := reg.Create(r.Context(), in.Name, in.Region)
		if err != nil {
			writeError(w, log, err)
			return
		}
		log.Info("tenant created", "tenant", t.ID, "region", t.Region)
		details := map[string]string{"tenant": t.ID.String(), "region": t.Region}
		recordDone(r, log, al, custos.OperatorChain, audit.Entry{Actor: "operator", Action: "tenant.create", Details: details})
		recordDone(r, log, al, t.ID, audit.Entry{Actor: "operator", Action: "tenant.create", Details: details})
		writeJSON(w, http.StatusCreated, viewTenant(t, keys))
	})
}

func handleListTenants(reg *tenants.Registry) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		out := []tenantView{}
		for _, t := range reg.List() {
			out = append(out, viewTenant(t, tenants.Keys{}))
		}
		writeJSON(w, http.StatusOK, map[string]any{"tenants": out})
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

func handleRotateKeys(log *slog.Logger, reg *tenants.Registry, al *audit.Log) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t, err := tenantParam(r, reg)
		if err != nil {
			writeError(w, log, err)
			return
		}
		t, keys, err := reg.Rotate(r.Context(), t.ID)
		if err != nil {
			writeError(w, log, err)
			return
		}
		log.Info("tenant keys rotated", "tenant", t.ID)
		details := map[string]string{"tenant": t.ID.String()}
		recordDone(r, log, al, custos.OperatorChain, audit.Entry{Actor: "operator", Action: "tenant.keys.rotate", Details: details})
		recordDone(r, log, al, t.ID, audit.Entry{Actor: "operator", Action: "tenant.keys.rotate", Details: details})
		writeJSON(w, http.StatusOK, viewTenant(t, keys))
	})
}

func handleDeleteTenant(log *slog.Logger, reg *tenants.Registry, al *audit.Log, now func() time.Time) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t, err := tenantParam(r, reg)
		if err != nil {
			writeError(w, log, err)
			return
		}
		if err := reg.Delete(r.Context(), t.ID); err != nil {
			writeError(w, log, err)
			return
		}
		log.Info("tenant deleted", "tenant", t.ID)
		details := map[string]string{"tenant": t.ID.String()}
		recordDone(r, log, al, t.ID, audit.Entry{Actor: "operator", Action: "tenant.delete", Details: details})
		recordDone(r, log, al, custos.OperatorChain, audit.Entry{Actor: "operator", Action: "tenant.delete", Details: details})
		writeJSON(w, http.StatusOK, map[string]any{"id": t.ID, "deleted": true, "deleted_at": now().UTC()})
	})
}
