package server

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/audit"
	"github.com/custos-dev/custos/internal/opendsr"
	"github.com/custos-dev/custos/internal/rights"
)

// maxOpenDSRBody bounds a submitted request: a handful of identities and
// callback URLs, far below this.
const maxOpenDSRBody = 1 << 20

// openDSRActor is who the audit log names for requests a controller sends.
const openDSRActor = audit.ActorOpenDSRController

// signBodies signs every response body of the OpenDSR API, errors from
// the authentication in front of the handlers included: the controller
// checks X-OpenDSR-Signature on each answer against the processor
// certificate. Bodies are small, so each is buffered whole and the
// signature covers exactly the bytes sent.
func signBodies(log *slog.Logger, signer opendsr.HeaderSigner, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		buf := &bufferedResponse{header: w.Header()}
		next.ServeHTTP(buf, r)
		body := buf.body.Bytes()
		h, err := signer.SignHeaders(body)
		if err != nil {
			// An unsigned answer would be rejected by the controller anyway;
			// say so rather than send it.
			log.Error("sign opendsr response", "err", err)
			body, _ = json.Marshal(opendsr.NewError(http.StatusInternalServerError, "the response could not be signed").Response())
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusInternalServerError)
			w.Write(body)
			return
		}
		for k, vs := range h {
			w.Header()[k] = vs
		}
		if buf.status == 0 {
			buf.status = http.StatusOK
		}
		w.WriteHeader(buf.status)
		w.Write(body)
	})
}

// bufferedResponse holds a response until it is signed.
type bufferedResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (b *bufferedResponse) Header() http.Header { return b.header }

func (b *bufferedResponse) WriteHeader(code int) {
	if b.status == 0 {
		b.status = code
	}
}

func (b *bufferedResponse) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	return b.body.Write(p)
}

// writeOpenDSRError answers in the specification's error shape. Custos
// errors keep their status and their caller-safe message.
func writeOpenDSRError(w http.ResponseWriter, log *slog.Logger, err error) {
	var e *opendsr.Error
	if !errors.As(err, &e) {
		status := statusOf(custos.ErrorCode(err))
		if status >= 500 {
			log.Error("opendsr request failed", "code", custos.ErrorCode(err), "err", err)
		}
		e = opendsr.NewError(status, custos.ErrorMessage(err))
	}
	challenge(w, e.Code)
	writeJSON(w, e.Code, e.Response())
}

// baseURL is the scheme and host the client reached this node by.
func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// openDSRVersion is one version of the protocol's routes.
type openDSRVersion struct {
	name string // "v2" or "v1", as Route.OpenDSR
	api  string // api_version
	base string // path prefix
	// requests is the path of the request collection under base.
	requests string
}

var (
	openDSRv2 = openDSRVersion{name: "v2", api: opendsr.APIVersion, base: "/opendsr/v2", requests: "/requests"}
	openDSRv1 = openDSRVersion{name: "v1", api: opendsr.APIVersionV1, base: "/opendsr/v1", requests: "/opengdpr_requests"}
)

func handleOpenDSRDiscovery(v openDSRVersion) tenantHandler {
	return func(w http.ResponseWriter, r *http.Request, _ *custos.Tenant) {
		d := opendsr.Discovery{
			APIVersion:                   v.api,
			SupportedSubjectRequestTypes: []string{opendsr.TypeAccess, opendsr.TypePortability, opendsr.TypeErasure},
			ProcessorCertificate:         baseURL(r) + v.base + "/certificate",
		}
		for _, typ := range []string{opendsr.IdentityControllerCustomerID, opendsr.IdentityEmail,
			opendsr.IdentityAndroidAdvertisingID, opendsr.IdentityIOSAdvertisingID,
			opendsr.IdentityIOSVendorID, opendsr.IdentityAndroidID} {
			d.SupportedIdentities = append(d.SupportedIdentities, opendsr.SupportedIdentity{IdentityType: typ, IdentityFormat: opendsr.FormatRaw})
		}
		// Only e-mail addresses are indexed by their SHA-256 as well.
		d.SupportedIdentities = append(d.SupportedIdentities, opendsr.SupportedIdentity{IdentityType: opendsr.IdentityEmail, IdentityFormat: opendsr.FormatSHA256})
		writeJSON(w, http.StatusOK, d)
	}
}

