package server

import (
	"encoding/json"
	"log/slog"
	"net/http"

	"github.com/custos-dev/custos"
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
	if code == custos.Unavailable || code == custos.RateLimited {
		w.Header().Set("Retry-After", "1")
	}
	writeJSON(w, status, errorBody{errorDetail{Code: code, Message: custos.ErrorMessage(err)}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}
