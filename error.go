package custos

import (
	"errors"
	"fmt"
)

// Code classifies an Error. The HTTP layer maps each code to one status in
// exactly one place.
type Code string

// The error codes Custos uses.
const (
	Invalid      Code = "invalid"      // the request is malformed or names something impossible
	Unauthorized Code = "unauthorized" // no or wrong credentials
	Forbidden    Code = "forbidden"    // credentials valid but not for this
	NotFound     Code = "not_found"    // nothing with that name
	Conflict     Code = "conflict"     // the state does not allow it
	TooLarge     Code = "too_large"    // over a size limit
	Unavailable  Code = "unavailable"  // transient: busy or shutting down; retry
	Internal     Code = "internal"     // a bug or a broken disk; never the caller's fault
	Gone         Code = "gone"         // existed once, removed for good
	Shredded     Code = "shredded"     // the data key was destroyed: the data is unreadable forever
	Misdirected  Code = "misdirected"  // belongs to another region
	RateLimited  Code = "rate_limited" // slow down and retry
	// NotImplemented: a valid request this node cannot serve yet.
	NotImplemented Code = "not_implemented"
)

// Error is the one error type of Custos. Message is safe to show to the
// caller; Err is the internal cause and is only logged.
type Error struct {
	Code    Code
	Message string
	Err     error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with the given code and a formatted, caller-safe message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, or Internal.
func ErrorCode(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return Internal
}

// ErrorMessage returns the caller-safe message of err, or a generic one.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}

// ErrNotFound is returned by stores when a key does not exist.
var ErrNotFound = &Error{Code: NotFound, Message: "not found"}

// ErrCapReached is returned by CampaignStore.PutSendCapped when the
// subject already received its cap of campaign messages.
var ErrCapReached = &Error{Code: Conflict, Message: "the subject already received its cap of campaign messages"}

// ErrShredded is returned when the key that sealed a record has been
// destroyed: the record can never be read again.
var ErrShredded = &Error{Code: Shredded, Message: "data key destroyed; the record is unreadable"}
