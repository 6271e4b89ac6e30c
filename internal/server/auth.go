package server

import (
	"crypto/sha256"
	"crypto/subtle"
	"log/slog"
	"net/http"
	"strings"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/tenants"
)

// tenantHandler is a handler that acts for one authenticated tenant.
type tenantHandler func(w http.ResponseWriter, r *http.Request, t *custos.Tenant)

// bearer returns the token of an "Authorization: Bearer" header.
func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

// requireSecret authenticates a tenant's secret key (Bearer, or HTTP
// Basic with the key as user name).
func requireSecret(log *slog.Logger, reg *tenants.Registry, next tenantHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := bearer(r)
		if key == "" {
			key, _, _ = r.BasicAuth()
		}
		if key == "" {
			writeError(w, log, custos.Errorf(custos.Unauthorized, "missing secret key: send Authorization: Bearer <secret key>"))
			return
		}
		t, ok := reg.BySecretKey(key)
		if !ok {
			if _, isWrite := reg.ByWriteKey(key); isWrite {
				writeError(w, log, custos.Errorf(custos.Forbidden, "a write key can only ingest; this endpoint needs the tenant's secret key"))
				return
			}
			writeError(w, log, custos.Errorf(custos.Unauthorized, "unknown secret key"))
			return
		}
		if misdirected(w, log, reg, t) {
			return
		}
		next(w, r, t)
	})
}

// misdirected answers 421 Misdirected Request, naming both regions, when
// t belongs to another region than this node's, and reports whether it did.
// Every tenant-authenticated path calls it before it stores or reads
// anything of the tenant.
func misdirected(w http.ResponseWriter, log *slog.Logger, reg *tenants.Registry, t *custos.Tenant) bool {
	err := reg.Misdirected(t)
	if err == nil {
		return false
	}
	writeJSON(w, statusOf(custos.Misdirected), errorBody{errorDetail{Code: custos.Misdirected, Message: custos.ErrorMessage(err),
		TenantRegion: t.Region, NodeRegion: reg.Region()}})
	return true
}

// requireOperator authenticates the operator token in constant time.
func requireOperator(log *slog.Logger, token string, next http.Handler) http.Handler {
	want := sha256.Sum256([]byte(token))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := sha256.Sum256([]byte(bearer(r)))
		if token == "" || subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			writeError(w, log, custos.Errorf(custos.Unauthorized, "missing or wrong operator token: send Authorization: Bearer <operator token>"))
			return
		}
		next.ServeHTTP(w, r)
	})
}
