package opendsr

import (
	"fmt"
	"strings"
)

// Error is the specification's error object. It is an error itself, so
// ParseRequest can return one; the HTTP layer sends it wrapped in an
// ErrorResponse with Code as the status. Its messages never quote an
// identity value: the specification forbids personal data in errors.
type Error struct {
	// Code is the HTTP status of the response carrying the error.
	Code    int           `json:"code"`
	Message string        `json:"message,omitempty"`
	Errors  []ErrorDetail `json:"errors,omitempty"`
}

// ErrorDetail describes one problem of a request.
type ErrorDetail struct {
	Domain  string `json:"domain"`
	Reason  string `json:"reason"`
	Message string `json:"message"`
}

// ErrorResponse is the body of an error answer: {"error": {...}}.
type ErrorResponse struct {
	Error *Error `json:"error"`
}

// The domain and reasons of the details ParseRequest reports.
const (
	DomainValidation  = "Validation"
	ReasonMalformed   = "malformed"   // not JSON, or a field of the wrong JSON type
	ReasonRequired    = "required"    // a required field is missing or empty
	ReasonInvalid     = "invalid"     // a field is present but badly formed
	ReasonUnsupported = "unsupported" // well formed, but a value Custos does not accept
)

// NewError returns an Error with the given HTTP status, message and
// details.
func NewError(code int, message string, details ...ErrorDetail) *Error {
	return &Error{Code: code, Message: message, Errors: details}
}

// Response returns e in the shape of an error response body, ready to be
// encoded as JSON.
func (e *Error) Response() ErrorResponse { return ErrorResponse{Error: e} }

// Error returns the message followed by every detail.
func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "opendsr %d: %s", e.Code, e.Message)
	for _, d := range e.Errors {
		if d.Message != e.Message {
			fmt.Fprintf(&b, "; %s", d.Message)
		}
	}
	return b.String()
}
