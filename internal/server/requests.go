package server

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/certificate"
	"github.com/custos-dev/custos/internal/rights"
)

// requestView is a request as the API shows it.
type requestView struct {
	*custos.Request
	Overdue bool `json:"overdue"`
	// Recipients is what became of the notices to recipients (Art. 19).
	Recipients []certificate.Outcome `json:"recipients,omitempty"`
	// Callbacks is what became of the status callbacks (callback_url, or
	// OpenDSR status_callback_urls), each named by its URL.
	Callbacks []certificate.Outcome `json:"callbacks,omitempty"`
}

func viewRequest(r *custos.Request, now time.Time) requestView {
	shown := *r
	shown.PendingIdentity = nil // sealed, and for the engine only
	shown.ForwardBodies = nil   // sealed, and for the engine only
	return requestView{Request: &shown, Overdue: rights.Overdue(r, now)}
}

func handleCreateRequest(log *slog.Logger, eng *rights.Engine, now func() time.Time) tenantHandler {
	return func(w http.ResponseWriter, r *http.Request, t *custos.Tenant) {
		var in struct {
			Type     custos.RequestType `json:"type"`
			Identity struct {
				Type  string `json:"type"`
				Value string `json:"value"`
			} `json:"identity"`
			Suppress    bool                       `json:"suppress"`
			Traits      map[string]json.RawMessage `json:"traits"`
			CallbackURL string                     `json:"callback_url"`
		}
		if err := decodeJSON(r, &in); err != nil {
			writeError(w, log, err)
			return
		}
		var id custos.Identifier
		if in.Identity.Type != "" {
			typ, err := custos.ParseIdentifierType(in.Identity.Type)
			if err != nil {
				writeError(w, log, custos.Errorf(custos.Invalid, "identity.type: %s", custos.ErrorMessage(err)))
				return
			}
			id = custos.Identifier{Type: typ, Value: in.Identity.Value}
		}
		if in.Suppress && in.Type != custos.Erasure {
			writeError(w, log, custos.Errorf(custos.Invalid, "suppress applies to erasure requests only; use a suppress request"))
			return
		}
		if in.CallbackURL != "" {
			if u, err := url.Parse(in.CallbackURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
				writeError(w, log, custos.Errorf(custos.Invalid, "callback_url must be an absolute http or https URL"))
				return
			}
		}
		if len(in.Traits) > 0 && in.Type != custos.Rectify {
			writeError(w, log, custos.Errorf(custos.Invalid, "traits apply to rectify requests only"))
			return
		}
		req, err := eng.Create(r.Context(), t.ID, rights.Input{Type: in.Type, Identity: id, Suppress: in.Suppress, Traits: in.Traits, CallbackURL: in.CallbackURL, Source: "api", Actor: "tenant:secret-key"})
		if err != nil {
			writeError(w, log, err)
			return
		}
		writeJSON(w, http.StatusCreated, viewRequest(req, now()))
	}
}

func handleListRequests(log *slog.Logger, eng *rights.Engine, now func() time.Time) tenantHandler {
	return func(w http.ResponseWriter, r *http.Request, t *custos.Tenant) {
		q := r.URL.Query()
		f := rights.Filter{Status: custos.RequestStatus(q.Get("status")), Type: custos.RequestType(q.Get("type"))}
		switch q.Get("overdue") {
		case "", "false":
		case "true":
			f.Overdue = true
		default:
			writeError(w, log, custos.Errorf(custos.Invalid, "overdue must be true or false"))
			return
		}
		if v := q.Get("limit"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 1000 {
				writeError(w, log, custos.Errorf(custos.Invalid, "limit must be a whole number from 1 to 1000"))
				return
			}
			f.Limit = n
		}
		list, err := eng.List(r.Context(), t.ID, f)
		if err != nil {
			writeError(w, log, err)
			return
		}
		at := now()
		out := make([]requestView, len(list))
		for i, req := range list {
			out[i] = viewRequest(req, at)
		}
		writeJSON(w, http.StatusOK, map[string]any{"requests": out})
	}
}

