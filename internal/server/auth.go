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

// The WWW-Authenticate challenges of the 401s, one per kind of credential.
const (
	secretChallenge   = `Bearer realm="custos", Basic realm="custos"`
	writeKeyChallenge = `Basic realm="custos"`
	operatorChallenge = `Bearer realm="custos-operator"`
	metricsChallenge  = `Bearer realm="custos-metrics"`
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
// Basic with the key as user name). An OpenDSR route (dsr) answers
// failures in the OpenDSR error shape.
func requireSecret(log *slog.Logger, reg *tenants.Registry, dsr bool, next tenantHandler) http.Handler {
	ew := errorWriter(writeError)
	if dsr {
		ew = writeOpenDSRError
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := bearer(r)
		if key == "" {
			key, _, _ = r.BasicAuth()
		}
		if key == "" {
			w.Header().Set("WWW-Authenticate", secretChallenge)
			ew(w, log, custos.Errorf(custos.Unauthorized, "missing secret key: send Authorization: Bearer <secret key>"))
			return
		}
		t, ok := reg.BySecretKey(key)
		if !ok {
			if _, isWrite := reg.ByWriteKey(key); isWrite {
				ew(w, log, custos.Errorf(custos.Forbidden, "a write key can only ingest; this endpoint needs the tenant's secret key"))
				return
			}
			w.Header().Set("WWW-Authenticate", secretChallenge)
			ew(w, log, custos.Errorf(custos.Unauthorized, "unknown secret key"))
			return
		}
		if dsr {
			if err := reg.Misdirected(t); err != nil {
				ew(w, log, err)
				return
			}
		} else if misdirected(w, log, reg, t) {
			return
		}
		next(w, r, t)
	})
}

// writeKeyOf returns the write key of the request's HTTP Basic user name
// or ?writeKey=, the places it can be read from before the body.
func writeKeyOf(r *http.Request) string {
	if key, _, ok := r.BasicAuth(); ok && key != "" {
		return key
	}
	return r.URL.Query().Get("writeKey")
}

// tenantByWriteKey authenticates a write key, naming what is wrong.
func tenantByWriteKey(w http.ResponseWriter, reg *tenants.Registry, key string) (*custos.Tenant, error) {
	if key == "" {
		w.Header().Set("WWW-Authenticate", writeKeyChallenge)
		return nil, custos.Errorf(custos.Unauthorized, "missing write key: send HTTP Basic auth with the write key as user name, or \"writeKey\" in the body")
	}
	t, ok := reg.ByWriteKey(key)
	if !ok {
		w.Header().Set("WWW-Authenticate", writeKeyChallenge)
		return nil, custos.Errorf(custos.Unauthorized, "unknown write key")
	}
	return t, nil
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

// tokenMatches reports, in constant time, whether the request's Bearer
// token is one of tokens (empty tokens match nothing).
func tokenMatches(r *http.Request, tokens ...string) bool {
	got := sha256.Sum256([]byte(bearer(r)))
	ok := 0
	for _, tok := range tokens {
		want := sha256.Sum256([]byte(tok))
		if tok != "" {
			ok |= subtle.ConstantTimeCompare(got[:], want[:])
		}
	}
	return ok == 1
}

// requireOperator authenticates the operator token in constant time.
func requireOperator(log *slog.Logger, token string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !tokenMatches(r, token) {
			w.Header().Set("WWW-Authenticate", operatorChallenge)
			writeError(w, log, custos.Errorf(custos.Unauthorized, "missing or wrong operator token: send Authorization: Bearer <operator token>"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// requireMetrics lets a scraper in with the metrics token, or the
// operator token.
func requireMetrics(log *slog.Logger, metricsToken, operatorToken string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !tokenMatches(r, metricsToken, operatorToken) {
			w.Header().Set("WWW-Authenticate", metricsChallenge)
			writeError(w, log, custos.Errorf(custos.Unauthorized, "missing or wrong metrics token: send Authorization: Bearer <metrics token> (or the operator token), or scrape the metrics address"))
			return
		}
		next.ServeHTTP(w, r)
	})
}
