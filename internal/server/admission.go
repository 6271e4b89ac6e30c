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
// admitted. cost 0 is the test before a body is read: it takes one token
// (Limiter.Reserve), and limitReserved judges the request once its cost
// is known.
func (a *Admission) limit(w http.ResponseWriter, log *slog.Logger, scope admission.Scope, t *custos.Tenant, key string, cost int) error {
	return a.judge(w, log, scope, t, key, cost, false)
}

// limitReserved is limit for a request whose test before its body was
// read (limit with cost 0) took a token: that token is given back and the
// whole cost judged.
func (a *Admission) limitReserved(w http.ResponseWriter, log *slog.Logger, scope admission.Scope, t *custos.Tenant, key string, cost int) error {
	return a.judge(w, log, scope, t, key, cost, true)
}

func (a *Admission) judge(w http.ResponseWriter, log *slog.Logger, scope admission.Scope, t *custos.Tenant, key string, cost int, reserved bool) error {
	if a == nil || a.Limiter == nil {
		return nil
	}
	lim := tenantLimits(a.Limiter.Limits(scope), scope, t.RateLimits)
	var ok bool
	var wait time.Duration
	switch {
	case reserved:
		ok, wait = a.Limiter.AllowReservedWith(scope, lim, t.ID.String(), keyID(key), float64(cost))
	case cost == 0:
		ok, wait = a.Limiter.ReserveWith(scope, lim, t.ID.String(), keyID(key))
	default:
		ok, wait = a.Limiter.AllowWith(scope, lim, t.ID.String(), keyID(key), float64(cost))
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

// tenantLimits returns the node's limits of scope with the tenant's own
// (set by the operator) in place of each field they set.
func tenantLimits(node admission.Limits, scope admission.Scope, own *custos.RateLimits) admission.Limits {
	if own == nil {
		return node
	}
	perSecond, burst := own.APIPerSecond, own.APIBurst
	if scope == admission.Ingest {
		perSecond, burst = own.IngestPerSecond, own.IngestBurst
	}
	for _, r := range []*admission.Rate{&node.Tenant, &node.Key} {
		if perSecond > 0 {
			r.PerSecond = perSecond
		}
		if burst > 0 {
			r.Burst = burst
		}
	}
	return node
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