func handleGetRequest(log *slog.Logger, eng *rights.Engine, now func() time.Time) tenantHandler {
	return func(w http.ResponseWriter, r *http.Request, t *custos.Tenant) {
		req, err := eng.Get(r.Context(), t.ID, r.PathValue("id"))
		if err != nil {
			writeError(w, log, err)
			return
		}
		v := viewRequest(req, now())
		if v.Recipients, err = eng.Outcomes(r.Context(), req); err != nil {
			writeError(w, log, err)
			return
		}
		if v.Callbacks, err = eng.Callbacks(r.Context(), req); err != nil {
			writeError(w, log, err)
			return
		}
		writeJSON(w, http.StatusOK, v)
	}
}

func handleCancelRequest(log *slog.Logger, eng *rights.Engine, now func() time.Time) tenantHandler {
	return func(w http.ResponseWriter, r *http.Request, t *custos.Tenant) {
		req, err := eng.Cancel(r.Context(), t.ID, r.PathValue("id"), "tenant:secret-key")
		if err != nil {
			writeError(w, log, err)
			return
		}
		writeJSON(w, http.StatusOK, viewRequest(req, now()))
	}
}

func handleExtendRequest(log *slog.Logger, eng *rights.Engine, now func() time.Time) tenantHandler {
	return func(w http.ResponseWriter, r *http.Request, t *custos.Tenant) {
		var in struct {
			Months int    `json:"months"`
			Reason string `json:"reason"`
		}
		if err := decodeJSON(r, &in); err != nil {
			writeError(w, log, err)
			return
		}
		req, err := eng.Extend(r.Context(), t.ID, r.PathValue("id"), in.Months, in.Reason, "tenant:secret-key")
		if err != nil {
			writeError(w, log, err)
			return
		}
		writeJSON(w, http.StatusOK, viewRequest(req, now()))
	}
}

// handleCertificate returns the signed certificate of a completed
// erasure, verifiable offline with custos certificate verify.
func handleCertificate(log *slog.Logger, eng *rights.Engine) tenantHandler {
	return func(w http.ResponseWriter, r *http.Request, t *custos.Tenant) {
		cert, err := eng.Certificate(r.Context(), t.ID, r.PathValue("id"))
		if err != nil {
			writeError(w, log, err)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(cert)
	}
}

// handleResult streams the result of an access or portability request:
// ?format=json (default), or for portability ndjson or zip.
func handleResult(log *slog.Logger, eng *rights.Engine) tenantHandler {
	return func(w http.ResponseWriter, r *http.Request, t *custos.Tenant) {
		started := false
		err := eng.Result(r.Context(), t.ID, r.PathValue("id"), r.URL.Query().Get("format"), w, func(ct, filename string) {
			w.Header().Set("Content-Type", ct)
			w.Header().Set("Content-Disposition", `attachment; filename="`+filename+`"`)
			started = true
		})
		if err != nil {
			if started {
				// The status is sent; a broken stream is all that can tell
				// the client, and the log the operator.
				log.Error("result stream failed", "tenant", t.ID, "err", err)
				return
			}
			writeError(w, log, err)
		}
	}
}

func handleApproveRequest(log *slog.Logger, eng *rights.Engine, now func() time.Time) tenantHandler {
	return func(w http.ResponseWriter, r *http.Request, t *custos.Tenant) {
		req, err := eng.Approve(r.Context(), t.ID, r.PathValue("id"), "tenant:secret-key")
		if err != nil {
			writeError(w, log, err)
			return
		}
		writeJSON(w, http.StatusOK, viewRequest(req, now()))
	}
}

func handleRejectRequest(log *slog.Logger, eng *rights.Engine, now func() time.Time) tenantHandler {
	return func(w http.ResponseWriter, r *http.Request, t *custos.Tenant) {
		var in struct {
			Reason string `json:"reason"`
		}
		if r.ContentLength != 0 {
			if err := decodeJSON(r, &in); err != nil {
				writeError(w, log, err)
				return
			}
		}
		req, err := eng.Reject(r.Context(), t.ID, r.PathValue("id"), in.Reason, "tenant:secret-key")
		if err != nil {
			writeError(w, log, err)
			return
		}
		writeJSON(w, http.StatusOK, viewRequest(req, now()))
	}
}
