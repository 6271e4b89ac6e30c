package server

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"time"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/audit"
	"github.com/custos-dev/custos/internal/certificate"
	"github.com/custos-dev/custos/internal/rights"
)

// requestView is a request as the API shows it. It lists each field
// shown: the engine's working state (its step, the keyed hashes an
// erasure works through, sealed identities and bodies, the signed
// certificate's bytes, the OpenDSR body fingerprint) stays inside.
type requestView struct {
	ID              string                `json:"id"`
	Tenant          custos.TenantID       `json:"tenant_id"`
	Type            custos.RequestType    `json:"type"`
	Status          custos.RequestStatus  `json:"status"`
	IdentityType    custos.IdentifierType `json:"identity_type"`
	Subject         custos.SubjectID      `json:"subject_id"`
	Source          string                `json:"source"`
	CallbackURL     string                `json:"callback_url,omitempty"`
	OpenDSR         *openDSRLinkView      `json:"opendsr,omitempty"`
	ReceivedAt      time.Time             `json:"received_at"`
	DueAt           time.Time             `json:"due_at"`
	OriginalDueAt   time.Time             `json:"original_due_at"`
	ExtendedMonths  int                   `json:"extended_months"`
	ExtensionReason string                `json:"extension_reason,omitempty"`
	UpdatedAt       time.Time             `json:"updated_at"`
	CompletedAt     time.Time             `json:"completed_at,omitzero"`
	Error           string                `json:"error,omitempty"`
	Overdue         bool                  `json:"overdue"`
	Erasure         *erasureView          `json:"erasure,omitempty"`
	Forwards        []forwardView         `json:"forwards,omitempty"`
	// Recipients is what became of the notices to recipients (Art. 19).
	Recipients []certificate.Outcome `json:"recipients,omitempty"`
	// Callbacks is what became of the status callbacks (callback_url, or
	// OpenDSR status_callback_urls), each named by its URL.
	Callbacks []certificate.Outcome `json:"callbacks,omitempty"`
}

// openDSRLinkView is what a request submitted over OpenDSR shows of it.
type openDSRLinkView struct {
	SubjectRequestID string   `json:"subject_request_id"`
	APIVersion       string   `json:"api_version"`
	CallbackURLs     []string `json:"status_callback_urls,omitempty"`
}

// erasureView is the progress of an erasure: counts and times. The
// certificate is served by its own route.
type erasureView struct {
	Suppress          bool           `json:"suppress"`
	IdentifiersErased map[string]int `json:"identifiers_erased,omitempty"`
	RecordsDeleted    map[string]int `json:"records_deleted,omitempty"`
	ErasedAt          time.Time      `json:"erased_at,omitzero"`
	ShreddedAt        time.Time      `json:"shredded_at,omitzero"`
	DeletedAt         time.Time      `json:"deleted_at,omitzero"`
	PurgedAt          time.Time      `json:"purged_at,omitzero"`
	PurgeDueAt        time.Time      `json:"purge_due_at,omitzero"`
	Verified          bool           `json:"verified"`
	CertificateReady  bool           `json:"certificate_ready"`
}

// forwardView is the progress of a request at one OpenDSR recipient.
type forwardView struct {
	RecipientID       string    `json:"recipient_id"`
	Recipient         string    `json:"recipient"`
	SubjectRequestID  string    `json:"subject_request_id"`
	Status            string    `json:"status"`
	Reason            string    `json:"reason,omitempty"`
	ResultsURL        string    `json:"results_url,omitempty"`
	SubmittedAt       time.Time `json:"submitted_at,omitzero"`
	UpdatedAt         time.Time `json:"updated_at"`
	CompletedAt       time.Time `json:"completed_at,omitzero"`
	Attempts          int       `json:"attempts"`
	NextAt            time.Time `json:"next_at,omitzero"`
	LastError         string    `json:"last_error,omitempty"`
	Polls             int       `json:"polls"`
	Callbacks         int       `json:"callbacks"`
	RejectedCallbacks int       `json:"rejected_callbacks,omitempty"`
	LastRejection     string    `json:"last_rejection,omitempty"`
}

