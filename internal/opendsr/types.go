package opendsr

import (
	"encoding/json"
	"time"

	"github.com/custos-dev/custos"
)

// The subject request types of the protocol. Their names are those of the
// matching custos.RequestType.
const (
	TypeAccess      = "access"
	TypePortability = "portability"
	TypeErasure     = "erasure"
)

// The identity types Custos accepts. The specification lists more
// (fire_advertising_id, roku_advertising_id...); Custos does not collect
// them, so it rejects them rather than pretend to search for them.
const (
	IdentityControllerCustomerID = "controller_customer_id"
	IdentityEmail                = "email"
	IdentityAndroidAdvertisingID = "android_advertising_id"
	IdentityIOSAdvertisingID     = "ios_advertising_id"
	IdentityIOSVendorID          = "ios_vendor_id"
	IdentityAndroidID            = "android_id"
)

// The identity formats Custos accepts: the value itself, or the lowercase
// hex SHA-256 of it. The specification's sha1 and md5 are refused.
const (
	FormatRaw    = "raw"
	FormatSHA256 = "sha256"
)

// The request statuses reported in StatusResponse and Callback.
const (
	StatusPending    = "pending"
	StatusInProgress = "in_progress"
	StatusCompleted  = "completed"
	StatusCancelled  = "cancelled"
)

// Request is a data-subject request as a controller POSTs it. Obtain one
// from ParseRequest, which validates it; a Request decoded any other way
// has not been checked.
type Request struct {
	Regulation         string            `json:"regulation"`
	SubjectRequestID   string            `json:"subject_request_id"`
	SubjectRequestType string            `json:"subject_request_type"`
	SubmittedTime      time.Time         `json:"submitted_time"`
	SubjectIdentities  []SubjectIdentity `json:"subject_identities"`
	APIVersion         string            `json:"api_version,omitempty"`
	StatusCallbackURLs []string          `json:"status_callback_urls,omitempty"`
	// Extensions holds processor-specific objects keyed by processor
	// domain, kept undecoded: only the entry under Custos's own domain is
	// meant for it.
	Extensions map[string]json.RawMessage `json:"extensions,omitempty"`
}

// Type returns the Custos request type of a validated request.
func (r *Request) Type() custos.RequestType { return custos.RequestType(r.SubjectRequestType) }

// SubjectIdentity is one identity naming the data subject of a request.
type SubjectIdentity struct {
	IdentityType   string `json:"identity_type"`
	IdentityValue  string `json:"identity_value"`
	IdentityFormat string `json:"identity_format"`
}

// RequestResponse is the body of the 201 answer to an accepted request.
// EncodedRequest is the base64 of the request body as received, so the
// controller holds the processor's signed acknowledgement of exactly what
// it sent.
type RequestResponse struct {
	ControllerID           string    `json:"controller_id"`
	ExpectedCompletionTime time.Time `json:"expected_completion_time"`
	ReceivedTime           time.Time `json:"received_time"`
	EncodedRequest         string    `json:"encoded_request"`
	SubjectRequestID       string    `json:"subject_request_id"`
	ProcessorSignature     string    `json:"processor_signature"`
}

// StatusResponse is the body of the answer to a status query.
type StatusResponse struct {
	ControllerID           string    `json:"controller_id"`
	ExpectedCompletionTime time.Time `json:"expected_completion_time"`
	SubjectRequestID       string    `json:"subject_request_id"`
	RequestStatus          string    `json:"request_status"`
	APIVersion             string    `json:"api_version,omitempty"`
	ResultsURL             string    `json:"results_url,omitempty"`
	ResultsCount           *int      `json:"results_count,omitempty"`
}

// Callback is the body POSTed to each status callback URL of a request
// when its status changes.
type Callback struct {
	ControllerID           string    `json:"controller_id"`
	ExpectedCompletionTime time.Time `json:"expected_completion_time"`
	StatusCallbackURL      string    `json:"status_callback_url"`
	SubjectRequestID       string    `json:"subject_request_id"`
	RequestStatus          string    `json:"request_status"`
	ResultsURL             string    `json:"results_url,omitempty"`
	ResultsCount           *int      `json:"results_count,omitempty"`
}

// Discovery is the processor's description of what it supports, served
// at its discovery endpoint.
type Discovery struct {
	APIVersion                   string              `json:"api_version"`
	SupportedIdentities          []SupportedIdentity `json:"supported_identities"`
	SupportedSubjectRequestTypes []string            `json:"supported_subject_request_types"`
	// ProcessorCertificate is the URL of the PEM certificate whose key
	// signs the processor's responses and callbacks.
	ProcessorCertificate string `json:"processor_certificate"`
}

// SupportedIdentity is one identity type and format pair a processor
// accepts.
type SupportedIdentity struct {
	IdentityType   string `json:"identity_type"`
	IdentityFormat string `json:"identity_format"`
}