func handleOpenDSRCertificate(certPEM []byte) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-pem-file")
		w.Write(certPEM)
	})
}

// openDSRID is the Custos request id that answers an OpenDSR
// subject_request_id: the request record itself is the mapping, so it
// survives restarts.
func openDSRID(subjectRequestID string) string { return "dsr_" + subjectRequestID }

func handleOpenDSRSubmit(log *slog.Logger, eng *rights.Engine, signer crypto.Signer, parse opendsr.Options, v openDSRVersion, now func() time.Time) tenantHandler {
	parse.V1 = v.api == opendsr.APIVersionV1
	return func(w http.ResponseWriter, r *http.Request, t *custos.Tenant) {
		body, err := readBody(w, r, maxOpenDSRBody)
		if err != nil {
			writeOpenDSRError(w, log, err)
			return
		}
		req, err := parse.ParseRequest(body, now())
		if err != nil {
			writeOpenDSRError(w, log, err)
			return
		}
		id, err := firstIdentity(req.SubjectIdentities)
		if err != nil {
			writeOpenDSRError(w, log, err)
			return
		}

		// Signed before anything is recorded: a key that cannot sign fails
		// the submission, not its acknowledgement.
		sig, err := opendsr.Sign(signer, body)
		if err != nil {
			writeOpenDSRError(w, log, err)
			return
		}

		sum := sha256.Sum256(body)
		fingerprint := hex.EncodeToString(sum[:])
		respond := func(created *custos.Request) {
			if created.Fingerprint != fingerprint {
				writeOpenDSRError(w, log, opendsr.NewError(http.StatusConflict,
					fmt.Sprintf("subject_request_id %s was already submitted with a different body", req.SubjectRequestID),
					opendsr.ErrorDetail{Domain: opendsr.DomainValidation, Reason: "duplicate", Message: "subject_request_id is already in use"}))
				return
			}
			// A resubmission gets the same acknowledgement (signed anew),
			// so a controller that lost the first answer is not confused.
			writeJSON(w, http.StatusCreated, opendsr.RequestResponse{
				ControllerID:           t.ID.String(),
				ExpectedCompletionTime: created.DueAt,
				ReceivedTime:           created.ReceivedAt,
				EncodedRequest:         base64.StdEncoding.EncodeToString(body),
				SubjectRequestID:       req.SubjectRequestID,
				ProcessorSignature:     sig,
			})
		}
		cid := openDSRID(req.SubjectRequestID)
		if existing, err := eng.Get(r.Context(), t.ID, cid); err == nil {
			respond(existing)
			return
		}
		version := req.APIVersion
		if version == "" {
			version = v.api
		}
		link := &custos.OpenDSRLink{SubjectRequestID: req.SubjectRequestID, APIVersion: version,
			CallbackURLs: req.StatusCallbackURLs, BaseURL: baseURL(r)}
		in := rights.Input{Type: req.Type(), Identity: id, Source: "opendsr",
			Actor: openDSRActor, ID: cid, Fingerprint: fingerprint, OpenDSR: link}
		create := eng.Create
		if t.Settings.OpenDSRReview {
			create = eng.CreatePending
		}
		created, err := create(r.Context(), t.ID, in)
		if custos.ErrorCode(err) == custos.Conflict {
			// Submitted twice at once: answer as a resubmission once the
			// first is recorded.
			if created, err = eng.Get(r.Context(), t.ID, cid); err != nil {
				writeOpenDSRError(w, log, opendsr.NewError(http.StatusServiceUnavailable, "the same subject_request_id is being submitted; retry"))
				return
			}
		} else if err != nil {
			writeOpenDSRError(w, log, err)
			return
		}
		respond(created)
	}
}