func viewRequest(r *custos.Request, now time.Time) requestView {
	v := requestView{ID: r.ID, Tenant: r.Tenant, Type: r.Type, Status: r.Status, IdentityType: r.IdentityType, Subject: r.Subject,
		Source: r.Source, CallbackURL: r.CallbackURL, ReceivedAt: r.ReceivedAt, DueAt: r.DueAt, OriginalDueAt: r.OriginalDueAt,
		ExtendedMonths: r.ExtendedMonths, ExtensionReason: r.ExtensionReason, UpdatedAt: r.UpdatedAt, CompletedAt: r.CompletedAt,
		Error: r.Error, Overdue: rights.Overdue(r, now)}
	if l := r.OpenDSR; l != nil {
		v.OpenDSR = &openDSRLinkView{SubjectRequestID: l.SubjectRequestID, APIVersion: l.APIVersion, CallbackURLs: l.CallbackURLs}
	}
	if e := r.Erasure; e != nil {
		v.Erasure = &erasureView{Suppress: e.Suppress, IdentifiersErased: e.IdentifiersErased, RecordsDeleted: e.RecordsDeleted,
			ErasedAt: e.ErasedAt, ShreddedAt: e.ShreddedAt, DeletedAt: e.DeletedAt, PurgedAt: e.PurgedAt, PurgeDueAt: e.PurgeDueAt,
			Verified:         e.Verified,
			CertificateReady: len(e.Certificate) > 0}
	}
	for _, f := range r.Forwards {
		v.Forwards = append(v.Forwards, forwardView{RecipientID: f.RecipientID, Recipient: f.Recipient, SubjectRequestID: f.SubjectRequestID,
			Status: f.Status, Reason: f.Reason, ResultsURL: f.ResultsURL, SubmittedAt: f.SubmittedAt, UpdatedAt: f.UpdatedAt,
			CompletedAt: f.CompletedAt, Attempts: f.Attempts, NextAt: f.NextAt, LastError: f.LastError, Polls: f.Polls,
			Callbacks: f.Callbacks, RejectedCallbacks: f.RejectedCallbacks, LastRejection: f.LastRejection})
	}
	return v
}

func handleCreateRequest(log *slog.Logger, eng *rights.Engine, now func() time.Time) tenantHandler {
	type body struct {
		Type        custos.RequestType         `json:"type"`
		Identity    identityInput              `json:"identity"`
		Suppress    bool                       `json:"suppress"`
		Traits      map[string]json.RawMessage `json:"traits"`
		CallbackURL string                     `json:"callback_url"`
	}
	return func(w http.ResponseWriter, r *http.Request, t *custos.Tenant) {
		in, err := decodeBody[body](w, r, maxBody)
		if err != nil {
			writeError(w, log, err)
			return
		}
		id, err := in.Identity.parse(false)
		if err != nil {
			writeError(w, log, err)
			return
		}
		req, err := eng.Create(r.Context(), t.ID, rights.Input{Type: in.Type, Identity: id, Suppress: in.Suppress, Traits: in.Traits,
			CallbackURL: in.CallbackURL, Source: "api", Actor: audit.ActorTenant})
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
		p, err := readPage(r, "requests")
		if err != nil {
			writeError(w, log, err)
			return
		}
		// One more than the page tells whether another follows.
		f.Limit, f.After = p.Limit+1, p.Position
		list, err := eng.List(r.Context(), t.ID, f)
		if err != nil {
			writeError(w, log, err)
			return
		}
		next := ""
		if len(list) > p.Limit {
			list = list[:p.Limit]
			next = p.cursor(list[len(list)-1].ID)
		}
		at := now()
		out := make([]requestView, len(list))
		for i, req := range list {
			out[i] = viewRequest(req, at)
		}
		writeJSON(w, http.StatusOK, listPage("requests", out, next))
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
		req, err := eng.Cancel(r.Context(), t.ID, r.PathValue("id"), audit.ActorTenant)
		if err != nil {
			writeError(w, log, err)
			return
		}
		writeJSON(w, http.StatusOK, viewRequest(req, now()))
	}
}

func handleExtendRequest(log *slog.Logger, eng *rights.Engine, now func() time.Time) tenantHandler {
	return func(w http.ResponseWriter, r *http.Request, t *custos.Tenant) {
		in, err := decodeBody[struct {
			Months int    `json:"months"`
			Reason string `json:"reason"`
		}](w, r, maxBody)
		if err != nil {
			writeError(w, log, err)
			return
		}
		req, err := eng.Extend(r.Context(), t.ID, r.PathValue("id"), in.Months, in.Reason, audit.ActorTenant)
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
		req, err := eng.Approve(r.Context(), t.ID, r.PathValue("id"), audit.ActorTenant)
		if err != nil {
			writeError(w, log, err)
			return
		}
		writeJSON(w, http.StatusOK, viewRequest(req, now()))
	}
}

func handleRejectRequest(log *slog.Logger, eng *rights.Engine, now func() time.Time) tenantHandler {
	return func(w http.ResponseWriter, r *http.Request, t *custos.Tenant) {
		in, err := decodeOptionalBody[struct {
			Reason string `json:"reason"`
		}](w, r, maxBody)
		if err != nil {
			writeError(w, log, err)
			return
		}
		req, err := eng.Reject(r.Context(), t.ID, r.PathValue("id"), in.Reason, audit.ActorTenant)
		if err != nil {
			writeError(w, log, err)
			return
		}
		writeJSON(w, http.StatusOK, viewRequest(req, now()))
	}
}
