package server

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/opendsr"
)

// statusOf is the one place where error codes become HTTP statuses.
func statusOf(c custos.Code) int {
	switch c {
	case custos.Invalid:
		return http.StatusBadRequest
	case custos.Unauthorized:
		return http.StatusUnauthorized
	case custos.Forbidden:
		return http.StatusForbidden
	case custos.NotFound:
		return http.StatusNotFound
	case custos.Conflict:
		return http.StatusConflict
	case custos.TooLarge:
		return http.StatusRequestEntityTooLarge
	case custos.Unavailable:
		return http.StatusServiceUnavailable
	case custos.RateLimited:
		return http.StatusTooManyRequests
	case custos.Gone, custos.Shredded:
		return http.StatusGone
	case custos.Misdirected:
		return http.StatusMisdirectedRequest
	case custos.NotImplemented:
		return http.StatusNotImplemented
	}
	return http.StatusInternalServerError
}

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    custos.Code `json:"code"`
	Message string      `json:"message"`
	// TenantRegion and NodeRegion are set on a Misdirected answer: where
	// the tenant's requests belong, and what this node serves.
	TenantRegion string `json:"tenant_region,omitempty"`
	NodeRegion   string `json:"node_region,omitempty"`
}

// writeError answers with the caller-safe part of err; the internal cause
// is logged, without personal data.
func writeError(w http.ResponseWriter, log *slog.Logger, err error) {
	code := custos.ErrorCode(err)
	status := statusOf(code)
	if status >= 500 && log != nil {
		log.Error("request failed", "code", code, "err", err)
	}
	if (code == custos.Unavailable || code == custos.RateLimited) && w.Header().Get("Retry-After") == "" {
		// A rate limit sets its own wait.
		w.Header().Set("Retry-After", "1")
	}
	challenge(w, status)
	writeJSON(w, status, errorBody{errorDetail{Code: code, Message: custos.ErrorMessage(err)}})
}

// errorWriter answers an error in one of the API's error shapes: Custos'
// (writeError) or OpenDSR's (writeOpenDSRError).
type errorWriter func(w http.ResponseWriter, log *slog.Logger, err error)

// defaultChallenge is the WWW-Authenticate of a 401 whose route set none.
const defaultChallenge = `Bearer realm="custos"`

// challenge makes sure a 401 carries a WWW-Authenticate header (RFC 9110
// requires one); the authentication in front of a route sets its own.
func challenge(w http.ResponseWriter, status int) {
	if status == http.StatusUnauthorized && w.Header().Get("WWW-Authenticate") == "" {
		w.Header().Set("WWW-Authenticate", defaultChallenge)
	}
}

// codeMethodNotAllowed is the error code of a 405: the path exists, not
// with this method. No domain error has it, so it lives here.
const codeMethodNotAllowed custos.Code = "method_not_allowed"

// jsonUnmatched answers requests that match no route in JSON, as every
// other error is, instead of the mux's plain text: 404 for an unknown
// path, 405 (with Allow) for a known path and another method. Paths under
// /opendsr/ answer in the OpenDSR error shape, signed.
func jsonUnmatched(d Deps, mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/opendsr/") && d.OpenDSRSigner != nil {
			// Rare: look the route up first, so that an unmatched answer
			// can be signed like the others.
			h, pattern := mux.Handler(r)
			if pattern != "" {
				mux.ServeHTTP(w, r)
				return
			}
			version := openDSRv2.name
			if strings.HasPrefix(r.URL.Path, openDSRv1.base+"/") {
				version = openDSRv1.name
			}
			signOpenDSR(d, version, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				h.ServeHTTP(&unmatchedWriter{ResponseWriter: w, r: r, log: d.Log}, r)
			})).ServeHTTP(w, r)
			return
		}
		// The mux sets r.Pattern when a route matches; a 404 or 405 it
		// writes with no pattern is its own plain-text one.
		mux.ServeHTTP(&unmatchedWriter{ResponseWriter: w, r: r, log: d.Log}, r)
	})
}

// unmatchedWriter replaces the plain-text body of the mux's 404 and 405.
type unmatchedWriter struct {
	http.ResponseWriter
	r        *http.Request
	log      *slog.Logger
	replaced bool
}

func (u *unmatchedWriter) WriteHeader(code int) {
	if u.r.Pattern != "" || code != http.StatusNotFound && code != http.StatusMethodNotAllowed {
		u.ResponseWriter.WriteHeader(code)
		return
	}
	u.replaced = true
	h := u.ResponseWriter.Header()
	h.Del("X-Content-Type-Options")
	h.Del("Content-Length")
	var err error
	if code == http.StatusNotFound {
		err = custos.Errorf(custos.NotFound, "no route %s %s; see docs/api.md for the routes", u.r.Method, u.r.URL.Path)
	} else {
		err = &custos.Error{Code: codeMethodNotAllowed, Message: fmt.Sprintf("%s is not allowed on %s; allowed: %s", u.r.Method, u.r.URL.Path, h.Get("Allow"))}
	}
	if strings.HasPrefix(u.r.URL.Path, "/opendsr/") {
		e := opendsr.NewError(code, custos.ErrorMessage(err))
		writeJSON(u.ResponseWriter, code, e.Response())
		return
	}
	writeJSON(u.ResponseWriter, code, errorBody{errorDetail{Code: custos.ErrorCode(err), Message: custos.ErrorMessage(err)}})
}

func (u *unmatchedWriter) Write(b []byte) (int, error) {
	if u.replaced {
		return len(b), nil
	}
	return u.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection (streamed
// results flush through it).
func (u *unmatchedWriter) Unwrap() http.ResponseWriter { return u.ResponseWriter }

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}
