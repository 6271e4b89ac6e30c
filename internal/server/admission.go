package server

import (
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/admission"
)

// Admission is what the server consults before admitting work; a nil
// *Admission, or a nil Limiter, admits everything.
type Admission struct {
	// Limiter holds the rate limits of ingestion (in messages) and of the
	// management API (in requests), per tenant and per key.
	Limiter *admission.Limiter
	// OnLimited is told of each request answered 429 (for a metric).
	OnLimited func(t custos.TenantID, scope admission.Scope)
}

// keyID names a credential in the limiter without holding it.
func keyID(key string) string {
	h := sha256.Sum256([]byte(key))
	return hex.EncodeToString(h[:12])
}

// limit returns a RateLimited error, with Retry-After set on w, when t's
// or key's bucket of scope is short of cost; nil when the work is
// admitted. cost 0 only checks that the buckets are not empty, taking
// nothing (before a body is read).
func (a *Admission) limit(w http.ResponseWriter, log *slog.Logger, scope admission.Scope, t *custos.Tenant, key string, cost int) error {
	if a == nil || a.Limiter == nil {
		return nil
	}
	var ok bool
	var wait time.Duration
	if cost == 0 {
		var empty bool
		empty, wait = a.Limiter.Exhausted(scope, t.ID.String(), keyID(key))
		ok = !empty
	} else {
		ok, wait = a.Limiter.Allow(scope, t.ID.String(), keyID(key), float64(cost))
	}
	if ok {
		return nil
	}
	if a.OnLimited != nil {
		a.OnLimited(t.ID, scope)
	}
	secs := admission.RetryAfter(wait)
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	if log != nil {
		log.Debug("rate limited", "tenant", t.ID.String(), "scope", string(scope))
	}
	return custos.Errorf(custos.RateLimited, "rate limit of the tenant's %s exceeded: retry after %ds", scope, secs)
}

// limitAPI rate-limits the management API per tenant and per secret key,
// answering in the route's error shape (OpenDSR's for OpenDSR routes).
func limitAPI(log *slog.Logger, a *Admission, dsr bool, next tenantHandler) tenantHandler {
	if a == nil || a.Limiter == nil {
		return next
	}
	ew := errorWriter(writeError)
	if dsr {
		ew = writeOpenDSRError
	}
	return func(w http.ResponseWriter, r *http.Request, t *custos.Tenant) {
		key := bearer(r)
		if key == "" {
			key, _, _ = r.BasicAuth()
		}
		if err := a.limit(w, log, admission.API, t, key, 1); err != nil {
			ew(w, log, err)
			return
		}
		next(w, r, t)
	}
}
