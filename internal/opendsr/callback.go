package opendsr

import (
	"crypto"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/custos-dev/custos"
)

// The names of the two signers of status callbacks, for
// custos.Delivery.Signing: requests submitted with api_version 1.0 are
// called back with the OpenGDPR headers, the others with OpenDSR's.
const (
	SigningV2 = "opendsr"
	SigningV1 = "opengdpr"
)

// CallbackKind is the custos.Delivery kind of a status callback.
const CallbackKind = "opendsr.status"

// HeaderSigner signs a body with the processor certificate's key and
// returns the headers that carry the signature. V1 selects the OpenGDPR
// header names.
type HeaderSigner struct {
	Key    crypto.Signer
	Domain string
	V1     bool
}

// SignHeaders signs body.
func (s HeaderSigner) SignHeaders(body []byte) (http.Header, error) {
	sig, err := Sign(s.Key, body)
	if err != nil {
		return nil, err
	}
	h := http.Header{}
	if s.V1 {
		h.Set(HeaderProcessorDomainV1, s.Domain)
		h.Set(HeaderSignatureV1, sig)
	} else {
		h.Set(HeaderProcessorDomain, s.Domain)
		h.Set(HeaderSignature, sig)
	}
	return h, nil
}

// Notified records that the callbacks of r's current status are queued.
func Notified(r *custos.Request) {
	if r.OpenDSR != nil {
		r.OpenDSR.Notified = StatusOf(r.Status)
	}
}

// StatusOf is the protocol's name for a Custos request status. A failed
// or rejected request is reported cancelled: the protocol has no other
// word for a request that will not complete.
func StatusOf(s custos.RequestStatus) string {
	switch s {
	case custos.Completed:
		return StatusCompleted
	case custos.InProgress:
		return StatusInProgress
	case custos.Pending, custos.PendingVerification:
		return StatusPending
	}
	return StatusCancelled
}

// Results returns where the results of a completed access or portability
// request are and how many there are (one export); nothing otherwise.
func Results(r *custos.Request, baseURL string) (string, *int) {
	if r.Status != custos.Completed || (r.Type != custos.Access && r.Type != custos.Portability) {
		return "", nil
	}
	one := 1
	return baseURL + "/api/v1/requests/" + r.ID + "/result", &one
}

// Callbacks returns the status callbacks owed for r, one per callback
// URL: none when r was not submitted over OpenDSR or its protocol status
// is the one last called back (r.OpenDSR.Notified). The caller enqueues
// them durably and then records the status with Notified, so that a crash
// in between sends them again rather than never.
func Callbacks(r *custos.Request) ([]custos.Delivery, error) {
	l := r.OpenDSR
	if l == nil {
		return nil, nil
	}
	status := StatusOf(r.Status)
	if status == l.Notified {
		return nil, nil
	}
	signing := SigningV2
	if l.APIVersion == APIVersionV1 {
		signing = SigningV1
	}
	url, count := Results(r, l.BaseURL)
	var out []custos.Delivery
	for _, cb := range l.CallbackURLs {
		body, err := json.Marshal(Callback{
			ControllerID: r.Tenant.String(), ExpectedCompletionTime: r.DueAt, StatusCallbackURL: cb,
			SubjectRequestID: l.SubjectRequestID, RequestStatus: status, ResultsURL: url, ResultsCount: count,
		})
		if err != nil {
			return nil, fmt.Errorf("opendsr callback body: %w", err)
		}
		out = append(out, custos.Delivery{Tenant: r.Tenant, Kind: CallbackKind, RequestID: r.ID,
			Target: "callback", URL: cb, Signing: signing, Body: body})
	}
	return out, nil
}
