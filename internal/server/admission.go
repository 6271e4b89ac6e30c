package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/admission"
	"github.com/custos-dev/custos/internal/consent"
	"github.com/custos-dev/custos/internal/ingest"
)

// Admission is what the server consults before admitting work; a nil
// *Admission, or nil fields, admit everything.
type Admission struct {
	// Limiter holds the rate limits of ingestion (in messages) and of the
	// management API (in requests), per tenant and per key.
	Limiter *admission.Limiter
	// Gate shares the ingest writer between tenants, one chunk of
	// messages per admission.
	Gate *admission.Gate
	// Chunk is how many messages of a batch enter the writer per
	// admission (default 32), so a tenant's large batches interleave with
	// other tenants' small ones.
	Chunk int
	// OnLimited is told of each request answered 429 (for a metric).
	OnLimited func(t custos.TenantID, scope admission.Scope)
}

// keyID names a credential in the limiter without holding it.
func keyID(key string) string {
	h := sha256.Sum256([]byte(key))
	return hex.EncodeToString(h[:12])
}

// limited answers 429 with Retry-After when t's or key's bucket of scope
// is short of cost, and reports whether it did. cost 0 only checks that
// the buckets are not empty, taking nothing (before a body is read).
func (a *Admission) limited(w http.ResponseWriter, log *slog.Logger, scope admission.Scope, t *custos.Tenant, key string, cost int) bool {
	if a == nil || a.Limiter == nil {
		return false
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
		return false
	}
	if a.OnLimited != nil {
		a.OnLimited(t.ID, scope)
	}
	secs := admission.RetryAfter(wait)
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	writeJSON(w, http.StatusTooManyRequests, errorBody{errorDetail{Code: custos.RateLimited,
		Message: "rate limit of the tenant's " + string(scope) + " exceeded: retry after " + strconv.Itoa(secs) + "s"}})
	if log != nil {
		log.Debug("rate limited", "tenant", t.ID.String(), "scope", string(scope))
	}
	return true
}

// ingest stores msgs through pipe, admitted by the fair gate one chunk at
// a time. The results of the chunks add up; if one fails the caller gets
// the error and retries the whole batch, which deduplication makes safe.
func (a *Admission) ingest(ctx context.Context, pipe *ingest.Pipeline, t custos.TenantID, msgs []custos.Message, pol *consent.Policy) (ingest.Result, error) {
	if a == nil || a.Gate == nil {
		return pipe.IngestWith(ctx, t, msgs, pol)
	}
	chunk := a.Chunk
	if chunk <= 0 {
		chunk = 32
	}
	var total ingest.Result
	for start := 0; start < len(msgs); start += chunk {
		release, err := a.Gate.Acquire(ctx, t.String())
		if err != nil {
			return ingest.Result{}, &custos.Error{Code: custos.Unavailable, Message: "request cancelled while waiting for the writer", Err: err}
		}
		r, err := pipe.IngestWith(ctx, t, msgs[start:min(start+chunk, len(msgs))], pol)
		release()
		if err != nil {
			return ingest.Result{}, err
		}
		total.Stored += r.Stored
		total.Duplicates += r.Duplicates
		total.Suppressed += r.Suppressed
		total.Restricted += r.Restricted
		total.Erased += r.Erased
		total.NoConsent += r.NoConsent
		total.Consents += r.Consents
		total.Unmapped += r.Unmapped
	}
	return total, nil
}

// limitAPI rate-limits the management API per tenant and per secret key.
func limitAPI(log *slog.Logger, a *Admission, next tenantHandler) tenantHandler {
	if a == nil || a.Limiter == nil {
		return next
	}
	return func(w http.ResponseWriter, r *http.Request, t *custos.Tenant) {
		key := bearer(r)
		if key == "" {
			key, _, _ = r.BasicAuth()
		}
		if a.limited(w, log, admission.API, t, key, 1) {
			return
		}
		next(w, r, t)
	}
}