// firstIdentity maps the first identity Custos can search for. Of hashed
// identities only e-mail addresses are indexed.
func firstIdentity(ids []opendsr.SubjectIdentity) (custos.Identifier, error) {
	var first error
	for i, si := range ids {
		id, err := opendsr.Identity(si)
		if err == nil {
			return id, nil
		}
		if first != nil {
			continue
		}
		var hashed *opendsr.ErrHashedIdentity
		if errors.As(err, &hashed) {
			msg := fmt.Sprintf("subject_identities[%d]: sha256 is supported for email identities only, not %s", i, hashed.Type)
			first = opendsr.NewError(http.StatusBadRequest, msg,
				opendsr.ErrorDetail{Domain: opendsr.DomainValidation, Reason: opendsr.ReasonUnsupported, Message: msg})
		} else {
			msg := fmt.Sprintf("subject_identities[%d]: %s", i, custos.ErrorMessage(err))
			first = opendsr.NewError(http.StatusBadRequest, msg,
				opendsr.ErrorDetail{Domain: opendsr.DomainValidation, Reason: opendsr.ReasonInvalid, Message: msg})
		}
	}
	return custos.Identifier{}, first
}

// openDSRRequest finds the Custos request behind the {id} of the path.
func openDSRRequest(r *http.Request, eng *rights.Engine, t *custos.Tenant) (*custos.Request, error) {
	req, err := eng.Get(r.Context(), t.ID, openDSRID(r.PathValue("id")))
	if custos.ErrorCode(err) == custos.NotFound {
		return nil, opendsr.NewError(http.StatusNotFound, "no request with that subject_request_id")
	}
	return req, err
}

func statusResponse(r *http.Request, req *custos.Request, t *custos.Tenant, v openDSRVersion) opendsr.StatusResponse {
	out := opendsr.StatusResponse{
		ControllerID:           t.ID.String(),
		ExpectedCompletionTime: req.DueAt,
		SubjectRequestID:       r.PathValue("id"),
		RequestStatus:          opendsr.StatusOf(req.Status),
		APIVersion:             v.api,
	}
	out.ResultsURL, out.ResultsCount = opendsr.Results(req, baseURL(r))
	return out
}

func handleOpenDSRStatus(log *slog.Logger, eng *rights.Engine, v openDSRVersion) tenantHandler {
	return func(w http.ResponseWriter, r *http.Request, t *custos.Tenant) {
		req, err := openDSRRequest(r, eng, t)
		if err != nil {
			writeOpenDSRError(w, log, err)
			return
		}
		writeJSON(w, http.StatusOK, statusResponse(r, req, t, v))
	}
}

func handleOpenDSRCancel(log *slog.Logger, eng *rights.Engine, v openDSRVersion) tenantHandler {
	return func(w http.ResponseWriter, r *http.Request, t *custos.Tenant) {
		req, err := openDSRRequest(r, eng, t)
		if err != nil {
			writeOpenDSRError(w, log, err)
			return
		}
		if req.Status != custos.Pending && req.Status != custos.PendingVerification {
			writeOpenDSRError(w, log, opendsr.NewError(http.StatusConflict,
				fmt.Sprintf("request %s is %s; only a pending request can be cancelled", r.PathValue("id"), opendsr.StatusOf(req.Status))))
			return
		}
		// Cancel checks the status again: a request that started since is
		// refused with Conflict.
		if req, err = eng.Cancel(r.Context(), t.ID, req.ID, openDSRActor); err != nil {
			writeOpenDSRError(w, log, err)
			return
		}
		writeJSON(w, http.StatusAccepted, statusResponse(r, req, t, v))
	}
}
